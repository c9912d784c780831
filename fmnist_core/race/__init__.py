"""The GPU-vs-CPU race of Model 1: which lanes this machine has, the lane processes and their Keras backends,
the timed workload, the versioned race file and its one summary.

May import: the shared leaves, `jobs`, `data`, `models`, `evaluate`, `store`, `training`.
"""
