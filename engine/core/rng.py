"""Counter-based random numbers (Philox4x32-10, Salmon et al. 2011) keyed by the run seed.

Every random number is a pure function of (seed, network index, stream, counter), so a network's
random start and its SGD order never depend on threads, chunks or shards.  Streams: 0 = initial
weights, 1 = SGD order.  Checked against the Random123 known-answer vectors in tests/test_rng.py.
"""
from __future__ import annotations

import math

import numpy as np

from badminima.engine.core.jit import njit

STREAM_INIT = 0
STREAM_SGD = 1

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


# inline="always" (Numba-level inlining): LLVM vectorizes a loop over networks that draws numbers
# (shuffle_epochs) only when the rounds sit in the loop body itself, not behind a call
@njit(inline="always")
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Ten Philox rounds on a 4x32-bit counter with a 2x32-bit key (all passed as uint64 < 2^32)."""
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        n0 = ((p1 >> _S32) ^ c1 ^ k0) & _MASK
        n1 = p1 & _MASK
        n2 = ((p0 >> _S32) ^ c3 ^ k1) & _MASK
        n3 = p0 & _MASK
        c0, c1, c2, c3 = n0, n1, n2, n3
        k0 = (k0 + _W0) & _MASK
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


@njit(inline="always")
def uniform_pair(seed, index, stream, counter):
    """Two independent uniforms in (0, 1) with 53 random bits each."""
    s = np.uint64(seed)
    i = np.uint64(index)
    r0, r1, r2, r3 = philox4x32(i & _MASK, i >> _S32, np.uint64(stream), np.uint64(counter),
                                s & _MASK, s >> _S32)
    a = ((r0 << _S32) | r1) >> np.uint64(11)
    b = ((r2 << _S32) | r3) >> np.uint64(11)
    scale = 1.0 / 9007199254740992.0  # 2^-53
    return (a + 0.5) * scale, (b + 0.5) * scale


@njit
def normal_at(seed, index, stream, k):
    """The k-th standard normal of a (seed, index, stream) sequence (Box-Muller on pair k // 2)."""
    u1, u2 = uniform_pair(seed, index, stream, k // 2)
    rad = math.sqrt(-2.0 * math.log(u1))
    if k % 2 == 0:
        return rad * math.cos(2.0 * math.pi * u2)
    return rad * math.sin(2.0 * math.pi * u2)


@njit
def uniform_at(seed, index, stream, k):
    """The k-th uniform in (0, 1) of a (seed, index, stream) sequence."""
    u1, u2 = uniform_pair(seed, index, stream, k // 2)
    return u1 if k % 2 == 0 else u2


@njit
def shuffle_epoch(seed, index, epoch, perm):
    """Fisher-Yates shuffle of perm (in place) for one SGD epoch of network `index` (the definition;
    the kernels use it for a network's first epoch and shuffle_epochs for all lanes afterwards)."""
    N = perm.shape[0]
    for k in range(N):
        perm[k] = k
    for k in range(N - 1, 0, -1):
        j = int(uniform_at(seed, index, STREAM_SGD, epoch * N + k) * (k + 1))
        perm[k], perm[j] = perm[j], perm[k]


@njit
def shuffle_epochs(seed, index, epoch, perm, u):
    """shuffle_epoch(seed, index[l], epoch[l], perm[l]) for every row l with index[l] >= 0, the same
    permutations, with the draws of all rows made in one loop across rows per position: that loop
    vectorizes (8 Philox draws per instruction stream), the per-network shuffle does not.  u is
    (rows,) float64 scratch."""
    B, N = perm.shape
    for l in range(B):
        for k in range(N):
            perm[l, k] = k
    for k in range(N - 1, 0, -1):
        for l in range(B):
            c = epoch[l] * N + k
            a, b = uniform_pair(seed, index[l], STREAM_SGD, c // 2)
            u[l] = a if c % 2 == 0 else b
        for l in range(B):
            if index[l] >= 0:
                j = int(u[l] * (k + 1))
                perm[l, k], perm[l, j] = perm[l, j], perm[l, k]
