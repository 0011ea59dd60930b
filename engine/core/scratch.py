"""A CPU training task's work arrays, allocated by cached functions.

Every generated kernel variant would otherwise compile NumPy's allocators (zeros, full, empty) again
as part of its own code, about 0.9 s of a 4 s compile; calling these functions, each compiled once
into the package's cache, links the compiled code instead.
"""
from __future__ import annotations

import numpy as np

from badminima.engine.core.jit import njit


@njit
def lane_state32(n):
    """The lanes' flat state array, float32 zeros."""
    return np.zeros(n, np.float32)


@njit
def lane_state64(n):
    """The lanes' flat state array, float64 zeros."""
    return np.zeros(n, np.float64)


@njit
def lane_arrays(B, N, P):
    """Per-lane bookkeeping of a task with B lanes, N points and P parameters: step counters cnt and
    cnt0, first solved step (-1), network held (-1), SGD epoch, permutation (B, N) and global index,
    a float64 scratch of B for shuffling and one of P for a start."""
    return (np.zeros(B, np.int64), np.zeros(B, np.int64), np.full(B, -1, np.int64), np.full(B, -1, np.int64),
            np.zeros(B, np.int64), np.zeros((B, N), np.int64), np.zeros(B, np.int64), np.zeros(B),
            np.empty(P))
