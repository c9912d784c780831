"""What a trained model answers: test-set evaluation and its confusion matrix, top guesses for one picture, and the
preparation of photos and drawings into Fashion-MNIST-style inputs.

May import: the shared leaves, `jobs`, `data`, `models`.
"""
