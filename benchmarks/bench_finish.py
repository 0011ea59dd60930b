"""The finisher against long runs: does it reach what GD reaches with 100 times the budget, and at what cost?

    python benchmarks/bench_finish.py [--networks 2000] [--steps 10000] [--factor 100] [--dataset paper10]
    python benchmarks/bench_finish.py --table1 FILE.h5      # the finisher alone on a Table 1 file's end states
    python benchmarks/bench_finish.py --eig                 # its eigen-decomposition against LAPACK's

Trains the same starts (GD, lr 0.5, sigmoid, h = 2, float64) for --steps steps with the finisher and for
factor x steps without it, then prints both outcome tables, the per-network agreement, the share left
unresolved, the finisher's cost per network it ran on (its own call, timed separately) and the
disagreements.  On Theorem 1's data the long run takes about a minute at the defaults.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from badminima.engine.train.config import InitSpec, TrainConfig
from badminima.engine.data.datasets import load_dataset
from badminima.engine.core.outcomes import NAMES
from badminima.engine.train.run import _finished, train_range


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--factor", type=int, default=100, help="the long run has factor x steps")
    ap.add_argument("--dataset", default="paper10")
    ap.add_argument("--table1", default=None, metavar="FILE",
                    help="instead: time the finisher per cell on the stored end states of a `badminima table1` file")
    ap.add_argument("--eig", action="store_true",
                    help="instead: time engine/core/eigen.sym_eig against numpy.linalg.eigh (LAPACK) in jitted loops")
    a = ap.parse_args()
    if a.table1:
        return per_cell(a.table1)
    if a.eig:
        return eig_speed()
    ds = load_dataset(a.dataset)
    cfg = TrainConfig(dataset=a.dataset, dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=2, lr=0.5,
                      steps=a.steps, init=InitSpec(), networks=a.networks).validate()
    n = a.networks
    train_range(cfg, ds.x, ds.y, 0, 64)                              # compile
    t0 = time.perf_counter()
    short = train_range(cfg, ds.x, ds.y, 0, n)
    t_short = time.perf_counter() - t0
    ran = short["finish_iters"] >= 0
    t0 = time.perf_counter()                                          # the finisher alone, timed again
    _finished(cfg, np.ascontiguousarray(short["weights"]), short["optimizer_outcome"], np.asarray(ds.x, float),
              np.asarray(ds.y, float))
    t_fin = time.perf_counter() - t0
    t0 = time.perf_counter()
    long = train_range(replace(cfg, steps=a.steps * a.factor, finish_horizon=0.0), ds.x, ds.y, 0, n)
    t_long = time.perf_counter() - t0
    print(f"{a.dataset}, 2-2-1 sigmoid, GD lr 0.5, float64, {n} networks")
    head = f"{'outcome':<15}{'optimizer':>11}{'+ finisher':>12}{f'{a.factor}x steps':>14}"
    print(head)
    for code, name in NAMES.items():
        print(f"{name:<15}{np.sum(short['optimizer_outcome'] == code):>11}{np.sum(short['outcome'] == code):>12}"
              f"{np.sum(long['outcome'] == code):>14}")
    agree = short["outcome"] == long["outcome"]
    print(f"agreement with the {a.factor}x longer run: {agree.mean():.2%} ({agree.sum()}/{n}); unresolved after "
          f"the finisher: {np.mean(short['outcome'] == 6):.2%}")
    print(f"time: {a.steps} steps + finisher {t_short:.1f} s; the finisher alone {t_fin:.2f} s on {ran.sum()} "
          f"networks = {1e3 * t_fin / max(ran.sum(), 1):.3f} ms per network (mean {short['finish_iters'][ran].mean():.1f} "
          f"iterations); {a.factor}x steps {t_long:.1f} s")
    for k in np.flatnonzero(~agree)[:10]:
        print(f"  network {k}: finisher {NAMES[int(short['outcome'][k])]} (loss {short['finish_loss'][k]:.6g}), "
              f"long run {NAMES[int(long['outcome'][k])]} (loss {long['loss'][k]:.6g})")


def eig_speed(reps: int = 5000) -> None:
    """Microseconds per eigen-decomposition (values and vectors) of a random symmetric n x n matrix, the
    Hessian sizes of h = 2 and 7 on 2-d data, one thread, best of 3: the finisher's sym_eig against LAPACK."""
    import numba

    from badminima.engine.core.eigen import sym_eig

    @numba.njit
    def lapack(A, reps):
        s = 0.0
        for _ in range(reps):
            lam, V = np.linalg.eigh(A)
            s += lam[0]
        return s

    @numba.njit
    def own(A, reps):
        n = A.shape[0]
        V, lam, e = np.empty((n, n)), np.empty(n), np.empty(n)
        s = 0.0
        for _ in range(reps):
            V[:] = A
            sym_eig(V, lam, e)
            s += lam[0]
        return s
    numba.set_num_threads(1)
    rng = np.random.default_rng(1)
    for n in (9, 29):
        A = rng.normal(size=(n, n))
        A = A + A.T
        row = []
        for fn in (lapack, own):
            fn(A, 10)
            best = min(_timed(fn, A, reps) for _ in range(3))
            row.append(1e6 * best / reps)
        print(f"n = {n}: LAPACK eigh {row[0]:.2f} us, sym_eig {row[1]:.2f} us")


def _timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def per_cell(path: str) -> None:
    """The finisher alone, per cell, on the optimizer's end states stored in a Table 1 file (its networks
    left out of steps or drifting), on all of Numba's threads: seconds, networks finished, iterations,
    and microseconds per network of the cell, finished or not (what a run pays per network)."""
    from badminima.engine.store import open_results
    res = open_results(path)
    data = {}                                   # dataset name -> (X, y)
    total_s, total_n = 0.0, 0
    print(f"{'cell':<28}{'s':>8}{'finished':>10}{'iterations':>12}{'us/network':>12}")
    for name in res.cells:
        cfg = TrainConfig.from_dict(res.cell_config(name))
        if cfg.dataset not in data:
            ds = load_dataset(cfg.dataset)
            data[cfg.dataset] = np.asarray(ds.x, float), np.asarray(ds.y, float)
        X, y = data[cfg.dataset]
        cell = res.cell(name, ["weights", "optimizer_outcome"])
        theta, code = np.ascontiguousarray(cell["weights"], dtype=np.float64), cell["optimizer_outcome"]
        _finished(cfg, theta[:64], code[:64], X, y)                    # compile / warm
        t = time.perf_counter()
        r = _finished(cfg, theta, code, X, y)
        dt = time.perf_counter() - t
        ran = r["finish_iters"] >= 0
        total_s, total_n = total_s + dt, total_n + len(code)
        print(f"{name:<28}{dt:>8.3f}{ran.sum():>10}{r['finish_iters'][ran].sum():>12}{1e6 * dt / len(code):>12.1f}")
    print(f"all cells: {total_s:.2f} s for {total_n} networks, {1e6 * total_s / total_n:.1f} us per network")


if __name__ == "__main__":
    main()
