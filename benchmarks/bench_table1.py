"""Where Table 1's time goes: train every cell of `badminima table1` (no file) and print per-cell time.

    python benchmarks/bench_table1.py [--networks 20000] [--dtype float32]

The work grows linearly with the networks per cell, so the last line scales the total to the issue's
10^5 per cell (target: <= 3 minutes on 2 cores); `time badminima table1 -n 100000` measures it end to
end (with the HDF5 store and the claims).  Kernels are compiled before timing.
"""
from __future__ import annotations

import argparse
import time

from badminima.engine.paper.table1 import Protocol, SGD_NETWORKS, grid_cells
from badminima.engine.train.run import train


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=20000, help="networks per cell (SGD cells: at most 10^4)")
    ap.add_argument("--dtype", default=Protocol.dtype, help="float32 (table1's default) or float64")
    a = ap.parse_args()
    cells = grid_cells(Protocol(dtype=a.dtype), a.networks)
    for c in cells:                                    # compile (and warm) every variant first
        for _ in train(c.config, c.data.x, c.data.y, 0, 32):
            pass
    print(f"Table 1 grid ({a.dtype}), {a.networks} networks per cell, network-steps taken and seconds per cell")
    total = 0.0
    scaled = 0.0
    for c in cells:
        t = time.perf_counter()
        steps = sum(int(r["steps"].sum()) for r in train(c.config, c.data.x, c.data.y))
        dt = time.perf_counter() - t
        total += dt
        # SGD cells stop growing at SGD_NETWORKS networks
        scaled += dt * (min(100_000, SGD_NETWORKS) if c.config.optimizer == "sgd" else 100_000) / c.config.networks
        print(f"{c.name:<28}{steps:>14.3g}{dt:>9.2f} s{steps / dt:>11.3g}/s")
    print(f"total {total:.1f} s; at 10^5 networks per cell: about {scaled:.0f} s ({scaled / 60:.1f} min)")


if __name__ == "__main__":
    main()
