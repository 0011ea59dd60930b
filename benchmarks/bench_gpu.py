"""The GPU backend on a real GPU: everything issue 19 asks to measure, in one command.

    python benchmarks/bench_gpu.py [--quick] [--json OUT.json] [--table1-networks 1000000]
    python benchmarks/bench_gpu.py --ptx            # no GPU: compile every kernel to PTX (numba-cuda + NVVM;
                                                    # exit code 3 where they are missing)
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/bench_gpu.py --smoke   # no GPU: every section at toy sizes

Runs from a checkout without installing it (a link named `badminima` to this checkout goes first on
sys.path unless the package installed is this checkout), with numba and numba-cuda.  Sections, each timed and
printed as it ends (a run cut short still reports what it finished):

  1. starts    the kernel's own random starts against the host's (init_many), bit for bit, per init law
  2. kernels   network-steps/s of the CUDA kernel alone (inputs in, results out, no classification):
               sigmoid/ReLU x GD/Adam x h = 2, 7 x float32/float64, without early exit (every network
               runs the whole budget) and with it (budgeted network-steps / time, and steps taken / time)
  3. host      per-network cost of what follows the kernel: random starts on the host, the float64
               classification and the finisher, each on the host's threads and on the GPU (and how
               often their verdicts agree), the HDF5 writing (on a Table 1 cell's real end states)
  4. agree     CPU vs GPU on the same starts, network by network, on two Table 1 cells: the optimizer's
               verdict and the final outcome (>= 99% expected; the disagreements listed by kind)
  5. table1    `badminima table1 -n N --device cuda` end to end after compilation (48 cells + the SGD
               claim cells, classification, finisher, streaming to HDF5), with the time per phase

Targets (issue 19, H200): float32 >= 1.0e11 and float64 >= 2.5e10 network-steps/s for h = 2 sigmoid GD
without early exit; table1 at 10^6 networks per cell in <= 60 s after compilation.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _import_badminima():
    """Import this checkout's package: the installed one if it is this checkout, else (not installed,
    or installed from elsewhere) through a link named badminima to this checkout, first on sys.path."""
    import importlib.util
    spec = importlib.util.find_spec("badminima")
    if spec is None or spec.origin is None or Path(spec.origin).resolve().parent != ROOT:
        d = Path(tempfile.mkdtemp(prefix="badminima-link-"))
        (d / "badminima").symlink_to(ROOT, target_is_directory=True)
        sys.path.insert(0, str(d))
    import badminima
    assert Path(badminima.__file__).resolve().parent == ROOT, badminima.__file__


_import_badminima()

import numpy as np  # noqa: E402

from badminima.engine.core.names import INIT_LAWS  # noqa: E402
from badminima.engine.data.datasets import load_dataset  # noqa: E402
from badminima.engine.paper.table1 import Protocol  # noqa: E402
from badminima.engine.train.config import InitSpec, TrainConfig  # noqa: E402

RESULTS: dict = {}
#: the step budget measured throughout: Table 1's
BUDGET = Protocol().steps


def say(msg: str = "") -> None:
    print(msg, flush=True)


def section(name: str):
    def deco(fn):
        def run(*a, **kw):
            say(f"\n== {name} ==")
            t = time.perf_counter()
            try:
                RESULTS[name] = fn(*a, **kw)
            except Exception as e:  # noqa: BLE001 - report and go on with the next section
                import traceback
                traceback.print_exc()
                RESULTS[name] = {"error": f"{type(e).__name__}: {e}"}
            say(f"({name}: {time.perf_counter() - t:.1f} s)")
        return run
    return deco


def config(ds, act="sigmoid", opt="gd", h=2, dtype="float32", steps=BUDGET, n=1, early=True, init="normal:1",
           device="cuda", finish=100.0):
    lr = 1e-3 if opt == "adam" else 0.5
    return TrainConfig(dataset=ds.name, dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=h, activation=act,
                       optimizer=opt, lr=lr, steps=steps, networks=n, dtype=dtype, early_exit=early,
                       init=InitSpec.parse(init), finish_horizon=finish, device=device).validate()


def environment() -> dict:
    from importlib import metadata
    import numba
    from numba import cuda
    env = {"python": platform.python_version(), "numba": numba.__version__, "numpy": np.__version__,
           "cpu_cores": os.cpu_count(), "numba_threads": numba.config.NUMBA_NUM_THREADS}
    try:
        env["numba_cuda"] = metadata.version("numba-cuda")
    except metadata.PackageNotFoundError:
        env["numba_cuda"] = None
    from badminima.engine.cuda.launch import simulated
    if simulated():
        env["gpu"] = "Numba's CUDA simulator (figures meaningless)"
        return env
    dev = cuda.get_current_device()
    env["gpu"] = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    env["sms"] = int(dev.MULTIPROCESSOR_COUNT)
    env["compute_capability"] = list(dev.compute_capability)
    return env


def _kernel_run(cfg, ds, n, th0=None):
    """One chunk through the CUDA kernel alone; (seconds, steps taken, results)."""
    from numba import cuda
    from badminima.engine.cuda.codegen import load_kernel_module
    from badminima.engine.cuda.launch import submit
    from badminima.engine.train.run import hyper
    F = np.dtype(cfg.dtype)
    X, y = np.array(ds.x, F), np.array(ds.y, F)
    mod = load_kernel_module(ds.d, cfg.hidden, cfg.activation, cfg.loss, cfg.optimizer, cfg.dtype, ds.n)
    P = cfg.hidden * (ds.d + 2) + 1
    th = np.zeros((0, P)) if th0 is None else th0
    args = (cfg.seed, 0, n, np.zeros(0, np.int64), th, INIT_LAWS[cfg.init.law], cfg.init.scale,
            cfg.init.bias == "zero", hyper(cfg, ds.x), cfg.steps, cfg.check_every)
    cuda.synchronize()
    t = time.perf_counter()
    res = submit(mod, X, y, *args).result()
    dt = time.perf_counter() - t
    return dt, int(res[1].sum()), res


@section("starts")
def starts(n: int):
    """Device-drawn starts (a budget of 0 steps: the kernel returns them) against init_many, per law."""
    from badminima.engine.core.model import init_many
    from badminima.engine.cuda.codegen import load_kernel_module
    from badminima.engine.cuda.launch import submit
    from badminima.engine.train.run import hyper
    ds = load_dataset("xor")
    cfg = config(ds, h=7, dtype="float64")
    mod = load_kernel_module(2, 7, "sigmoid", "xent", "gd", "float64", 4)
    out = {}
    for law in ("normal", "he", "uniform", "glorot"):
        submit(mod, ds.x, ds.y, 0, 0, 32, np.zeros(0, np.int64), np.zeros((0, 29)), INIT_LAWS[law], 1.0, False,
               hyper(cfg, ds.x), 0, 16).result()              # compile / warm
        t = time.perf_counter()
        got = submit(mod, ds.x, ds.y, 0, 0, n, np.zeros(0, np.int64), np.zeros((0, 29)), INIT_LAWS[law], 1.0, False,
                     hyper(cfg, ds.x), 0, 16).result()[3]
        dt = time.perf_counter() - t
        t = time.perf_counter()
        want = init_many(0, 0, n, 2, 7, INIT_LAWS[law], 1.0, False)
        dh = time.perf_counter() - t
        diff = int(np.sum(np.any(got != want, axis=1)))
        out[law] = {"networks": n, "differ": diff, "max_abs_diff": float(np.max(np.abs(got - want))),
                    "device_s": dt, "host_1core_s": dh}
        say(f"{law:8s} {n} networks (h = 7): {diff} differ from the host's (max |diff| "
            f"{out[law]['max_abs_diff']:.3g}); device {dt:.3f} s, host init_many 1 core {dh:.2f} s")
    return out


@section("kernels")
def kernels(n: int, steps: int, quick: bool):
    ds = load_dataset("xor")
    grid = [("sigmoid", "gd", 2, "float32"), ("sigmoid", "gd", 2, "float64")] if quick else \
        list(itertools.product(("sigmoid", "relu"), ("gd", "adam"), (2, 7), ("float32", "float64")))
    from badminima.engine.train.starts import init_range
    rows = []
    say(f"XOR, {n} networks x {steps} steps, init normal:1 (starts from the host, not timed)")
    say(f"{'act':8s}{'opt':6s}{'h':>3s}{'dtype':>9s}{'no early exit':>16s}{'early: budget/s':>17s}"
        f"{'early: taken/s':>16s}{'compile s':>11s}")
    for act, opt, h, dt in grid:
        base = config(ds, act, opt, h, dt, steps, n, early=False, finish=0)
        th0 = init_range(np.uint64(0), 0, n, 2, h, INIT_LAWS["normal"], 1.0, False)
        t = time.perf_counter()
        _kernel_run(base, ds, min(n, 64), th0[:64])          # compile (or load from the cache) and warm
        comp = time.perf_counter() - t
        full_s, full_taken, _ = _kernel_run(base, ds, n, th0)
        from dataclasses import replace
        early_s, early_taken, _ = _kernel_run(replace(base, early_exit=True), ds, n, th0)
        row = {"act": act, "opt": opt, "h": h, "dtype": dt, "networks": n, "steps": steps,
               "no_early_exit": full_taken / full_s, "early_budget_rate": n * steps / early_s,
               "early_taken_rate": early_taken / early_s, "early_mean_steps": early_taken / n, "compile_s": comp}
        rows.append(row)
        say(f"{act:8s}{opt:6s}{h:>3d}{dt:>9s}{row['no_early_exit']:>16.3g}{row['early_budget_rate']:>17.3g}"
            f"{row['early_taken_rate']:>16.3g}{comp:>11.1f}")
    return rows


@section("host")
def host(n: int, budget: int = BUDGET):
    """Per-network cost of everything after the kernel on a GPU-trained Table 1 cell: on the host, and
    for the classification and the finisher also on the GPU."""
    from dataclasses import replace

    import numba

    from badminima.engine.core.outcomes import DRIFTING, OUT_OF_STEPS
    from badminima.engine.core.layout import n_params
    from badminima.engine.store import RunWriter, encode
    from badminima.engine.train import run as R
    from badminima.engine.train.starts import init_range
    out = {}
    for name, act, opt, h in (("xor", "sigmoid", "gd", 2), ("fxor", "relu", "adam", 7)):
        ds = load_dataset(name)
        cfg = config(ds, act, opt, h, "float32", budget, n)
        t = time.perf_counter()
        th0 = init_range(np.uint64(0), 0, n, 2, h, INIT_LAWS["normal"], 1.0, False)
        t_start = time.perf_counter() - t
        ks, _, (raw, steps, first, theta) = _kernel_run(cfg, ds, n, th0)
        X, y = np.array(ds.x, np.float64), np.array(ds.y, np.float64)
        t = time.perf_counter()
        host_cls = R._classified(replace(cfg, device="cpu"), theta, raw, X, y)
        t_cls = time.perf_counter() - t
        R._classified(cfg, theta[:64], raw[:64], X, y)                     # compiles the GPU classification
        t = time.perf_counter()
        res = R._classified(cfg, theta, raw, X, y)
        t_cls_gpu = time.perf_counter() - t
        same_cls = host_cls["outcome"] == res["outcome"]
        t = time.perf_counter()
        host_fin = R._finished(replace(cfg, device="cpu"), theta, res["outcome"], X, y)
        t_fin = time.perf_counter() - t
        todo = np.isin(res["outcome"], (OUT_OF_STEPS, DRIFTING))
        R._finished(cfg, theta[todo][:64], res["outcome"][todo][:64], X, y)   # compiles the GPU finisher
        t = time.perf_counter()
        res.update(R._finished(cfg, theta, res["outcome"], X, y))
        t_fin_gpu = time.perf_counter() - t
        same = (host_fin["outcome"] == res["outcome"])[todo]              # where the finisher ran
        res.update(index=np.arange(n, dtype=np.int64), steps=steps, solved_at=first, weights=theta)
        with tempfile.TemporaryDirectory() as d:
            with RunWriter.open(os.path.join(d, "w.h5"), {"command": "bench", **cfg.to_dict()},
                                {"main": (cfg.to_dict(), n, n_params(2, h))}, training=True,
                                append_rows=R.CUDA_CHUNK) as w:
                t = time.perf_counter()
                for a in range(0, n, R.CUDA_CHUNK):
                    w.append("main", {k: v[a:a + R.CUDA_CHUNK] for k, v in res.items()})
                t_write = time.perf_counter() - t
        ran = int(np.sum(res["finish_iters"] >= 0))
        row = {"networks": n, "threads": numba.config.NUMBA_NUM_THREADS, "kernel_s": ks,
               "starts_per_s": n / t_start, "classify_per_s": n / t_cls, "finisher_per_s": n / t_fin,
               "gpu_classify_per_s": n / t_cls_gpu, "classify_verdicts_agree": float(same_cls.mean()),
               "gpu_finisher_per_s": n / t_fin_gpu, "finisher_verdicts_agree": float(same.mean()),
               "finisher_ran_on": ran, "write_per_s": n / t_write, "write_codec": encode.codec()}
        out[f"{name} {act} {opt} h={h}"] = row
        say(f"{name} {act} {opt} h={h}, {n} networks, {row['threads']} threads (networks/s): host starts "
            f"{row['starts_per_s']:.3g}, classification on the host {row['classify_per_s']:.3g} and on the GPU "
            f"{row['gpu_classify_per_s']:.3g} (verdicts equal {row['classify_verdicts_agree']:.2%}), finisher on the host "
            f"{row['finisher_per_s']:.3g} and on the GPU {row['gpu_finisher_per_s']:.3g} (ran on {ran}; verdicts "
            f"equal {row['finisher_verdicts_agree']:.2%}), HDF5 writing {row['write_per_s']:.3g} "
            f"(deflate by {row['write_codec']}); the kernel took "
            f"{ks:.2f} s ({n / ks:.3g} networks/s)")
    return out


@section("agree")
def agree(n: int, steps: int = BUDGET):
    from dataclasses import replace
    from badminima.engine.core.outcomes import NAMES
    from badminima.engine.train.run import train_range
    out = {}
    for name, act, opt, h in (("xor", "sigmoid", "gd", 2), ("fxor", "relu", "adam", 7)):
        ds = load_dataset(name)
        cfg = config(ds, act, opt, h, "float32", steps, n, device="cpu")
        cpu = train_range(cfg, ds.x, ds.y, 0, n)
        gpu = train_range(replace(cfg, device="cuda"), ds.x, ds.y, 0, n)
        row = {"networks": n}
        for key in ("optimizer_outcome", "outcome"):
            same = cpu[key] == gpu[key]
            pairs: dict = {}
            for a, b in zip(cpu[key][~same], gpu[key][~same]):
                k = f"{NAMES[int(a)]} (cpu) / {NAMES[int(b)]} (gpu)"
                pairs[k] = pairs.get(k, 0) + 1
            row[key] = {"agree": float(same.mean()), "disagreements": pairs}
            say(f"{name} {act} {opt} h={h}, {n} networks, {key}: {100 * same.mean():.2f}% agree; "
                f"disagreements: {pairs}")
        row["steps_equal"] = float(np.mean(cpu["steps"] == gpu["steps"]))
        out[f"{name} {act} {opt} h={h}"] = row
    return out


@section("table1")
def table1(n: int, steps: int = BUDGET):
    from badminima.analysis.table1 import table1_report
    from badminima.engine.paper.table1 import run_table1
    from badminima.engine.store import write
    from badminima.engine.train import run as R
    prot = Protocol(device="cuda", steps=steps)
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()          # compile every variant first (1 network per cell)
        run_table1(prot, 1, path=os.path.join(d, "warm.h5"), check_final=0, with_claims=False, progress=False)
        comp = time.perf_counter() - t
        say(f"compiled / loaded every kernel variant in {comp:.1f} s")
        T = {"classification": 0.0, "finisher": 0.0, "hdf5 append": 0.0}
        orig = (R._classified, R._finished, write.RunWriter.append)

        def timed(key, fn):
            def wrapper(*a, **kw):
                t0 = time.perf_counter()
                try:
                    return fn(*a, **kw)
                finally:
                    T[key] += time.perf_counter() - t0
            return wrapper
        R._classified, R._finished = timed("classification", orig[0]), timed("finisher", orig[1])
        write.RunWriter.append = timed("hdf5 append", orig[2])
        try:
            t = time.perf_counter()
            run = run_table1(prot, n, path=os.path.join(d, "t1.h5"), progress=True)
            wall = time.perf_counter() - t
        finally:
            R._classified, R._finished, write.RunWriter.append = orig
        # the rest: waiting for kernels the host work did not overlap, transfers, the claims and the
        # finality check (which trains its sample again, on the GPU), bookkeeping
        T["rest"] = wall - sum(T.values())
        say(table1_report(run)["text"])
    say(f"table1 -n {n} --device cuda: {wall:.1f} s after compilation ({comp:.1f} s); time in "
        + ", ".join(f"{k} {v:.1f} s" for k, v in T.items()))
    return {"networks": n, "wall_s": wall, "compile_s": comp, "phases_s": T}


def ptx(quick: bool):
    """Compile every kernel variant and the classification and finisher kernels to PTX for sm_90 without
    a GPU (needs numba-cuda's NVVM: pip install 'numba-cuda[cu12]'); the check that the generated code is
    valid CUDA code."""
    from numba import cuda, types
    if getattr(cuda, "implementation", "") != "NVIDIA":
        say("--ptx needs numba-cuda (pip install 'numba-cuda[cu12]')")
        return None


    def probe(out):
        out[0] = 1.0
    try:                            # NVVM / NVRTC present? (numba-cuda alone does not bring them)
        cuda.compile_ptx(probe, (types.Array(types.float64, 1, "C"),), cc=(9, 0))
    except Exception as e:  # noqa: BLE001 - whatever is missing, the one-line reason
        say(f"--ptx needs numba-cuda's compiler libraries (pip install 'numba-cuda[cu12]'): {type(e).__name__}: "
            f"{str(e).strip().splitlines()[0][:200]}")
        return None
    import numba.cuda.dispatcher as dsp

    class _Device:                  # the device functions ask the current device for its compute capability
        compute_capability = (9, 0)
    dsp.get_current_device = lambda: _Device()
    from badminima.engine.cuda.codegen import load_kernel_module
    A = types.Array
    fails = 0
    grid = [("xor", "sigmoid", "gd", 2, "float32"), ("relu_d1", "relu", "adam", 3, "float64"),
            ("xor", "tanh", "sgd", 2, "float64")] if quick else \
        [(ds, act, opt, h, dt) for ds in ("xor", "paper10", "relu_d1") for act in ("sigmoid", "relu", "tanh")
         for opt in ("gd", "adam", "sgd") for h in (2, 7) for dt in ("float32", "float64")]
    for name, act, opt, h, dt in grid:
        ds = load_dataset(name)
        F = types.float64 if dt == "float64" else types.float32
        sig = (A(F, 2, "C"), A(F, 1, "C"), types.uint64, types.int64, A(types.int64, 1, "C"), A(types.int64, 1, "C"),
               types.int64, types.int64, types.float64, types.boolean, A(types.float64, 2, "C"),
               A(types.float64, 1, "C"), types.int64, types.int64, A(types.int8, 1, "C"), A(types.int64, 1, "C"),
               A(types.int64, 1, "C"), A(types.float64, 2, "C"))
        loss = "xent" if ds.kind == "classification" else "mse"
        t = time.perf_counter()
        try:
            mod = load_kernel_module(ds.d, h, act, loss, opt, dt, ds.n)
            text, _ = cuda.compile_ptx(mod.train_kernel.py_func, sig, cc=(9, 0))
            say(f"ok   {name} {act} {opt} h={h} {dt}: {len(text)} bytes of PTX, {time.perf_counter() - t:.1f} s")
        except Exception as e:  # noqa: BLE001
            fails += 1
            say(f"FAIL {name} {act} {opt} h={h} {dt}: {type(e).__name__}: {str(e)[:300]}")
    from badminima.engine.cuda.exact import load_exact_module
    f64, i64, M = A(types.float64, 1, "C"), types.int64, A(types.float64, 2, "C")
    sigs = {"classify_kernel": (M, A(types.int8, 1, "C"), A(types.int64, 1, "C"), M, f64, i64, i64, i64, i64, f64,
                                A(types.int8, 1, "C"), f64, f64, f64, f64),
            "finish_kernel": (M, A(types.int64, 1, "C"), types.float64, M, f64, i64, i64, i64, i64, f64, i64, i64, M,
                              A(types.int8, 1, "C"), A(types.int32, 1, "C"), f64, f64)}
    for P in (9,) if quick else (9, 29, 33):        # one module per size bucket (16, 32, 64)
        for kernel, sig in sigs.items():
            t = time.perf_counter()
            try:
                text, _ = cuda.compile_ptx(getattr(load_exact_module(P), kernel).py_func, sig, cc=(9, 0))
                say(f"ok   {kernel} P={P}: {len(text)} bytes of PTX, {time.perf_counter() - t:.1f} s")
            except Exception as e:  # noqa: BLE001
                fails += 1
                say(f"FAIL {kernel} P={P}: {type(e).__name__}: {str(e)[:300]}")
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer networks and variants (a smoke test)")
    ap.add_argument("--networks", type=int, default=1 << 20, help="networks per kernel measurement")
    ap.add_argument("--steps", type=int, default=BUDGET, help="step budget of the kernel measurements")
    ap.add_argument("--host-networks", type=int, default=1 << 20, help="networks of the host-cost measurement")
    ap.add_argument("--agree-networks", type=int, default=100_000, help="networks per CPU/GPU agreement cell")
    ap.add_argument("--table1-networks", type=int, default=1_000_000, help="networks per Table 1 cell (0: skip)")
    ap.add_argument("--only", default=None, help="comma-separated sections: starts,kernels,host,agree,table1")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    ap.add_argument("--ptx", action="store_true", help="no GPU needed: compile every variant to PTX, then exit")
    ap.add_argument("--smoke", action="store_true", help="every section at toy sizes: the script's own check, "
                                                          "also under the simulator (NUMBA_ENABLE_CUDASIM=1)")
    a = ap.parse_args()
    if a.ptx:
        fails = ptx(a.quick)
        sys.exit(3 if fails is None else 1 if fails else 0)
    if a.quick:
        a.networks, a.steps, a.host_networks, a.agree_networks = 1 << 16, 2000, 1 << 16, 10_000
        a.table1_networks = min(a.table1_networks, 10_000)
    # the sections' own step budgets are Table 1's (10^4), except in a smoke run
    exact_steps = BUDGET
    if a.smoke:
        a.quick, a.networks, a.steps, a.host_networks, a.agree_networks, a.table1_networks = True, 48, 32, 48, 24, 2
        exact_steps = 32
    from badminima.engine.cuda.launch import unavailable
    why = unavailable()
    if why:
        sys.exit(f"bench_gpu: {why}")
    RESULTS["environment"] = env = environment()
    say(" ".join(f"{k}={v}" for k, v in env.items()))
    only = set((a.only or "starts,kernels,host,agree,table1").split(","))
    if "starts" in only:
        starts(min(a.networks, 1 << 20))
    if "kernels" in only:
        kernels(a.networks, a.steps, a.quick)
    if "host" in only:
        host(a.host_networks, exact_steps)
    if "agree" in only:
        agree(a.agree_networks, exact_steps)
    if "table1" in only and a.table1_networks > 0:
        table1(a.table1_networks, exact_steps)
    if a.json:
        Path(a.json).write_text(json.dumps(RESULTS, indent=1, default=float) + "\n")
        say(f"json: {a.json}")
    failed = [k for k, v in RESULTS.items() if isinstance(v, dict) and "error" in v]
    if failed:
        sys.exit(f"bench_gpu: sections failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
