"""Training orchestration: chunks of networks through the generated kernel, then exact classification.

Memory: only one chunk of networks' state (and its results) is alive at a time; callers consume
each chunk (print counts, stream to HDF5) before the next one is trained.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from .classify import classify
from .config import TrainConfig
from .kernels.codegen import fused_points, lanes_for, load_kernel_module
from .layout import n_params
from .model import ACTIVATIONS, INIT_LAWS, LOSSES, init_many

DEFAULT_CHUNK = 16384


def kernel_for(cfg: TrainConfig, d: int, n_points: int):
    """The generated kernel module of this configuration on a dataset of n_points points in d dimensions."""
    return load_kernel_module(d, cfg.hidden, cfg.activation, cfg.loss, cfg.optimizer, cfg.dtype,
                              fused_points(cfg.optimizer, n_points))


def hyper(cfg: TrainConfig) -> np.ndarray:
    """The kernel's hyper-parameter vector (see run_task in the template)."""
    return np.array([cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.gtol ** 2, cfg.solve_tol,
                     1.0 if cfg.early_exit else 0.0])


def initial_weights(cfg: TrainConfig, d: int, start: int, stop: int) -> np.ndarray:
    """Random starts of networks start..stop-1 (float64, before any cast to the kernel dtype)."""
    return init_many(cfg.seed, start, stop, d, cfg.hidden, INIT_LAWS[cfg.init.law], cfg.init.scale,
                     cfg.init.bias == "zero")


def train_range(cfg: TrainConfig, X: np.ndarray, y: np.ndarray, start: int, stop: int,
                threads: int | None = None, theta0: np.ndarray | None = None,
                keep_init: bool = False) -> dict:
    """Train networks start..stop-1 and return their per-network results as a dict of arrays.

    theta0 (stop-start, P) replaces the random starts (e.g. to train from a known point).
    """
    d = X.shape[1]
    P = n_params(d, cfg.hidden)
    n = stop - start
    mod = kernel_for(cfg, d, X.shape[0])
    F = np.dtype(cfg.dtype)
    # fresh writable copies (datasets are read-only arrays): one array type, so one compiled signature,
    # the one `badminima compile` warms
    Xk = np.array(X, dtype=F, order="C")
    yk = np.array(y, dtype=F, order="C")
    if keep_init and theta0 is None:       # the same starts the kernel would draw, computed once
        theta0 = initial_weights(cfg, d, start, stop)
    th0 = np.zeros((0, P)) if theta0 is None else np.ascontiguousarray(theta0, dtype=np.float64)
    if th0.shape[0] not in (0, n) or th0.shape[1] != P:
        raise ValueError(f"theta0 must have shape ({n}, {P})")
    K = cfg.check_every
    if cfg.optimizer == "sgd":       # SGD lanes must share epoch boundaries: K a multiple of N
        N = X.shape[0]
        K = N * max(1, round(K / N))
    nthreads = threads or numba.get_num_threads()
    workers = int(max(1, min(nthreads, numba.config.NUMBA_NUM_THREADS, -(-n // lanes_for(cfg.dtype)))))
    raw = np.empty(n, np.int8)
    steps = np.empty(n, np.int64)
    theta = np.empty((n, P))
    hy = hyper(cfg)
    counter = np.zeros(1, np.int64)         # the next untrained network (local index), shared by the tasks

    def task(_):
        mod.run_task(Xk, yk, np.uint64(cfg.seed), start, counter, n, INIT_LAWS[cfg.init.law], cfg.init.scale,
                     cfg.init.bias == "zero", th0, hy, cfg.steps, K, raw, steps, theta)

    # One task per thread, all drawing networks from `counter` (work stealing: lanes stay busy until the
    # chunk is exhausted).  Plain threads, not a Numba prange: the task function releases the GIL, and
    # each variant compiles ~3 s faster without a parfor.  Results land at each network's own index,
    # whatever thread trains it.
    pool = ThreadPoolExecutor(workers)
    try:
        list(pool.map(task, range(workers)))
    finally:      # on an interrupt: no new networks are taken, the running ones finish quickly
        counter[0] = n
        pool.shutdown(wait=True)
    prev = numba.get_num_threads()
    numba.set_num_threads(workers)
    try:
        out = _classified(cfg, theta, raw, np.array(X, np.float64, order="C"), np.array(y, np.float64, order="C"))
    finally:
        numba.set_num_threads(prev)
    out["index"] = np.arange(start, stop, dtype=np.int64)
    out["steps"] = steps
    out["weights"] = theta
    if keep_init:
        out["init_weights"] = th0
    return out


def _classified(cfg: TrainConfig, theta, raw, X, y) -> dict:
    n = theta.shape[0]
    code = np.empty(n, np.int8)
    loss, acc, gnorm, eig = (np.empty(n) for _ in range(4))
    classify(theta, raw, X, y, X.shape[1], cfg.hidden, ACTIVATIONS[cfg.activation], LOSSES[cfg.loss],
             cfg.wmax, cfg.drift_gtol, cfg.drift_wmin, cfg.eig_tol, code, loss, acc, gnorm, eig)
    return {"outcome": code, "loss": loss, "accuracy": acc, "grad_norm": gnorm, "min_eig": eig}


def chunks(start: int, stop: int, size: int):
    """Consecutive [a, b) ranges covering [start, stop)."""
    for a in range(start, stop, size):
        yield a, min(a + size, stop)


def train(cfg: TrainConfig, X, y, start: int = 0, stop: int | None = None, chunk: int = DEFAULT_CHUNK,
          threads: int | None = None, keep_init: bool = False):
    """Yield the results of networks start..stop-1 chunk by chunk (a generator: one chunk in memory)."""
    stop = cfg.networks if stop is None else stop
    for a, b in chunks(start, stop, chunk):
        yield train_range(cfg, X, y, a, b, threads=threads, keep_init=keep_init)
