"""Blocks of candidates across Python threads: the structure-of-arrays block kernels (joint_soa.joint_block,
kernels.paper_block) release the GIL, so threads calling them directly run them on every core.

Why not a prange over blocks inside a jitted function: Numba links a callee's code into its caller's
module and optimizes it again there, and the block kernels are the search's largest functions (the
prange version of the joint optimizer compiled for 60 s on top of the block kernel's 61 s)."""
from __future__ import annotations

import itertools

import numba
import numpy as np

from badminima.engine.core.atomic import STOPPED
from badminima.engine.train.threads import on_threads

LANES = 64                 # candidates per SIMD block of the SoA kernels (8 x 512-bit vectors of float64)


def pack(a: np.ndarray, lo: int, count: int) -> np.ndarray:
    """Rows lo .. lo + LANES of a (C, ...) as one SoA block (..., LANES); padding lanes repeat row count - 1."""
    rows = np.minimum(np.arange(lo, lo + LANES), count - 1)
    return np.ascontiguousarray(np.moveaxis(a[rows], 0, -1))


def unpack(block: np.ndarray, a: np.ndarray, lo: int) -> None:
    """Write the real lanes of an SoA block back into rows lo.. of a."""
    m = min(LANES, a.shape[0] - lo)
    a[lo:lo + m] = np.moveaxis(block, -1, 0)[:m]


def each_range(fn, count: int) -> None:
    """fn(lo, hi, work) over ranges of the count candidates sized so that every thread gets some (at most
    LANES each): for per-candidate loops, whose candidates need no SIMD block."""
    size = max(1, min(LANES, -(-count // numba.get_num_threads())))
    each_block(lambda lo, work: fn(lo, min(lo + size, count), work), count, size)


def each_block(fn, count: int, size: int = LANES) -> None:
    """fn(lo, work) for the blocks lo = 0, size, 2 size, ... of count candidates, on numba.get_num_threads()
    threads (the caller's Numba thread count) drawing blocks in turn (engine/train/threads.on_threads);
    the first exception stops the blocks not started and is raised once the running ones end.  fn passes
    `work` to its kernel, which polls engine/core/atomic.stopped(work) every iteration: set to STOPPED
    when the work is abandoned (a stop signal, another block's error), it ends a long block early."""
    starts = range(0, count, size)
    end = len(starts)
    work = np.zeros(1, np.int64)          # on_threads sets work[0] = STOPPED when the work ends or fails
    claim = itertools.count()             # next() is atomic under the GIL

    def task():
        while work[0] < end:
            k = next(claim)
            if k >= end:
                return
            try:
                fn(starts[k], work)
            except BaseException:
                work[0] = STOPPED         # the other threads take no new block and end the one they run
                raise
    on_threads(task, min(numba.get_num_threads(), end), work, end)
