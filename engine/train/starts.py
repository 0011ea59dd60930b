"""Random starts computed on the host over all cores: init_many (engine/core/model.py) in parallel.

Used where the starts must exist as an array: stored with --init-weights, and the GPU's starts for
the init laws the GPU cannot draw bit for bit itself (engine/cuda/launch.device_starts).  Each value
is init_theta's, so a start is the same whoever computes it.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from badminima.engine.core.jit import njit
from badminima.engine.core.model import init_theta


@njit(parallel=True)
def init_range(seed, start, stop, d, h, law, scale, zero_bias):
    """Random starts of networks start..stop-1, (n, P) float64."""
    P = h * (d + 2) + 1
    out = np.empty((stop - start, P))
    for k in prange(stop - start):
        init_theta(seed, start + k, d, h, law, scale, zero_bias, out[k])
    return out


@njit(parallel=True)
def init_ids(seed, ids, d, h, law, scale, zero_bias):
    """Random starts of the networks ids (int64 array), (len(ids), P) float64."""
    P = h * (d + 2) + 1
    out = np.empty((ids.shape[0], P))
    for k in prange(ids.shape[0]):
        init_theta(seed, ids[k], d, h, law, scale, zero_bias, out[k])
    return out
