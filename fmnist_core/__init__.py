"""Fashion-MNIST CNN Explorer core: data, models, training, evaluation, cache, race, sketches.

Importing this package is cheap: TensorFlow is imported only inside the functions that need it.
"""

__version__ = "0.1.0"
