"""HDF5 writing speed: microseconds per network of RunWriter.append on real end states.

Trains a Table 1 cell on the CPU (XOR sigmoid GD h = 2 and fXOR ReLU Adam h = 7, float32, finisher off),
then appends its results to a fresh result file in appends of --append rows, best of --reps; the
whole chunks of each append are encoded on Numba's thread count (NUMBA_NUM_THREADS chooses).  The
HDF5 chunk height follows the append size (engine/store/write.chunk_rows: appends of 2^19 rows, a
GPU run's, get 4x taller chunks).

    python benchmarks/bench_write.py                        # 2^19 networks, appends of 2^17 rows
    python benchmarks/bench_write.py --networks 1048576 --append 524288     # a GPU run's appends
    NUMBA_NUM_THREADS=1 python benchmarks/bench_write.py    # one encoding thread
    python benchmarks/bench_write.py --codec zlib,isal     # the deflate codecs taking turns, same run
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numba
import numpy as np

from badminima.engine.core.layout import n_params
from badminima.engine.data.datasets import load_dataset
from badminima.engine.store import RunWriter, encode
from badminima.engine.train import run as R
from badminima.engine.train.config import TrainConfig

CELLS = (("xor", "sigmoid", "gd", 2, 0.5), ("fxor", "relu", "adam", 7, 0.001))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--networks", type=int, default=1 << 19)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--append", type=int, default=1 << 17, help="rows per append")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--codec", default=encode.codec(),
                    help=f"deflate codecs to compare, comma-separated (here: {','.join(encode.CODECS)})")
    a = ap.parse_args()
    if a.reps < 1 or a.networks < 1 or a.append < 1:
        ap.error("--reps, --networks and --append must be at least 1")
    codecs = a.codec.split(",")
    for c in codecs:
        if c not in encode.CODECS:
            ap.error(f"--codec {c}: not available here (have: {', '.join(encode.CODECS)})")
    n = a.networks
    print(f"{n} networks, appends of {a.append} rows, {numba.config.NUMBA_NUM_THREADS} threads, best of {a.reps}")
    for name, act, opt, h, lr in CELLS:
        ds = load_dataset(name)
        cfg = TrainConfig(dataset=ds.name, dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=h,
                          activation=act, optimizer=opt, lr=lr, networks=n, steps=a.steps, dtype="float32",
                          finish_horizon=0.0).validate()
        chunks = list(R.train(cfg, ds.x, ds.y))
        res = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        best = {c: (float("inf"), 0.0, 0.0, 0) for c in codecs}
        for _ in range(a.reps):
            for c in codecs:                                   # the codecs take turns
                encode.use(c)
                with tempfile.TemporaryDirectory() as d:
                    path = os.path.join(d, "w.h5")
                    with RunWriter.open(path, cfg.to_dict(), {"main": (cfg.to_dict(), n, n_params(2, h))},
                                        training=True, command="bench_write", append_rows=a.append) as w:
                        t, tm, tp = time.perf_counter(), time.thread_time(), time.process_time()
                        for lo in range(0, n, a.append):
                            w.append("main", {k: v[lo:lo + a.append] for k, v in res.items() if k in w.fields})
                        dt, dm, dp = time.perf_counter() - t, time.thread_time() - tm, time.process_time() - tp
                    if dt < best[c][0]:
                        best[c] = (dt, dm, dp - dm, os.path.getsize(path))
        for c in codecs:
            dt, main, rest, size = best[c]
            print(f"{name} {act} {opt} h={h}, {c}: {dt / n * 1e6:.2f} us per network ({n / dt:.3g} networks/s); "
                  f"the main thread's own CPU {main / n * 1e6:.3f} us per network (HDF5 calls, caps the writer "
                  f"at {n / main:.2g} networks/s however many threads encode); the other threads' CPU (encoding) "
                  f"{rest / n * 1e6:.3f} us per network; file {size / n:.1f} bytes per network")


if __name__ == "__main__":
    main()
