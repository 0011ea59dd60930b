"""The finisher against long runs: does it reach what GD reaches with 100 times the budget, and at what cost?

    python benchmarks/bench_finish.py [--networks 2000] [--steps 10000] [--factor 100] [--dataset paper10]

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
    a = ap.parse_args()
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


if __name__ == "__main__":
    main()
