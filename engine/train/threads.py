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
import signal
import threading
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, ThreadPoolExecutor, wait
from multiprocessing import resource_tracker, spawn
from multiprocessing.context import SpawnContext, SpawnProcess

import numpy as np

from badminima.engine.train import gcpolicy
from badminima.engine.core.atomic import STOPPED
from badminima.engine.train.interrupt import check


def on_threads(task, workers: int, counter: np.ndarray, end: int) -> None:
    """task() on `workers` threads at once, all drawing items from counter[0] up to `end`.  Always from a
    pool, even for one thread, so that Ctrl-C reaches the waiting caller: counter[0] = STOPPED then stops
    every task after the item it is on, or sooner where the task polls stopped(counter)."""
    pool = ThreadPoolExecutor(max(1, workers))
    try:
        pending = [pool.submit(task) for _ in range(max(1, workers))]
        # waits of a fraction of a second: a stop signal whose KeyboardInterrupt a library swallowed
        # (interrupt.check) still stops the tasks, not only at the chunk's end
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_EXCEPTION)
            check()
            for f in done:
                f.result()          # the first error, raised here: the others stop (finally)
    finally:
        counter[0] = STOPPED
        pool.shutdown(wait=True)


def _worker_init(parent: int, numba_threads: int | None) -> None:
    """In a pool worker: Numba's thread count, and exit once the process that started the pool is gone
    (a SIGKILL gives it no chance to stop its pool, and an orphan would wait for work for ever, holding
    the caller's pipes open)."""
    import time
    gcpolicy.for_compiling()
    if numba_threads:
        import numba
        numba.set_num_threads(numba_threads)

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="badminima-parent-watch").start()


_starting = threading.local()           # set while this thread starts a worker process
_preparation_data = getattr(spawn.get_preparation_data, "__wrapped__", spawn.get_preparation_data)


def _worker_preparation_data(name):
    """multiprocessing's data for a spawned child, without the main module when one of our workers is
    being started by this thread (other threads and other pools are left as they are)."""
    d = _preparation_data(name)
    if getattr(_starting, "worker", False):
        d.pop("init_main_from_name", None)
        d.pop("init_main_from_path", None)
    return d


_worker_preparation_data.__wrapped__ = _preparation_data
spawn.get_preparation_data = _worker_preparation_data


class _WorkerProcess(SpawnProcess):
    """A spawned process that does not import the caller's __main__.  A spawned child runs the parent's
    main script again (as __mp_main__) unless it is guarded by `if __name__ == "__main__"`, and a
    user's script calling the API rarely is; the workers run only the package's functions."""

    def start(self):
        _starting.worker = True
        try:
            super().start()
        finally:
            _starting.worker = False


class _WorkerContext(SpawnContext):
    Process = _WorkerProcess


def process_pool(workers: int, numba_threads: int | None = None) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes (the caller may hold running Numba threads, which a forked
    child must not inherit), each exiting when the caller does, however it ends."""
    # multiprocessing's resource tracker (started with the pool) shields itself from SIGINT and SIGTERM
    # by blocking them while it starts; a closed terminal's SIGHUP killed it, and its relaunch printed
    # warnings and tracebacks after the command's own line
    if hasattr(signal, "SIGHUP") and signal.SIGHUP not in resource_tracker._IGNORED_SIGNALS:
        resource_tracker._IGNORED_SIGNALS += (signal.SIGHUP,)
    return ProcessPoolExecutor(workers, mp_context=_WorkerContext(),
                               initializer=_worker_init, initargs=(os.getpid(), numba_threads))
