"""Compare two Table 1 result files network by network (e.g. float32 against float64, same starts).

    badminima table1 -n 100000 -q -o t32.h5
    badminima table1 -n 100000 -q --dtype float64 -o t64.h5
    python benchmarks/table1_precision.py t32.h5 t64.h5

Per cell: both solve rates, their difference, the share of networks whose verdict (solved or not)
differs, and a paired z (McNemar: (b - c) / sqrt(b + c) over the discordant networks).  This is how
docs/reproduce.md's "float32 for Table 1" was measured.
"""
from __future__ import annotations

import argparse
import math

from badminima.engine.core.outcomes import SOLVED
from badminima.engine.store import open_results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    args = ap.parse_args()
    a, b = open_results(args.a), open_results(args.b)
    cells = sorted(set(a.cells) & set(b.cells))
    print(f"{'cell':<28}{'A %':>8}{'B %':>8}{'A-B':>8}{'differ %':>10}{'paired z':>10}")
    worst_diff = worst_dis = 0.0
    for name in cells:
        sa = a.cell(name, ["optimizer_outcome"])["optimizer_outcome"] == SOLVED
        sb = b.cell(name, ["optimizer_outcome"])["optimizer_outcome"] == SOLVED
        if sa.shape != sb.shape:
            raise SystemExit(f"error: cell {name} has {sa.size} networks in A and {sb.size} in B")
        only_a, only_b = int((sa & ~sb).sum()), int((~sa & sb).sum())
        diff = 100 * (sa.mean() - sb.mean())
        dis = 100 * (only_a + only_b) / sa.size
        z = (only_a - only_b) / math.sqrt(only_a + only_b) if only_a + only_b else 0.0
        worst_diff, worst_dis = max(worst_diff, abs(diff)), max(worst_dis, dis)
        print(f"{name:<28}{100 * sa.mean():8.2f}{100 * sb.mean():8.2f}{diff:+8.3f}{dis:10.3f}{z:+10.2f}")
    print(f"{len(cells)} cells; largest |A-B| {worst_diff:.3f} points; largest share of changed verdicts {worst_dis:.3f}%")


if __name__ == "__main__":
    main()
