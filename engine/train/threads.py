"""Work shared by threads through a counter: the jitted task functions (a kernel's run_task, the
classification, the finisher) release the GIL and take the next item from counter[0] with an atomic
fetch-and-add, so every thread stays busy until the work runs out, whatever each item costs.

Plain threads rather than a Numba prange: a prange made Numba optimize the whole task body a second time
inside the parallel loop (seconds of compiling per function), and results never depend on which thread
took an item.

Work that holds the GIL (compiling) goes to worker processes instead: process_pool() spawns them so
that none outlives the process that started it, and none runs the caller's script again."""
from __future__ import annotations

import os
import sys
import types
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing.context import SpawnContext, SpawnProcess

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


def _worker_init(parent: int, numba_threads: int | None) -> None:
    """In a pool worker: Numba's thread count, and exit once the process that started the pool is gone
    (a SIGKILL gives it no chance to stop its pool, and an orphan would wait for work for ever, holding
    the caller's pipes open)."""
    import threading
    import time
    if numba_threads:
        import numba
        numba.set_num_threads(numba_threads)

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="badminima-parent-watch").start()


class _WorkerProcess(SpawnProcess):
    """A spawned process that does not import the caller's __main__.  A spawned child runs the parent's
    main script again (as __mp_main__) unless it is guarded by `if __name__ == "__main__"`, and a
    user's script calling the API rarely is; the workers run only the package's functions, so the child
    is told there is no main module to import."""

    def start(self):
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            super().start()         # spawn reads the main module here, to tell the child what to import
        finally:
            sys.modules["__main__"] = main


class _WorkerContext(SpawnContext):
    Process = _WorkerProcess


def process_pool(workers: int, numba_threads: int | None = None) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes (the caller may hold running Numba threads, which a forked
    child must not inherit), each exiting when the caller does, however it ends."""
    return ProcessPoolExecutor(workers, mp_context=_WorkerContext(),
                               initializer=_worker_init, initargs=(os.getpid(), numba_threads))
