"""Training: the fast training loop, the pipeline the CLI and the app call (train, evaluate, save), time
estimates from what this machine measured, the benchmark against a plain Keras loop, and the preview of what the
augmentation does to training pictures.

May import: everything below it: the shared leaves, `jobs`, `data`, `models`, `evaluate`, `store`.
"""
