"""Training orchestration: chunks of networks through the generated kernel, then exact classification.

Memory: only one chunk of networks' state (and its results) is alive at a time on the CPU, two on a GPU
(the next chunk trains while this one is classified, finished and written); callers consume each chunk
(print counts, stream to HDF5) before the next one is yielded.
"""
from __future__ import annotations

from dataclasses import replace

import numba
import numpy as np

from badminima.engine.core.classify import CLASSIFY_BLOCK, classify
from badminima.engine.core.flow import MAX_ITER as FINISH_ITER, STALL as FINISH_STALL
from badminima.engine.train.finish import finish_many
from badminima.engine.core.outcomes import DRIFTING, OUT_OF_STEPS
from badminima.engine.train.config import ConfigError, TrainConfig
from badminima.engine.cuda.launch import device_starts
from badminima.engine.train.starts import init_ids, init_range
from badminima.engine.train.threads import on_threads
from badminima.engine.train.codegen import fused_points, load_kernel_module
from badminima.engine.core.layout import n_params
from badminima.engine.core.names import ACTIVATIONS, INIT_LAWS, LOSSES, lanes_for

DEFAULT_CHUNK = 16384
CUDA_CHUNK = 1 << 19
# A default CPU chunk holds at most this many network-steps (seconds on a few cores), so that a stop
# signal, which abandons the chunk in hand, loses little work; never below MIN_CHUNK networks (a SIMD
# block for each of 16 threads)
CHUNK_WORK = 1 << 31
MIN_CHUNK = 1024


def default_threads() -> int:
    """Threads a run uses unless told otherwise: Numba's (all cores by default)."""
    return numba.get_num_threads()


def kernel_for(cfg: TrainConfig, d: int, n_points: int):
    """The generated kernel module of this configuration on a dataset of n_points points in d dimensions."""
    return load_kernel_module(d, cfg.hidden, cfg.activation, cfg.loss, cfg.optimizer, cfg.dtype,
                              fused_points(cfg.optimizer, n_points, hidden=cfg.hidden))


def hyper(cfg: TrainConfig, X: np.ndarray) -> np.ndarray:
    """The kernel's hyper-parameter vector (see run_task in the template)."""
    with np.errstate(over="ignore"):        # coordinates past 1e154: x2 = inf, and no certificate passes
        x2 = float(np.max(np.sum(np.asarray(X, np.float64) ** 2, axis=1))) + 1.0
    return np.array([cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, x2, cfg.solve_tol, 1.0 if cfg.early_exit else 0.0])


def train_range(cfg: TrainConfig, X: np.ndarray, y: np.ndarray, start: int, stop: int,
                threads: int | None = None, theta0: np.ndarray | None = None,
                keep_init: bool = False, ids: np.ndarray | None = None) -> dict:
    """Train networks start..stop-1 and return their per-network results as a dict of arrays.

    theta0 (stop-start, P) replaces the random starts (e.g. to train from a known point); ids (an
    int64 array) trains those networks of the run instead of start..stop-1.  cfg.device picks the
    kernels (cpu, or cuda: engine/cuda); everything after the kernel is the same for both.
    """
    return submit_range(cfg, X, y, start, stop, threads, theta0, keep_init, ids).result()


class _Chunk:
    """A chunk whose kernel has run (CPU) or is running (CUDA); result() classifies it."""

    def __init__(self, cfg, X, y, start, stop, ids, th0, keep_init, threads, kernel):
        self.cfg, self.X, self.y, self.start, self.stop, self.ids = cfg, X, y, start, stop, ids
        self.th0, self.keep_init, self.threads, self._kernel = th0, keep_init, threads, kernel

    def result(self) -> dict:
        raw, steps, first, theta = self._kernel()
        return outcomes(self.cfg, self.X, self.y, self.start, self.stop, self.ids, self.th0 if self.keep_init else None,
                         raw, steps, first, theta, self.threads)


