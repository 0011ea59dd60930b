"""Cold start: wall time and busy cores of a first run, with every cache empty.

    python benchmarks/bench_cold.py [--table1-networks 100000] [--suite] [--only reproduce,table1,warm,suite]

Each job runs as a subprocess with NUMBA_CACHE_DIR (and so the generated kernels) in a fresh empty
folder: the package's own Numba functions and every kernel variant compile as on a new machine.
Printed per job: wall time, CPU time of the whole process tree (the kernel-compiling worker processes
included, through the children's resource usage), and busy cores = CPU time / wall time.  `warm` is
the time from starting `badminima train -n 1 --steps 1` to its exit with the caches filled: the
start-up cost a user pays on every command.  The test suite (--suite) is the README's test command.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOOR = ("import atexit\nimport gc\n\nimport numba\n\natexit.register(gc.freeze)   # as a command exits (engine/train/gcpolicy.py)\n\n\n"
         "@numba.njit(cache=True)\ndef f(a):\n    return a.sum()\n")


def timed(cmd: list[str], cache: str, cwd: str) -> tuple[float, float, int]:
    """(wall s, CPU s of the process tree, exit code) of cmd run with the given Numba cache."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    env.pop("BADMINIMA_KERNEL_DIR", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        print(f"  {' '.join(cmd)} failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}", file=sys.stderr)
    return wall, cpu, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table1-networks", type=int, default=100000)
    ap.add_argument("--suite", action="store_true", help="also time the cold test suite (minutes)")
    ap.add_argument("--only", default="reproduce,table1,warm", help="jobs to run, comma separated")
    args = ap.parse_args()
    exe = [sys.executable, "-m", "badminima"]
    jobs = {
        "reproduce": exe + ["reproduce", "-q"],
        "table1": exe + ["table1", "-q", "-n", str(args.table1_networks)],
    }
    wanted = list(dict.fromkeys([j for j in args.only.split(",") if j] + (["suite"] if args.suite else [])))
    print(f"{'job':<34}{'wall s':>9}{'CPU s':>9}{'busy cores':>12}   ({os.cpu_count()} cores)")
    for name in wanted:
        with tempfile.TemporaryDirectory(prefix="badminima-cold-") as tmp:
            cache = os.path.join(tmp, "numba")
            if name == "warm":
                cmd = exe + ["train", "-n", "1", "--steps", "1", "-o", os.path.join(tmp, "w.h5"), "--quiet"]
                timed(cmd, cache, tmp)                                   # fills the caches
                os.remove(os.path.join(tmp, "w.h5"))
                best = min(timed(cmd[:-3] + ["-o", os.path.join(tmp, f"w{k}.h5"), "--quiet"], cache, tmp)[0]
                           for k in range(3))
                with open(os.path.join(tmp, "floor.py"), "w") as fh:
                    fh.write(FLOOR)
                call = [sys.executable, "-c", "import numpy, floor; floor.f(numpy.ones(3))"]
                floor = min(timed(call, cache, tmp)[0] for k in range(4))      # the first fills the cache
                print(f"{'warm start (train -n 1 --steps 1)':<34}{best:>9.2f}")
                print(f"{'  floor: one cached Numba call':<34}{floor:>9.2f}   (warm start / floor = {best / floor:.2f})")
                continue
            if name == "suite":
                cmd, cwd, label = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], ROOT, "test suite"
            elif name in jobs:
                cmd, cwd, label = jobs[name] + ["--out-dir" if name == "reproduce" else "-o",
                                                os.path.join(tmp, "out" if name == "reproduce" else "t1.h5")], tmp, \
                    " ".join(jobs[name][3:])
            else:
                raise SystemExit(f"unknown job {name!r}: choose among reproduce, table1, warm, suite")
            wall, cpu, _ = timed(cmd, cache, cwd)
            print(f"{label:<34}{wall:>9.1f}{cpu:>9.1f}{cpu / wall:>12.2f}")


if __name__ == "__main__":
    main()
