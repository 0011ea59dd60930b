"""One place for the project's Numba choices: caching, no fast-math, and the environment switches.

`BADMINIMA_NO_CACHE=1` turns on-disk caching off; Numba's own `NUMBA_CACHE_DIR` moves the cache (set it
to shared storage on clusters so array tasks reuse one compile).
"""
from __future__ import annotations

import os

import numba

CACHE = os.environ.get("BADMINIMA_NO_CACHE", "") not in ("1", "true", "yes")

# No fast-math flags at all.  Each lets LLVM choose by the surrounding code ('contract': fuse a
# multiply-add; 'arcp': divide by multiplying with a shared reciprocal; 'afn': an approximate libm
# call), and Numba runs a freshly compiled caller with its callees' own code but caches the caller
# with copies optimised in its context: with 'contract' a run that compiled a kernel and a run that
# loaded it rounded differently (tests/test_kernels.py checks they agree now).  'nnan'/'ninf' would
# also hide the NaN/inf that classify divergence, and 'reassoc' would fold fast_exp's two-constant
# reduction.  The kernels vectorize without them (FMA was worth 5-10% of a step).


def njit(*args, **kw):
    """numba.njit with the project's defaults (cache, no fast-math, nogil)."""
    kw.setdefault("cache", CACHE)
    kw.setdefault("fastmath", False)
    kw.setdefault("nogil", True)
    kw.setdefault("error_model", "numpy")
    return numba.njit(*args, **kw)
