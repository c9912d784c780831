"""Fashion-MNIST itself: what it is (classes, sizes, official hashes), finding and verifying the four official
files, parsing and caching the arrays, and the dataset maths behind the Dataset page.

May import: the shared leaves and `jobs`.
"""
