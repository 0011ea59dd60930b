"""Work shared by threads through a counter: the jitted task functions (a kernel's run_task, the
classification, the finisher) release the GIL and take the next item from counter[0] with an atomic
fetch-and-add, so every thread stays busy until the work runs out, whatever each item costs.

Plain threads rather than a Numba prange: a prange made Numba optimize the whole task body a second time
inside the parallel loop (seconds of compiling per function), and results never depend on which thread
took an item."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np


def on_threads(task, workers: int, counter: np.ndarray, end: int) -> None:
    """task() on `workers` threads at once, all drawing items from counter[0] up to `end`.  Always from a
    pool, even for one thread, so that Ctrl-C reaches the waiting caller: counter[0] = end then stops
    every task after the item it is on."""
    pool = ThreadPoolExecutor(max(1, workers))
    try:
        list(pool.map(lambda _: task(), range(max(1, workers))))
    finally:
        counter[0] = end
        pool.shutdown(wait=True)
