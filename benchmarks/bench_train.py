"""Training throughput: network-steps per second on XOR for the issue's grid of variants.

    python benchmarks/bench_train.py [--quick]

Prints, per (activation, optimizer, h, dtype): the rate without early exit (every network runs the
whole budget), the effective rate with early exit (networks x budget / time), and for the headline
variant (sigmoid, gd, h=2) the 1-thread vs 2-thread ratio.  Kernels are compiled (and cached) first.
The finisher is off here (it is not training; benchmarks/bench_finish.py measures it); the float64
end-state classification is included.
"""
from __future__ import annotations

import argparse
import itertools
import time

import numba

from badminima.engine.train.config import TrainConfig
from badminima.engine.data.datasets import load_dataset
from badminima.engine.train.run import train_range


def rates(cfg, ds, thread_counts, networks, repeats=7):
    """{threads: (network-steps actually taken per s, budgeted network-steps per s)}, best of `repeats`
    runs each (the machine is shared: the best run is the one least disturbed).  The thread counts
    take turns run by run, so a busy spell on the machine does not fall on one of them only."""
    best = {}
    for threads in thread_counts:
        train_range(cfg, ds.x, ds.y, 0, 64, threads=threads)          # compile / warm
        best[threads] = float("inf")
    for _ in range(repeats):
        for threads in thread_counts:
            t = time.perf_counter()
            res = train_range(cfg, ds.x, ds.y, 0, networks, threads=threads)
            best[threads] = min(best[threads], time.perf_counter() - t)
    taken = res["steps"].sum()       # the same for every thread count (bit-identical results)
    return {k: (taken / dt, networks * cfg.steps / dt) for k, dt in best.items()}


def rate(cfg, ds, threads, networks):
    """rates() for one thread count."""
    return rates(cfg, ds, (threads,), networks)[threads]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="only the headline variant (both dtypes)")
    ap.add_argument("--networks", type=int, default=16384)
    ap.add_argument("--steps", type=int, default=2000)
    a = ap.parse_args()
    ds = load_dataset("xor")
    threads = numba.config.NUMBA_NUM_THREADS
    print(f"XOR, {a.networks} networks x {a.steps} steps, {threads} threads, numba {numba.__version__}")
    print(f"{'act':<8}{'opt':<6}{'h':>3}{'dtype':>9}{'no early exit':>16}{'early exit (eff.)':>20}")
    grid = [("sigmoid", "gd", 2, "float64"), ("sigmoid", "gd", 2, "float32")] if a.quick else \
        itertools.product(("sigmoid", "relu"), ("gd", "adam"), (2, 7), ("float64", "float32"))
    for act, opt, h, dt in grid:
        lr = 0.5 if opt == "gd" else 1e-2
        base = dict(dataset="xor", dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=h, activation=act,
                    optimizer=opt, lr=lr, steps=a.steps, dtype=dt, networks=a.networks, finish_horizon=0.0)
        full, _ = rate(TrainConfig(**base, early_exit=False).validate(), ds, threads, a.networks)
        _, eff = rate(TrainConfig(**base, early_exit=True).validate(), ds, threads, a.networks)
        print(f"{act:<8}{opt:<6}{h:>3}{dt:>9}{full:>16.3g}{eff:>20.3g}")
    cfg = TrainConfig(dataset="xor", dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=2,
                      steps=a.steps, early_exit=False, networks=a.networks, finish_horizon=0.0).validate()
    r = rates(cfg, ds, (1, 2), a.networks)
    one, two = r[1][0], r[2][0]
    print(f"sigmoid gd h=2 float64: 1 thread {one:.3g}, 2 threads {two:.3g}, ratio {two / one:.2f}")


if __name__ == "__main__":
    main()
