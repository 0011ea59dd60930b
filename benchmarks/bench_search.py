"""Benchmark: candidates optimised per second per core in the search's float stage at N = 10 (target >= 1e4),
and whole search pipelines end to end (target >= 2,000 candidates/s on 2 cores).

    python benchmarks/bench_search.py [--candidates 4096] [--threads 1] [--points 10] [--reps 3]
                                      [--pipeline 7,10] [--pipeline-budget 1024] [--pipeline-threads 2]

Measures the optimizers (start -> optimise, plus the per-candidate smallest Hessian eigenvalue the
screen needs) on one thread by default, so the rates are per core:

* paper  -- the paper's method, theta fixed, points descend ||grad_theta L||^2: the structure-of-arrays
            kernel (32 candidates per SIMD block, vectorised exp), at 100 iterations and at the
            strategy's default 1000;
* joint  -- points + output weights by Gauss-Newton onto {grad = 0} plus projected penalty steps (a 9x9
            eigen-decomposition, two 9x9 solves and the eigenvalue-margin gradients per iteration), at
            100 iterations and at its default 600 (the badness push rarely lets it stop early): the
            vectorized kernel the search runs (``joint``, engine/search/joint_soa.py) and the scalar
            one-candidate-per-thread kernel it replaced (``joint-1``, kernels.optimize_joint).

Pipeline: ``run_search`` end to end (float stage, screen, witness training, rounding, certificate,
records to HDF5, exports) with --pipeline-threads Numba threads and as many post-processing
processes, candidates per second of wall clock, at each N of --pipeline.

Also printed, for context: ns per candidate-iteration, how many candidates pass the float screen
(the yield the rate buys), and the cost of the later per-survivor stages (Newton polish, witness
training, certification) on a few survivors.  Times are wall clock, best of --reps runs.
"""
from __future__ import annotations

import argparse
import time

import numba
import numpy as np

import os
import shutil
import tempfile

from badminima.engine.search import joint_soa as js
from badminima.engine.search import run as search
from badminima.engine.search import kernels as sk


def _float_rate(cfg: search.SearchConfig, C: int, reps: int, scalar: bool = False):
    idx = np.arange(C, dtype=np.int64)
    X, y, th = sk.search_starts(np.uint64(cfg.seed), idx, cfg.points, 2,
                                np.array(cfg.label_splits(), np.int64), cfg.box, cfg.vlo, cfg.vhi)
    w = np.ones((C, cfg.points))
    hp = cfg.hyper()
    strat = sk.STRATEGIES[cfg.strategy]
    opt = sk.optimize_batch if scalar else js.optimize
    d = np.empty((C, 8))
    opt(strat, X[:64].copy(), y[:64], w[:64], th[:64].copy(), 2, hp, d[:64])   # compile
    best = np.inf
    for _ in range(reps):
        Xc, tc = X.copy(), th.copy()
        t0 = time.perf_counter()
        opt(strat, Xc, y, w, tc, 2, hp, d)
        best = min(best, time.perf_counter() - t0)
    its = float(np.mean(d[:, 4] + 1))
    return C / best, 1e9 * best / (C * its), its


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=4096)
    ap.add_argument("--points", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pipeline", default="7,10", help="point counts of the end-to-end runs ('' = none)")
    ap.add_argument("--pipeline-budget", type=int, default=1024)
    ap.add_argument("--pipeline-threads", type=int, default=2)
    ap.add_argument("--skip-float", action="store_true", help="only the pipeline")
    args = ap.parse_args()
    if not args.skip_float:
        _float_rows(args)
    if args.pipeline:
        _pipeline(args)


def _pipeline(args):
    T = args.pipeline_threads
    print(f"pipeline (run_search end to end), {args.pipeline_budget} candidates, {T} Numba threads + {T} "
          f"post-processing processes, best of {args.reps}")
    print(f"{'N':>3} {'cand/s':>9} {'float cand.':>11} {'certified':>9}   target 2000/s on 2 cores")
    for N in (int(t) for t in args.pipeline.split(",")):
        cfg = search.SearchConfig(points=N, budget=args.pipeline_budget, seed=11,
                                  ones=tuple(range(1, N // 2 + 1))).validate()
        best, s = np.inf, None
        for r in range(args.reps + 1):                  # run 0 warms up (compiles, spawns)
            d = tempfile.mkdtemp(prefix="bench-search-")
            try:
                c = search.SearchConfig(**{**cfg.__dict__, "found_dir": os.path.join(d, "found")})
                t0 = time.perf_counter()
                s = search.run_search(c, os.path.join(d, "s.h5"), threads=T, post_workers=T, progress=False)
                if r:
                    best = min(best, time.perf_counter() - t0)
            finally:
                shutil.rmtree(d, ignore_errors=True)
        rate = cfg.budget / best
        print(f"{N:>3} {rate:>9.0f} {s['float_candidates']:>11} {s['certified']:>9}   "
              f"{'ok' if rate >= 2000 else 'below'}")


def _float_rows(args):
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    N, C = args.points, args.candidates
    print(f"float stage, N = {N}, {C} candidates, {numba.get_num_threads()} thread(s) "
          f"(rates per core = rate / threads)")
    print(f"{'strategy':<8} {'iters':>6} {'cand/s':>10} {'cand/s/core':>12} {'ns/cand-iter':>13}  target 1e4/s/core")
    rows = [("paper", 100), ("paper", None), ("joint", 100), ("joint", None), ("joint-1", 100), ("joint-1", None)]
    for name, iters in rows:
        strat = name.split("-")[0]
        cj = C if strat == "paper" else max(64, C // 4) if name == "joint" else max(64, C // 16)
        cfg = search.SearchConfig(points=N, strategy=strat, iters=iters).validate()
        rate, ns, its = _float_rate(cfg, cj, args.reps, scalar=name == "joint-1")
        per_core = rate / numba.get_num_threads()
        flag = "ok" if per_core >= 1e4 else "below"
        print(f"{name:<8} {cfg.n_iters:>6} {rate:>10.0f} {per_core:>12.0f} {ns:>13.0f}  {flag}"
              f"   (mean iterations run {its:.0f})")
    # yield and per-survivor costs, joint at its defaults
    cfg = search.SearchConfig(points=N, budget=256, seed=1).validate()
    t0 = time.perf_counter()
    fl = search.float_stage(cfg, np.arange(256))
    t_float = time.perf_counter() - t0
    passed = [c for c in range(256)
              if search.screen(cfg, fl["X"][c], fl["y"][c], fl["theta"][c], fl["diag"][c])[1] < 0]
    print(f"joint yield: {len(passed)} of 256 candidates pass the float screen "
          f"({t_float:.2f} s for the float stage incl. Newton polish)")
    ts, cert = [], 0
    for c in passed[:8]:
        t0 = time.perf_counter()
        res = search.process_candidate(cfg, fl["X"][c], fl["y"][c], fl["theta"][c], c)
        ts.append(time.perf_counter() - t0)
        cert += res["verdict"] == search.CERTIFIED
    if ts:
        print(f"per float survivor (witness training {cfg.witness_starts} x {cfg.witness_steps} GD steps, "
              f"rounding, Newton, certificate): median {1e3 * float(np.median(ts)):.0f} ms; "
              f"{cert} of {len(ts)} certified")


if __name__ == "__main__":
    main()