def submit_range(cfg: TrainConfig, X: np.ndarray, y: np.ndarray, start: int, stop: int,
                 threads: int | None = None, theta0: np.ndarray | None = None,
                 keep_init: bool = False, ids: np.ndarray | None = None) -> _Chunk:
    """Start training networks start..stop-1 (train_range's arguments); .result() gives train_range's
    dict.  On the CPU the kernel runs here; on a GPU it is launched and this returns at once."""
    d = X.shape[1]
    P = n_params(d, cfg.hidden)
    if ids is not None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        start, stop = 0, len(ids)
    n = stop - start
    F = np.dtype(cfg.dtype)
    # fresh writable copies (datasets are read-only arrays): one array type, so one compiled signature,
    # the one `badminima compile` warms
    Xk = np.array(X, dtype=F, order="C")
    yk = np.array(y, dtype=F, order="C")
    law = INIT_LAWS[cfg.init.law]
    host_starts = cfg.device == "cuda" and theta0 is None and not device_starts(law)
    if (keep_init or host_starts) and theta0 is None:       # the same starts the kernel would draw, computed once
        theta0 = _starts(cfg, d, start, stop, ids)
    th0 = np.zeros((0, P)) if theta0 is None else np.ascontiguousarray(theta0, dtype=np.float64)
    if th0.shape[0] not in (0, n) or th0.shape[1] != P:
        raise ValueError(f"theta0 must have shape ({n}, {P})")
    # steps between stop tests (SGD: single-point steps, as its budget counts them); beyond the budget
    # they change nothing (the budget's end is tested anyway) but the kernel would still walk them
    K = min(cfg.check_every, cfg.steps)
    if cfg.optimizer == "sgd":       # SGD lanes must share epoch boundaries: K a multiple of N
        N = X.shape[0]
        K = N * max(1, round(K / N))
    hy = hyper(cfg, X)
    gids = np.zeros(0, np.int64) if ids is None else ids
    if cfg.device == "cuda":
        from badminima.engine.cuda.codegen import load_kernel_module as load_cuda
        from badminima.engine.cuda.launch import submit
        require_device(cfg)
        mod = load_cuda(d, cfg.hidden, cfg.activation, cfg.loss, cfg.optimizer, cfg.dtype, X.shape[0])
        pending = submit(mod, Xk, yk, cfg.seed, start, n, gids, th0, law, cfg.init.scale, cfg.init.bias == "zero",
                         hy, cfg.steps, K)
        kernel = pending.result
    else:
        out = _run_cpu(cfg, Xk, yk, start, n, gids, th0, hy, K, threads)
        kernel = lambda: out      # noqa: E731
    return _Chunk(cfg, X, y, start, stop, ids, th0, keep_init, threads, kernel)


def _starts(cfg: TrainConfig, d: int, start: int, stop: int, ids) -> np.ndarray:
    """Random starts of networks start..stop-1 (or ids), float64, computed on all cores."""
    law, scale, zb = INIT_LAWS[cfg.init.law], cfg.init.scale, cfg.init.bias == "zero"
    if ids is None:
        return init_range(np.uint64(cfg.seed), start, stop, d, cfg.hidden, law, scale, zb)
    return init_ids(np.uint64(cfg.seed), ids, d, cfg.hidden, law, scale, zb)


def require_device(cfg: TrainConfig) -> None:
    """ConfigError in one line if cfg.device cannot run here (cuda without numba-cuda or a GPU)."""
    check_device(cfg.device)


def check_device(device: str) -> None:
    """ConfigError in one line if `device` cannot run here."""
    if device == "cuda":
        from badminima.engine.cuda.launch import unavailable
        why = unavailable()
        if why:
            raise ConfigError(f"--device cuda: {why}")


def thread_count(threads) -> int:
    """Threads a run uses: as asked (default: all), but no more than Numba has."""
    return int(max(1, min(threads or default_threads(), numba.config.NUMBA_NUM_THREADS)))


