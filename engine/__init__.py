"""Numba kernels and their orchestration: model, training, storage, search, certification."""
