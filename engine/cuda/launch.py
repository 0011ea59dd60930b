"""Run a chunk of networks through a CUDA kernel: availability, launch (asynchronous), results.

`submit` copies the inputs to the device and launches the kernel on a stream of its own, returning
at once; `Pending.result()` waits for that kernel alone and copies its results back.  So the caller
can launch chunk k+1 before it collects and classifies chunk k, and the GPU trains chunk k+1 while
chunk k is classified and finished (engine/cuda/exact.py) and written (engine/train/run.py does).
"""
from __future__ import annotations

import numpy as np

from badminima.engine.core.names import GLOROT, UNIFORM

THREADS_PER_BLOCK = 128          # on a GPU
SIM_THREADS = 4                  # the simulator (one block of Python threads): fewer threads than networks,
                                 # so even tiny test runs refill threads from the counter


def unavailable() -> str | None:
    """Why `--device cuda` cannot run here, in one line (None: it can).  Needs numba-cuda and a CUDA
    GPU with its driver, or Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, tests only: slow)."""
    try:
        from numba import config
        if config.ENABLE_CUDASIM:
            return None
        from numba import cuda
    except Exception as e:  # noqa: BLE001 - any import failure is the one-line reason
        return f"numba.cuda cannot be imported ({type(e).__name__}: {e}); pip install 'badminima[cuda]'"
    if getattr(cuda, "implementation", "") != "NVIDIA":
        return "needs the numba-cuda package (pip install 'badminima[cuda]'), not Numba's built-in CUDA target"
    try:
        ok = cuda.is_available()
    except Exception as e:  # noqa: BLE001
        return f"no usable CUDA driver ({type(e).__name__}: {e})"
    if not ok:
        return "no CUDA GPU or driver found on this machine"
    return None


def simulated() -> bool:
    """Whether numba.cuda is Numba's CUDA simulator."""
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def callable_in_kernel(fn):
    """fn (a jitted function taking arrays) as a kernel calls it: itself on a GPU, where numba-cuda compiles
    it for the device; under the simulator, where a kernel is Python and fn its CPU-compiled code, a
    wrapper that hands fn C-contiguous copies of the NumPy arrays (inside the simulator's device-array
    wrappers, or views of local arrays) and copies them back: the signatures the CPU's own callers
    compile and cache, so the simulator compiles nothing more."""
    if not simulated():
        return fn

    def call(*args):
        arrays = [getattr(a, "_ary", a) for a in args]
        copies = [np.array(a, order="C") if isinstance(a, np.ndarray) else a for a in arrays]   # always a copy
        out = fn(*copies)
        # back in reverse order: a view passed before the array it views (the finisher's th, a row of
        # its scratch W) ends up holding its own copy's values
        for a, c in reversed(list(zip(arrays, copies))):
            if isinstance(a, np.ndarray):
                a[...] = c
        return out
    return call


def device_starts(law: int) -> bool:
    """Whether the kernel draws the random starts itself: for the uniform and Glorot laws its Philox
    integer arithmetic and IEEE operations give the CPU's values bit for bit; the normal and He laws
    need log, cos and sin, whose CUDA implementations may round differently from the host's libm, so
    their starts are drawn on the host (engine/train/starts.py) and copied to the device."""
    return law in (UNIFORM, GLOROT)


def resident_threads() -> int:
    """Threads the device runs at once (all SMs full); the simulator: SIM_THREADS."""
    from numba import cuda
    if simulated():
        return SIM_THREADS
    dev = cuda.get_current_device()
    return int(dev.MULTIPROCESSOR_COUNT) * int(dev.MAX_THREADS_PER_MULTIPROCESSOR)


def to_device(stream, *arrays) -> list:
    """Contiguous device copies of host arrays, queued on stream."""
    from numba import cuda
    return [cuda.to_device(np.ascontiguousarray(a), stream=stream) for a in arrays]


def launch(kernel, n: int, stream, args, threads: int | None = None) -> int:
    """kernel(*args) on stream for n items drawn from a counter: as many threads as the device runs at
    once (or `threads`), at most one per item, in whole blocks; returns the threads launched."""
    total = max(1, min(n, threads or resident_threads()))
    tpb = min(total, SIM_THREADS if simulated() else THREADS_PER_BLOCK)
    blocks = -(-total // tpb)
    kernel[blocks, tpb, stream](*args)
    return blocks * tpb


class Pending:
    """A launched chunk; result() waits for it and returns (raw code, steps, first solved, theta).
    `counter` is the device's work counter (after the kernel: n + the threads launched, each thread
    having drawn once past the end)."""

    def __init__(self, stream, outs, n, counter, threads):
        self._stream, self._outs, self.n, self.counter, self.threads = stream, outs, n, counter, threads

    def result(self):
        host = tuple(o.copy_to_host(stream=self._stream) for o in self._outs)
        self._stream.synchronize()
        return host


def submit(mod, X, y, seed: int, start: int, n: int, ids, th0, law: int, scale: float, zero_bias: bool, hy,
           steps: int, K: int, threads: int | None = None) -> Pending:
    """Launch kernel module `mod` (engine/cuda/codegen) on networks start..start+n-1 (or ids) and return
    at once.  X, y in the kernel dtype; th0 (n, P) float64 starts or (0, P): the kernel draws them
    (then the law must be one device_starts() allows, for CPU-identical starts); threads: CUDA
    threads launched (default: what the device runs at once, at most n)."""
    from numba import cuda
    P = th0.shape[1]
    stream = cuda.stream()
    Xd, yd, idd, ctr, thd, hyd = to_device(stream, X, y, ids, np.zeros(1, np.int64), th0, hy)
    outs = (cuda.device_array(n, np.int8, stream=stream), cuda.device_array(n, np.int64, stream=stream),
            cuda.device_array(n, np.int64, stream=stream), cuda.device_array((n, P), np.float64, stream=stream))
    launched = 0
    if n > 0:
        launched = launch(mod.train_kernel, n, stream,
                          (Xd, yd, np.uint64(seed), np.int64(start), idd, ctr, np.int64(n), np.int64(law),
                           np.float64(scale), bool(zero_bias), thd, hyd, np.int64(steps), np.int64(K), *outs), threads)
    return Pending(stream, outs, n, ctr, launched)