def _workers(cfg: TrainConfig, n: int, threads) -> int:
    """Threads for n networks: thread_count, but no more than blocks of lanes."""
    return int(max(1, min(thread_count(threads), -(-n // lanes_for(cfg.dtype)))))


def _run_cpu(cfg: TrainConfig, Xk, yk, start: int, n: int, gids, th0, hy, K: int, threads):
    """The CPU kernel on one chunk: (raw code, steps, first solved, theta)."""
    mod = kernel_for(cfg, Xk.shape[1], Xk.shape[0])
    workers = _workers(cfg, n, threads)
    raw = np.empty(n, np.int8)
    steps = np.empty(n, np.int64)
    first = np.empty(n, np.int64)
    theta = np.empty((n, th0.shape[1]))
    counter = np.zeros(1, np.int64)         # the next untrained network (local index), shared by the tasks

    # one task per thread, all drawing networks from `counter` (lanes stay busy until the chunk is
    # exhausted); results land at each network's own index, whatever thread trains it
    on_threads(lambda: mod.run_task(Xk, yk, np.uint64(cfg.seed), start, gids, counter, n, INIT_LAWS[cfg.init.law],
                                    cfg.init.scale, cfg.init.bias == "zero", th0, hy, cfg.steps, K, raw, steps,
                                    first, theta),
               workers, counter, n)
    return raw, steps, first, theta


def outcomes(cfg: TrainConfig, X, y, start: int, stop: int, ids, th0, raw, steps, first, theta, threads) -> dict:
    """The per-network result dict of a trained chunk: exact classification, the finisher, the kernel's
    counts (th0: the starts to store as init_weights, or None)."""
    n = theta.shape[0]
    workers = _workers(cfg, n, threads)
    prev = numba.get_num_threads()
    numba.set_num_threads(workers)
    try:
        X64, y64 = np.array(X, np.float64, order="C"), np.array(y, np.float64, order="C")
        out = _classified(cfg, theta, raw, X64, y64)
        out.update(_finished(cfg, theta, out["outcome"], X64, y64))
    finally:
        numba.set_num_threads(prev)
    out["index"] = np.arange(start, stop, dtype=np.int64) if ids is None else ids.copy()
    out["steps"] = steps
    out["solved_at"] = first
    out["weights"] = theta
    if th0 is not None:
        out["init_weights"] = th0
    return out


def _exact_on_gpu(cfg: TrainConfig, theta) -> bool:
    """Whether the classification and the finisher run on the GPU: device cuda, networks small enough
    for a GPU thread's local memory (engine/cuda/exact.MAX_P)."""
    if cfg.device != "cuda":
        return False
    from badminima.engine.cuda.exact import on_gpu
    return on_gpu(theta.shape[1])


def _classified(cfg: TrainConfig, theta, raw, X, y) -> dict:
    """The end-state classification of every network (engine/core/classify.py; on the GPU for device cuda)."""
    n = theta.shape[0]
    code = np.empty(n, np.int8)
    loss, acc, gnorm, eig = (np.empty(n) for _ in range(4))
    args = (theta, raw, X, y, X.shape[1], cfg.hidden, ACTIVATIONS[cfg.activation], LOSSES[cfg.loss], cfg.gtol,
            cfg.xtol, cfg.solve_tol, cfg.wmax, cfg.drift_gtol, cfg.drift_wmin, cfg.eig_tol, code, loss, acc, gnorm, eig)
    if _exact_on_gpu(cfg, theta):         # the same computation in one CUDA thread per network
        from badminima.engine.cuda.exact import classify_cuda
        classify_cuda(*args)
    else:
        blocks = -(-n // CLASSIFY_BLOCK)
        counter = np.zeros(1, np.int64)
        on_threads(lambda: classify(*args, counter), min(numba.get_num_threads(), blocks), counter, blocks)
    return {"outcome": code, "loss": loss, "accuracy": acc, "grad_norm": gnorm, "min_eig": eig}


def flow_time(cfg: TrainConfig) -> float:
    """Gradient-flow time a run's budget covers: lr * steps for GD, and for SGD (an epoch of N single-point
    steps at lr moves like N GD steps at lr); Adam, whose steps do not scale with the gradient, is
    counted as GD at lr 0.5."""
    return cfg.steps * (0.5 if cfg.optimizer == "adam" else cfg.lr)


def _finished(cfg: TrainConfig, theta, code, X, y) -> dict:
    """The finisher (engine/core/flow.py; on the GPU for device cuda) on the networks the optimizer left
    out_of_steps or drifting: the final verdict in "outcome", the optimizer's own in "optimizer_outcome",
    the finisher's iterations (-1: not run), loss and lambda_min (NaN unless a critical point) where it
    stopped."""
    n = theta.shape[0]
    todo = ((code == OUT_OF_STEPS) | (code == DRIFTING)) if cfg.finish_horizon > 0 else np.zeros(n, np.bool_)
    final = code.copy()
    iters = np.full(n, -1, np.int32)
    f_loss, f_eig, f_theta = np.full(n, np.nan), np.full(n, np.nan), np.full(theta.shape, np.nan)
    if todo.any():
        run = finish_many
        if _exact_on_gpu(cfg, theta):     # the same computation in one CUDA thread per network
            from badminima.engine.cuda.exact import finish_cuda as run
        run(theta, todo, cfg.finish_horizon * flow_time(cfg), X, y, X.shape[1], cfg.hidden,
            ACTIVATIONS[cfg.activation], LOSSES[cfg.loss], cfg.gtol, cfg.xtol, cfg.solve_tol, cfg.wmax,
            cfg.drift_gtol, cfg.drift_wmin, cfg.eig_tol, FINISH_ITER, FINISH_STALL, f_theta, final, iters, f_loss, f_eig)
    return {"outcome": final, "optimizer_outcome": code, "finish_iters": iters, "finish_loss": f_loss,
            "finish_min_eig": f_eig, "finish_weights": f_theta}


def chunks(start: int, stop: int, size: int):
    """Consecutive [a, b) ranges covering [start, stop)."""
    for a in range(start, stop, size):
        yield a, min(a + size, stop)


def default_chunk(cfg) -> int:
    """Networks per chunk when none is given: a GPU needs ~10^5 threads busy (and a chunk in flight
    while the previous one is classified, finished and written), the CPU a few thousand per core, fewer
    where the budget is long (CHUNK_WORK).  Results do not depend on it."""
    if cfg.device == "cuda":
        return CUDA_CHUNK
    return max(MIN_CHUNK, min(DEFAULT_CHUNK, CHUNK_WORK // max(cfg.steps, 1)))


def train(cfg: TrainConfig, X, y, start: int = 0, stop: int | None = None, chunk: int | None = None,
          threads: int | None = None, keep_init: bool = False):
    """Yield the results of networks start..stop-1 chunk by chunk (a generator: at most two chunks in
    memory).  On a GPU chunk k+1 is launched before chunk k is classified, so the two overlap."""
    stop = cfg.networks if stop is None else stop
    pending = None
    for a, b in chunks(start, stop, chunk or default_chunk(cfg)):
        nxt = submit_range(cfg, X, y, a, b, threads=threads, keep_init=keep_init)
        if pending is not None:
            yield pending.result()
        pending = nxt
    if pending is not None:
        yield pending.result()


def check_final(cfg: TrainConfig, X, y, index: np.ndarray, steps: np.ndarray, outcome: np.ndarray,
                sample: int, seed: int = 0, threads: int | None = None) -> dict:
    """Continue a random sample of the early-stopped networks (steps < budget) to the end of their
    budget without early exit, and count how many end with the outcome they were given.

    The sample is drawn from (seed, the networks' indices) alone.  Returns {"early": early-stopped
    networks, "checked", "agree", "changed": [(index, given outcome, outcome at the end), ...]}.
    """
    early = np.flatnonzero(steps < cfg.steps)
    if sample > 0 and len(early) > sample:
        early = np.sort(np.random.default_rng([seed, 0x46494E41]).choice(early, sample, replace=False))
    out = {"early": int(np.sum(steps < cfg.steps)), "checked": 0, "agree": 0, "changed": []}
    if sample <= 0 or len(early) == 0:
        return out
    full = train_range(replace(cfg, early_exit=False), X, y, 0, 0, threads=threads, ids=index[early])
    same = full["outcome"] == outcome[early]
    out.update(checked=len(early), agree=int(same.sum()),
               changed=[(int(index[early][k]), int(outcome[early][k]), int(full["outcome"][k]))
                        for k in np.flatnonzero(~same)])
    return out
