"""Shared fixtures: small configs and datasets for the engine tests, small stored runs for the analysis."""
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from badminima.engine.train.config import InitSpec, TrainConfig
from badminima.engine.data.datasets import load_dataset


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
