"""The three CNNs: the registry and factory, the fused batch norm they use, mirror averaging, and the recipe's own
Keras objects (learning-rate schedule, label-smoothed loss).

May import: the shared leaves, `jobs`, `data`.
"""
