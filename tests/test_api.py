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


def test_outputs_threads_and_names_are_checked_up_front(tmp_path):
    """A bad output or thread count is refused before any work; a single name is not split into letters."""
    (tmp_path / "d").mkdir()
    for kw in (dict(output=""), dict(output=str(tmp_path / "d")), dict(output=3)):
        with pytest.raises(bm.StoreError):
            bm.train(networks=8, steps=10, **kw)
    for threads in (0, -1, "2"):
        with pytest.raises(bm.ConfigError):
            bm.train(networks=8, steps=10, threads=threads)
    with pytest.raises(bm.ConfigError):
        bm.table1("8")
    for bad in (None, 3):
        with pytest.raises(bm.StoreError):
            bm.open(bad)
    with pytest.raises(bm.StoreError, match="is a directory"):
        bm.open(str(tmp_path / "d"))
    res = bm.train(networks=8, steps=10)
    assert list(res.data(fields="loss")) == ["loss"]
    with pytest.raises(bm.StoreError, match="no field 'nope'"):
        res.data(fields=["nope"])
    assert list(bm.certify("relu_d1", points="prop1")["points"]) == ["prop1"]


@pytest.mark.parametrize("call,kw,needle", [
    ("train", dict(lr="0.5"), "--lr must be a number"), ("train", dict(finish_horizon="1"), "must be a number"),
    ("train", dict(init=None), "init must be a law"), ("train", dict(early_exit="no"), "early_exit must be True"),
    ("train", dict(foo=1), "unknown training option 'foo'"), ("table1", dict(foo=1), "unknown Table 1 protocol"),
    ("train", dict(kind="regression"), "'kind': set from the dataset"),
    ("search", dict(points=5, bar=2), "unknown search option 'bar'")])
def test_options_of_the_wrong_type_or_name_are_one_config_error(call, kw, needle, tmp_path):
    """Python values the command line cannot produce (a string for a number, None for a law, a
    misspelt keyword) are refused as ConfigError naming the option, before any work."""
    kw = dict(kw, output=str(tmp_path / "r.h5")) if call != "train" else dict(kw, networks=4, steps=10)
    with pytest.raises(bm.ConfigError, match=needle):
        getattr(bm, call)(**kw)
    assert not any(tmp_path.iterdir())


def test_plot_and_report_are_the_command_lines(tmp_path, monkeypatch):
    """bm.plot draws the figure `badminima plot` draws (the same PNG bytes), returns it as a Figure, and
    refuses in-memory results and bad values before drawing; bm.report writes the same report.md."""
    from click.testing import CliRunner
    from matplotlib.figure import Figure
    from badminima.cli import main
    monkeypatch.chdir(tmp_path)
    res = bm.train(networks=128, steps=400, seed=2, output="r.h5")
    fig = bm.plot("regions", res, networks=np.array([0, 3]), output="api.png", dpi=np.int64(200))
    assert isinstance(fig, Figure) and len(fig.axes) >= 2
    r = CliRunner().invoke(main, ["plot", "regions", "r.h5", "--networks", "0,3", "--figure", "cli.png"])
    assert r.exit_code == 0, r.output
    assert Path("api.png").read_bytes() == Path("cli.png").read_bytes()
    assert Path("api.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path = bm.report("r.h5", "rep-api", pdf=False, tol=np.float32(1e-4))
    r = CliRunner().invoke(main, ["report", "r.h5", "--out-dir", "rep-cli", "--no-pdf", "-q"])
    assert r.exit_code == 0, r.output
    strip = lambda p: [ln for ln in Path(p).read_text().splitlines() if "generated" not in ln.lower()]
    assert path == str(Path("rep-api") / "report.md") and strip(path) == strip("rep-cli/report.md")
    with pytest.raises(bm.StoreError, match="held in memory"):
        bm.plot("losses", bm.train(networks=64, steps=10))
    for kw, needle in ((dict(kind="nope"), "unknown figure"), (dict(kind="losses", output="r.h5"), "HDF5 result file"),
                       (dict(kind="losses", dpi=5), "dpi"), (dict(kind="losses", size=(0, 3)), "size")):
        with pytest.raises((bm.AnalysisError, bm.StoreError), match=needle):
            bm.plot(source="r.h5", **kw)
    with pytest.raises(bm.AnalysisError, match="tol must be positive"):
        bm.report("r.h5", "rep-bad", tol=-1)
    assert not Path("rep-bad").exists()


def test_verify_returns_every_claim():
    checks = bm.verify(certify=False)
    assert len(checks) == 40 and {c["verdict"] for c in checks} <= {"agrees", "agrees after correction", "disagrees",
                                                                     "agrees after the stated correction", "unavailable"}
    assert all(c["claim"] and "paper" in c for c in checks)
