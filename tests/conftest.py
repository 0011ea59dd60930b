"""Shared fixtures: small configs and datasets for the engine tests, small stored runs for the analysis,
and the suite's kernels compiled in parallel before the first test."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from badminima.engine.train.config import InitSpec, TrainConfig
from badminima.engine.data.datasets import load_dataset


# Every kernel variant the suite trains with, (d, h, activation, loss, optimizer, dtype, fused points),
# written by a run with BADMINIMA_RECORD_VARIANTS=FILE (see pytest_configure; then `sort -u`).  A cold
# suite compiles them in parallel worker processes first; a variant missing here is just compiled where
# it is used.  Only training runs are recorded: a test that reads a module's code or compiles into a
# kernel folder of its own (BADMINIMA_KERNEL_DIR) would gain nothing from a precompiled kernel.
SUITE_VARIANTS = Path(__file__).with_name("suite_variants.txt")


def pytest_configure(config):
    from badminima.engine.train import gcpolicy
    gcpolicy.for_compiling()            # test processes compile too (engine/train/gcpolicy.py)
    record = os.environ.get("BADMINIMA_RECORD_VARIANTS")
    if not record:
        return
    import badminima.engine.train.run as run
    orig = run.load_kernel_module

    def logged(*args):
        if not os.environ.get("BADMINIMA_KERNEL_DIR"):
            with open(record, "a") as f:
                f.write(repr(tuple(args)) + "\n")
        return orig(*args)
    run.load_kernel_module = logged


# The package's own jitted functions that the tests use: the search's (about 90 s of compiling on one
# core) and the classification and finisher that every training run calls (compiled by Precompiler's
# callers, not its workers).  A cold suite compiles them in a process of their own beside the kernel
# variants, once, instead of once in each test worker that needs them.
_WARM_PACKAGE = (
    "import numpy as np\n"
    "from badminima.engine.train import gcpolicy\n"
    "gcpolicy.for_compiling()\n"
    "from badminima.engine.search import kernels as sk, run as search\n"
    "from badminima.engine.train.precompile import Variant, warm_outcomes\n"
    "warm_outcomes(Variant(2, 2, 'sigmoid', 'xent', 'gd', 'float64', 4))\n"
    "for s in ('joint', 'paper'):\n"
    "    cfg = search.SearchConfig(points=10, budget=4, seed=0, iters=2, strategy=s).validate()\n"
    "    search.float_stage(cfg, np.arange(4), threads=1)\n"
    "X, y, th = sk.search_starts(np.uint64(4), np.arange(1), 9, 2, np.array([4, 3]), 4.0, 1.0, 6.0)\n"
    "cfg = search.SearchConfig(points=9, budget=1, seed=4, strategy='paper', iters=2).validate()\n"
    "sk.optimize_paper(X[0], y[0], np.ones(9), th[0], 2, cfg.hyper(), np.empty(8), np.zeros(1, np.int64))\n")


def pytest_sessionstart(session):
    """Compile the suite's kernel variants that are not cached yet, in parallel processes (and the
    package's functions in one more, _WARM_PACKAGE), once, before any test: in the pytest-xdist
    controller, before it starts its test workers (this hook runs before xdist's), or in the one process
    without xdist."""
    if hasattr(session.config, "workerinput"):
        return
    from badminima.engine.core.jit import in_disk_cache
    from badminima.engine.search import joint_soa
    from badminima.engine.train import finish
    from badminima.engine.train.precompile import Precompiler, Variant
    if not SUITE_VARIANTS.exists() or os.environ.get("BADMINIMA_RECORD_VARIANTS"):
        return
    rows = [ast.literal_eval(line) for line in SUITE_VARIANTS.read_text().split("\n") if line.strip()]
    # the costliest to compile first (Adam, then wide h, then fused points), so that the last to finish
    # are short and both cores stay busy to the end
    variants = sorted((Variant(*row, *(0,) * (7 - len(row))) for row in rows),
                      key=lambda v: (v.opt == "adam", v.h, v.n_fused), reverse=True)
    cached = in_disk_cache(joint_soa.joint_block) and in_disk_cache(finish.finish_claimed)
    package = None if cached else subprocess.Popen([sys.executable, "-c", _WARM_PACKAGE],
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with Precompiler(variants, progress=False) as pre:
            for v in variants:
                pre.wait(v)
        if package is not None:
            package.wait()          # a failure shows in the tests themselves
    finally:
        if package is not None and package.poll() is None:
            package.kill()
            package.wait()


def make_cfg(ds, **kw):
    """A validated TrainConfig for dataset ds with overrides."""
    base = dict(dataset=ds.name, dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=2,
                networks=64, steps=100)
    base.update(kw)
    if isinstance(base.get("init"), str):
        base["init"] = InitSpec.parse(base["init"])
    return TrainConfig(**base).validate()


@pytest.fixture(scope="session")
def xor():
    return load_dataset("xor")


@pytest.fixture(scope="session")
def paper10():
    return load_dataset("paper10")


@pytest.fixture(scope="session")
def relu_d1():
    return load_dataset("relu_d1")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def interrupt_shard(monkeypatch, run, shard, out, chunk=40):
    """Leave a partial shard file: run `badminima RUN --shard SHARD -o OUT` in-process and interrupt it
    after its first committed chunk (the progress hook raises); sys.argv marks the file's command as
    "interrupted-by-test", so a test can tell a resumed file from a recomputed one."""
    from badminima.cli import main
    from badminima.engine.train import cells as runs
    orig, calls = runs.Progress.update, {"n": 0}

    def boom(self, n):
        orig(self, n)
        calls["n"] += 1
        raise KeyboardInterrupt
    with monkeypatch.context() as m:
        m.setattr(runs.Progress, "update", boom)
        m.setattr(sys, "argv", ["interrupted-by-test"])
        r = CliRunner().invoke(main, [*run, "-q", "--shard", shard, "--chunk", str(chunk), "-o", str(out)])
    assert r.exit_code == 130 and calls["n"] == 1, r.output


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Small stored runs for the analysis, figure and output tests: xor sigmoid GD h=2 in two shards and
    h=3, fxor sigmoid Adam (drifts), relu_d1 (flat minima)."""
    from badminima.cli import main
    d = tmp_path_factory.mktemp("runs")
    base = ["train", "-q", "--seed", "3"]
    specs = {
        "xor2.s0.h5": ["--dataset", "xor", "-H", "2", "-n", "160", "--steps", "1500", "--shard", "0/2"],
        "xor2.s1.h5": ["--dataset", "xor", "-H", "2", "-n", "160", "--steps", "1500", "--shard", "1/2"],
        "xor3.h5": ["--dataset", "xor", "-H", "3", "-n", "160", "--steps", "1500"],
        "fxor.h5": ["--dataset", "fxor", "--opt", "adam", "--lr", "0.01", "-n", "150", "--steps", "2000"],
        "d1.h5": ["--dataset", "relu_d1", "--act", "relu", "-H", "1", "--lr", "0.01", "-n", "120", "--steps", "2000"],
    }
    for name, args in specs.items():
        r = CliRunner().invoke(main, base + args + ["-o", str(d / name)], catch_exceptions=False)
        assert r.exit_code == 0, r.output
    return d


def survivors(pids, within: float = 15.0) -> list:
    """The processes of `pids` still alive (not zombies) after waiting up to `within` seconds for them to
    exit; each is SIGKILLed so that a failing test leaves none behind."""
    import signal
    import time

    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False
    deadline = time.monotonic() + within
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [w for w in pids if alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    return left
