"""Compile kernel variants in parallel worker processes, while the caller trains what is ready.

LLVM compilation holds the GIL, so threads cannot compile two variants at once: worker processes do,
each writing Numba's on-disk cache, from which the caller then loads a variant in a fraction of a
second.  A variant whose kernel is already in the cache is not sent to a worker at all, so a warm
run starts no process.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from badminima.engine.core.say import say
from badminima.engine.core.jit import in_disk_cache
from badminima.engine.train.codegen import FUSE_MAX_POINTS, fused_points, load_kernel_module
from badminima.engine.train.threads import process_pool


@dataclass(frozen=True)
class Variant:
    """What selects a generated kernel: dimensions, activation, loss, optimizer, dtype, fused points."""
    d: int
    h: int
    act: str
    loss: str
    opt: str
    dtype: str
    n_fused: int            # points unrolled into the fused step; 0: the general pass

    def config(self):
        """A validated one-network, two-step TrainConfig that trains with this variant's kernel."""
        from badminima.engine.train.config import InitSpec, TrainConfig
        return TrainConfig(dataset="compile", dataset_fingerprint="", hidden=self.h, activation=self.act,
                           optimizer=self.opt, kind="classification" if self.loss == "xent" else "regression",
                           lr=0.1, steps=2, init=InitSpec(), networks=1, dtype=self.dtype).validate()

    def label(self) -> str:
        pts = f"{self.n_fused} points" if self.n_fused else "any size"
        return f"d={self.d} h={self.h} {self.act} {self.opt} {self.dtype} {pts}"


def variant_of(cfg, d: int, n_points: int) -> Variant:
    """The variant a training config uses on a dataset of n_points points in d dimensions."""
    return Variant(d, cfg.hidden, cfg.activation, cfg.loss, cfg.optimizer, cfg.dtype,
                   fused_points(cfg.optimizer, n_points, hidden=cfg.hidden))


def is_cached(v: Variant) -> bool:
    """Whether Numba's cache holds the variant's kernel."""
    return in_disk_cache(load_kernel_module(v.d, v.h, v.act, v.loss, v.opt, v.dtype, v.n_fused).run_task)


def _toy_data(v: Variant):
    """A dataset of the size v's kernel is specialized to (any size above the fused limit if none)."""
    n = v.n_fused or (4 if v.opt == "sgd" else FUSE_MAX_POINTS + 1)
    return np.linspace(0.0, 1.0, n * v.d).reshape(n, v.d), np.arange(n, dtype=float) % 2


def compile_variant(v: Variant) -> float:
    """Compile (and cache) one variant's kernel by training one network for two steps; returns seconds
    taken.  Only the kernel: the float64 work after it is the same for every variant (warm_outcomes),
    and compiling it in every worker would repeat it once per process."""
    from badminima.engine.train.run import submit_range
    t0 = time.perf_counter()
    submit_range(v.config(), *_toy_data(v), 0, 1, threads=1)     # on the CPU the kernel runs here
    return time.perf_counter() - t0


def warm_outcomes(v: Variant) -> None:
    """Compile (and cache) the work after the kernel -- classification and finisher, one compiled
    version for every variant -- by classifying a made-up end state of v that the finisher follows."""
    from badminima.engine.core.layout import n_params
    from badminima.engine.core.outcomes import OUT_OF_STEPS
    from badminima.engine.train.run import outcomes
    X, y = _toy_data(v)
    theta = np.full((1, n_params(v.d, v.h)), 0.5)
    outcomes(v.config(), X, y, 0, 1, None, None, np.full(1, OUT_OF_STEPS, np.int8), np.full(1, 2),
              np.full(1, -1), theta, 1)


def default_workers() -> int:
    """The CPUs this process may run on (a SLURM task's allocation, not the node's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:          # no affinity on this platform
        return max(1, os.cpu_count() or 1)


class Precompiler:
    """Compile the uncached variants among `variants` in worker processes; `wait(v)` returns once v
    can be loaded.  A context manager; progress lines go to stderr ("compiling kernels ...")."""

    def __init__(self, variants, workers: int | None = None, progress: bool = True):
        todo = [v for v in dict.fromkeys(variants) if not is_cached(v)]
        self.total = len(todo)
        self.done = 0
        self.progress = progress
        self.t0 = time.monotonic()
        self._futures: dict[Variant, Future] = {}
        self._pool = None
        if not todo:
            return
        workers = min(workers or default_workers(), len(todo))
        self._say(f"compiling kernels for {len(todo)} variant{'s' if len(todo) > 1 else ''} "
                  f"(first run only, {workers} process{'es' if workers > 1 else ''})")
        self._pool = process_pool(workers)
        for v in todo:
            fut = self._pool.submit(compile_variant, v)
            fut.add_done_callback(self._count)
            self._futures[v] = fut

    def _say(self, msg: str) -> None:
        if self.progress:
            say(msg)

    def _count(self, fut: Future) -> None:
        if fut.cancelled():             # close() on an interrupt: not compiled, and nothing to say
            return
        self.done += 1
        if fut.exception() is None and self.progress:
            self._say(f"compiled {self.done}/{self.total} kernel variants, {time.monotonic() - self.t0:.0f} s"
                      + (f", about {self.seconds_left():.0f} s left" if self.done < self.total else ""))

    def seconds_left(self) -> float:
        """Estimated seconds until every variant is compiled: 0 when none is left, inf before the first."""
        if self.done >= self.total:
            return 0.0
        return (time.monotonic() - self.t0) / self.done * (self.total - self.done) if self.done else float("inf")

    def ready(self, v: Variant) -> bool:
        """Whether v can be loaded now without waiting."""
        fut = self._futures.get(v)
        return fut is None or fut.done()

    def wait(self, v: Variant) -> None:
        """Block until v is compiled (no-op if it was cached); a worker's error is raised here."""
        fut = self._futures.get(v)
        if fut is not None:
            fut.result()

    def close(self, stop: bool = False) -> None:
        """Wait for the compiles under way; with stop (an interrupt, an error) end the workers at once,
        so that the caller stops within a second (a killed compile leaves no file half-written: the
        kernel module and Numba's cache files are written whole, then renamed)."""
        if self._pool is not None:
            for f in self._futures.values():
                f.cancel()
            if stop:
                for p in list(getattr(self._pool, "_processes", {}).values()):
                    p.terminate()
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close(stop=exc_type is not None)
