"""Sweeps: every (model, seed) pair trained on Dask distributed, reduced to means, intervals and paired verdicts,
saved as versioned JSON and read back for people.

May import: the shared leaves, `jobs`, `data`, `models`, `evaluate`, `store`, `training`.
"""
