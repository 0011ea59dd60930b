"""One place for the project's Numba choices: caching, fastmath flags, and the environment switches.

`BADMINIMA_NO_CACHE=1` turns on-disk caching off; Numba's own `NUMBA_CACHE_DIR` moves the cache (set it
to shared storage on clusters so array tasks reuse one compile).
"""
from __future__ import annotations

import os

import numba

CACHE = os.environ.get("BADMINIMA_NO_CACHE", "") not in ("1", "true", "yes")

# No 'nnan'/'ninf': the kernels must see NaN/inf to classify divergence.  No 'reassoc': it would let
# LLVM fold the two-constant Cody-Waite reduction in fast_exp and lose accuracy.  No 'contract': whether
# LLVM fuses a multiply-add depends on the code around it, and Numba runs a freshly compiled caller
# with its callees' own code but caches it with copies optimised in its context, so with contraction
# a run that compiled a kernel and a run that loaded it from the cache rounded differently (5-10%
# slower without FMA; tests/test_kernels.py checks that the two give the same results).
FASTMATH = frozenset({"nsz", "arcp", "afn"})


def njit(*args, **kw):
    """numba.njit with the project's defaults (cache, fastmath subset, nogil)."""
    kw.setdefault("cache", CACHE)
    kw.setdefault("fastmath", set(FASTMATH))
    kw.setdefault("nogil", True)
    kw.setdefault("error_model", "numpy")
    return numba.njit(*args, **kw)
