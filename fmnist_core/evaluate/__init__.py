"""What a trained model answers: test-set evaluation and its confusion matrix, its most confident mistakes and most
ambiguous images, top guesses for one picture, the preparation of photos and drawings into Fashion-MNIST-style
inputs, and adversarial pictures (the smallest change that fools it, its accuracy under attack, the recorded file).

May import: the shared leaves, `jobs`, `data`, `models`.
"""
