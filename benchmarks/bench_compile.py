"""What each kernel specialisation costs to compile and what it buys at run time.

    python benchmarks/bench_compile.py [--quick]

For a few variants of Table 1 (XOR, 4 points) it compiles, each in a fresh process with an empty
cache, the kernel with the points unrolled into a fused step (what a run on XOR uses) and the general
kernel that loops over the points (what a dataset of more than 16 points uses), then measures both
warm: network-steps per second over 2000 steps without early exit, the two kernels taking turns,
best of 5.  Printed: compile seconds of each, and the run-time ratio fused / general.  A
specialisation pays when its run-time gain times the work a user runs exceeds its compile time.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from badminima.engine.data.datasets import load_dataset
from badminima.engine.train import run as run_mod
from badminima.engine.train.codegen import FUSE_MAX_POINTS
from badminima.engine.train.config import InitSpec, TrainConfig
from badminima.engine.train.precompile import Variant

COMPILE = ("import sys, time; from badminima.engine.train.precompile import Variant, compile_variant; "
           "v = Variant(*eval(sys.argv[1])); print(compile_variant(v))")


def compile_seconds(v: Variant, cache: str) -> float:
    """Seconds to compile v in a fresh process, its kernel in an empty folder (the package's own Numba
    functions come from `cache`, compiled once by warm_package)."""
    with tempfile.TemporaryDirectory() as kernels:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "BADMINIMA_KERNEL_DIR": kernels}
        out = subprocess.run([sys.executable, "-c", COMPILE, repr((v.d, v.h, v.act, v.loss, v.opt, v.dtype, v.n_fused))],
                             env=env, check=True, capture_output=True, text=True)
        return float(out.stdout.split()[-1])


def warm_package(cache: str) -> None:
    """Compile the package's own functions (model, classification, finisher) into `cache`."""
    with tempfile.TemporaryDirectory() as kernels:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "BADMINIMA_KERNEL_DIR": kernels}
        subprocess.run([sys.executable, "-c", COMPILE, repr((2, 1, "relu", "xent", "sgd", "float64", 0))],
                       env=env, check=True, capture_output=True)


def rate(cfg, ds, fused: bool, networks: int) -> float:
    """Seconds of one warm run of `networks` networks with the fused or the general kernel."""
    orig = run_mod.fused_points
    run_mod.fused_points = orig if fused else (lambda opt, n, hidden=1: 0)
    try:
        t = time.perf_counter()
        run_mod.train_range(cfg, ds.x, ds.y, 0, networks)
        return time.perf_counter() - t
    finally:
        run_mod.fused_points = orig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="two variants, fewer networks")
    args = ap.parse_args()
    ds = load_dataset("xor")
    grid = [(2, "sigmoid", "gd", "float32"), (7, "relu", "adam", "float32")]
    if not args.quick:
        grid += [(2, "sigmoid", "gd", "float64"), (7, "sigmoid", "gd", "float32"), (2, "relu", "adam", "float32")]
    networks = 4096 if args.quick else 16384
    steps = 2000
    cache = tempfile.mkdtemp(prefix="bench-compile-")
    warm_package(cache)
    print(f"{'variant':<28}{'compile fused s':>16}{'compile general s':>19}{'fused/general speed':>21}")
    for h, act, opt, dtype in grid:
        cfg = TrainConfig(dataset="xor", dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=h, activation=act,
                          optimizer=opt, lr=0.5 if opt == "gd" else 1e-3, steps=steps, init=InitSpec(),
                          networks=networks, dtype=dtype, early_exit=False, finish_horizon=0.0).validate()
        c_fused = compile_seconds(Variant(2, h, act, "xent", opt, dtype, ds.n), cache)
        c_gen = compile_seconds(Variant(2, h, act, "xent", opt, dtype, 0), cache)
        for fused in (True, False):
            rate(cfg, ds, fused, 64)                                     # load / compile here
        best = {True: np.inf, False: np.inf}
        for _ in range(5):
            for fused in (True, False):
                best[fused] = min(best[fused], rate(cfg, ds, fused, networks))
        print(f"{f'h={h} {act} {opt} {dtype}':<28}{c_fused:>16.1f}{c_gen:>19.1f}{best[False] / best[True]:>20.2f}x")
    print(f"(the general kernel serves every dataset of more than {FUSE_MAX_POINTS} points; "
          f"{networks} networks x {steps} steps per timing)")


if __name__ == "__main__":
    main()
