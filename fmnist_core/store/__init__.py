"""Where trained models are kept: the atomic model cache, the typed record each entry holds, and installing the
models that ship with the app.

May import: the shared leaves, `jobs`, `data`, `models`, `evaluate`.
"""
