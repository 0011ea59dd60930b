"""The Python API (docs/api.md): its examples run as written, and it validates like the CLI."""
import re
from pathlib import Path

import numpy as np
import pytest

import badminima as bm

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _blocks():
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.mark.parametrize("k", range(2))
def test_docs_examples_run(k, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = _blocks()
    assert len(blocks) == 2
    exec(compile(blocks[k], f"docs/api.md block {k}", "exec"), {})


def test_in_memory_equals_the_file_and_the_cli_run(tmp_path, xor):
    from click.testing import CliRunner
    from badminima.cli import main
    mem = bm.train(networks=100, steps=300, seed=4)
    path = tmp_path / "r.h5"
    r = CliRunner().invoke(main, ["train", "-q", "-n", "100", "--steps", "300", "--seed", "4", "-o", str(path)])
    assert r.exit_code == 0, r.output
    f = bm.open(str(path))
    for key in mem.fields:
        np.testing.assert_array_equal(mem[key], f[key], err_msg=key)
    assert mem.counts() == f.counts()
    df = f.to_pandas(weights=True)
    assert list(df.columns[:4]) == ["cell", "index", "outcome", "optimizer_outcome"]
    assert df["outcome"].dtype.name == "category" and (df["hidden"] == 2).all() and "w01" in df


@pytest.mark.parametrize("kw,err", [(dict(hidden=0), bm.ConfigError), (dict(dataset="nope"), bm.DataError),
                                    (dict(optimizer="sgdx"), bm.ConfigError), (dict(lr=-1.0), bm.ConfigError)])
def test_bad_arguments_raise_one_line_errors(kw, err):
    with pytest.raises(err) as e:
        bm.train(**kw)
    assert "\n" not in str(e.value)


def test_open_refuses_a_missing_file(tmp_path):
    with pytest.raises(bm.StoreError):
        bm.open(str(tmp_path / "missing.h5"))
    with pytest.raises(bm.StoreError):
        bm.train(networks=10, steps=10).data("nope")


def test_verify_returns_every_claim():
    checks = bm.verify(certify=False)
    assert len(checks) == 40 and {c["verdict"] for c in checks} <= {"agrees", "agrees after correction", "disagrees",
                                                                     "agrees after the stated correction", "unavailable"}
    assert all(c["claim"] and "paper" in c for c in checks)
