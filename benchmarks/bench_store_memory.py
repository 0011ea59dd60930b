"""Peak memory of streaming results into the HDF5 store: 10^5 vs 10^6 networks.

Each size runs in its own subprocess (peak RSS is a per-process high-water mark) and streams synthetic
chunks through RunWriter (SWMR .part, flush + commit per chunk) and finish() (copy into the final file).
The claim checked: peak RSS does not grow with the number of networks.

    python benchmarks/bench_store_memory.py                 # 1e5 and 1e6 rows, P = 9, chunks of 4096
    python benchmarks/bench_store_memory.py --params 41 --chunk 1000 --sizes 100000,1000000
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def child(n: int, P: int, chunk: int, path: str, resume_at: int) -> dict:
    import numpy as np

    from badminima.engine.store import RunWriter

    def make(lo, hi, rng):
        m = hi - lo
        return {"index": np.arange(lo, hi, dtype=np.int64), "outcome": rng.integers(0, 7, m).astype(np.int8),
                "loss": rng.random(m), "accuracy": rng.random(m), "grad_norm": rng.random(m),
                "steps": rng.integers(0, 10**5, m), "min_eig": rng.standard_normal(m),
                "weights": rng.standard_normal((m, P))}

    rng = np.random.default_rng(0)
    cfg = {"bench": "store_memory", "networks": n, "P": P}
    t0 = time.perf_counter()
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t_resume = 0.0
    with RunWriter.open(path, cfg, {"main": ({}, n, P)}, command="bench") as w:
        while w.remaining("main"):
            lo = w.next_index("main")
            hi = min(n, lo + chunk)
            w.append("main", make(lo, hi, rng))
            if resume_at and lo < resume_at <= hi:
                # simulate a crash-resume: reopen the .part as a killed writer would have left it
                w._close_file()
                t1 = time.perf_counter()
                w._rebuild()
                t_resume = time.perf_counter() - t1
                w._open_part()
        t_stream = time.perf_counter() - t0
        t1 = time.perf_counter()
    # leaving the block finished the run (all networks committed): .part -> final file
    t_finish = time.perf_counter() - t1
    return {"rows": n, "P": P, "chunk": chunk, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_after_imports_mb": rss_start / 1024, "stream_s": t_stream, "finish_s": t_finish,
            "rebuild_s": t_resume, "file_mb": os.path.getsize(path) / 2**20}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--params", type=int, default=9, help="parameters per network (2-2-1: 9)")
    ap.add_argument("--chunk", type=int, default=4096, help="networks per appended chunk")
    ap.add_argument("--rebuild", action="store_true",
                    help="also time a crash-resume rebuild of the .part half-way through")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        n, P, chunk, resume_at = (int(x) for x in a.child)
        with tempfile.TemporaryDirectory() as d:
            print(json.dumps(child(n, P, chunk, os.path.join(d, "bench.h5"), resume_at)))
        return
    for n in (int(float(s)) for s in a.sizes.split(",")):
        cmd = [sys.executable, os.path.abspath(__file__), "--child", str(n), str(a.params), str(a.chunk),
               str(n // 2 if a.rebuild else 0)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        extra = f", crash-resume rebuild at {n // 2} rows {r['rebuild_s']:.2f} s" if a.rebuild else ""
        print(f"{r['rows']:>9d} networks (P={r['P']}, chunks of {r['chunk']}): peak RSS {r['peak_rss_mb']:7.1f} MiB "
              f"(after imports {r['rss_after_imports_mb']:.1f}); stream {r['stream_s']:.2f} s, "
              f"finish {r['finish_s']:.2f} s, file {r['file_mb']:.1f} MiB{extra}", flush=True)


if __name__ == "__main__":
    main()
