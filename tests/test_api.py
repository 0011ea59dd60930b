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
    assert mem.fields == f.fields                   # the same fields, in the same order
    for key in mem.fields:
        np.testing.assert_array_equal(mem[key], f[key], err_msg=key)
    assert mem.counts() == f.counts()
    assert list(mem.to_pandas().columns) == list(f.to_pandas().columns)
    df = f.to_pandas(weights=True)
    assert list(df.columns[:4]) == ["cell", "index", "outcome", "optimizer_outcome"]
    assert df["outcome"].dtype.name == "category" and (df["hidden"] == 2).all() and "w01" in df


def test_initial_weights_in_memory_in_a_file_and_from_the_cli(tmp_path):
    """init_weights=True keeps each network's start, which is (seed, index)'s draw, as --init-weights does."""
    from click.testing import CliRunner
    from badminima.cli import main
    from badminima.engine.core.model import init_many
    from badminima.engine.core.names import NORMAL
    mem = bm.train(networks=70, steps=40, seed=3, hidden=3, init_weights=True)
    assert mem.fields[-1] == "init_weights" and "init_weights" not in bm.train(networks=70, steps=40).fields
    want = init_many(3, 0, 70, 2, 3, NORMAL, 1.0, False)     # the normal:1 law, biases from it too
    np.testing.assert_array_equal(mem["init_weights"], want)
    assert not np.array_equal(mem["weights"], want)
    api_file = bm.train(networks=70, steps=40, seed=3, hidden=3, init_weights=True, output=str(tmp_path / "a.h5"))
    r = CliRunner().invoke(main, ["train", "-q", "-n", "70", "--steps", "40", "--seed", "3", "-H", "3", "--init-weights",
                                  "--check-final", "0", "-o", str(tmp_path / "c.h5")])
    assert r.exit_code == 0, r.output
    for res in (api_file, bm.open(str(tmp_path / "c.h5"))):
        assert res.fields == mem.fields
        for key in mem.fields:
            np.testing.assert_array_equal(res[key], mem[key], err_msg=key)
    with pytest.raises(bm.ConfigError, match="init_weights must be True or False"):
        bm.train(networks=4, steps=10, init_weights="yes")


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
    ("train", dict(lr="0.5"), "--lr must be a finite number"), ("train", dict(finish_horizon="1"), "must be a finite number"),
    ("train", dict(init=None), "init must be a law"), ("train", dict(early_exit="no"), "early_exit must be True"),
    ("train", dict(foo=1), "unknown training option 'foo'"), ("table1", dict(foo=1), "unknown Table 1 protocol"),
    ("train", dict(kind="regression"), "'kind': set from the dataset"),
    ("search", dict(points=5, bar=2), "unknown search option 'bar'"),
    ("table1", dict(networks=20, steps="50"), "--steps must be an integer"),
    ("table1", dict(networks=20, steps=True), "--steps must be an integer"),
    ("table1", dict(networks=20, sgd_lrs=None), "--sgd-lr must be a sequence"),
    ("table1", dict(networks=20, sgd_lrs=()), "--sgd-lr must be one or more"),
    ("table1", dict(networks=20, sgd_lrs=(0.1, 0.10000000001)), "--sgd-lr must be distinct"),
    ("table1", dict(networks=20, check_final="x"), "--check-final must be an integer"),
    ("table1", dict(networks=20, claims="no"), "claims must be True or False"),
    ("table1", dict(networks=20, progress="yes"), "progress must be True or False"),
    ("search", dict(points=6, budget="16"), "budget must be an integer"),
    ("search", dict(points=6, budget=16.5), "budget must be an integer"),
    ("search", dict(points=6, seed=1.5), "seed must be an integer"),
    ("search", dict(points=6, box=None), "box must be a finite number"),
    ("search", dict(points=6, found_dir=5), "--found-dir must be a string"),
    ("search", dict(points=6, ones="x,3"), "--ones must be comma-separated integers"),
    ("train", dict(finish_horizon=float("inf")), "--finish-horizon must be a finite number"),
    ("train", dict(gtol=float("inf")), "--gtol must be a finite number"),
    ("train", dict(wmax=0), "wmax must be positive"),
    ("train", dict(check_every=2 ** 70), "check_every must be in")])
def test_options_of_the_wrong_type_or_name_are_one_config_error(call, kw, needle, tmp_path):
    """Python values the command line cannot produce (a string for a number, None for a law, a
    misspelt keyword) are refused as ConfigError naming the option, before any work."""
    kw = dict(kw, output=str(tmp_path / "r.h5")) if call != "train" else dict(kw, networks=4, steps=10)
    with pytest.raises(bm.ConfigError, match=needle):
        getattr(bm, call)(**kw)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("call,kw,needle", [
    ("plot", dict(kind="losses", source="r.h5", outptu="f.png"), r"unknown plot\(\) option 'outptu' \(did you mean 'output'\?\)"),
    ("report", dict(source="r.h5", outdir="rep"), r"unknown report\(\) option 'outdir' \(did you mean 'out_dir'\?\)"),
    ("certify", dict(file="relu_d1", crosscheck=True), r"'crosscheck' \(did you mean 'cross_check'\?\)"),
    ("verify", dict(certfy=False), r"unknown verify\(\) option 'certfy'"),
    ("open", dict(path="r.h5"), r"unknown open\(\) option 'path' \(did you mean 'paths'\?\)"),
    ("load_dataset", dict(nmae="xor"), r"unknown load_dataset\(\) option 'nmae'"),
    ("train", dict(networks=4, outptu="r.h5"), r"unknown training option 'outptu' \(did you mean 'output'\?\)"),
    ("table1", dict(chek_final=0), r"did you mean 'check_final'"),
    ("search", dict(points=6, budgte=4), r"unknown search option 'budgte' \(did you mean 'budget'\?\)")])
def test_a_misspelt_keyword_is_a_config_error_with_the_nearest_name(call, kw, needle, tmp_path, monkeypatch):
    """Every API function refuses a keyword it does not take as ConfigError (not Python's TypeError),
    naming it and the nearest argument, before any work."""
    monkeypatch.chdir(tmp_path)
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
        with pytest.raises((bm.AnalysisError, bm.StoreError, bm.ConfigError), match=needle):
            bm.plot(source="r.h5", **kw)
    for kw in (dict(dpi="200"), dict(dpi=True), dict(size=(0, 3))):     # an option's value: ConfigError
        with pytest.raises(bm.ConfigError):
            bm.plot("losses", "r.h5", **kw)
    with pytest.raises(bm.ConfigError, match="title must be a string"):
        bm.plot("losses", "r.h5", title=3)
    for tol in (-1, "1e-4", float("nan")):
        with pytest.raises(bm.ConfigError, match="tol must be positive"):
            bm.report("r.h5", "rep-bad", tol=tol)
    assert not Path("rep-bad").exists()
    # Results stand for their files wherever a file is taken: bm.open, and a list of them for bm.report
    assert bm.open(res).counts() == res.counts()
    other = bm.train(networks=64, steps=10, seed=3, output="o.h5")
    two = bm.report([res, other], "rep-two", pdf=False, details=False)
    r = CliRunner().invoke(main, ["report", "r.h5", "o.h5", "--out-dir", "rep-two-cli", "--no-pdf", "--no-details", "-q"])
    assert r.exit_code == 0 and strip(two) == strip("rep-two-cli/report.md"), r.output


def test_verify_returns_every_claim():
    checks = bm.verify(certify=False)
    assert len(checks) == 40 and {c["verdict"] for c in checks} <= {"agrees", "agrees after correction", "disagrees",
                                                                     "agrees after the stated correction", "unavailable"}
    assert all(c["claim"] and "paper" in c for c in checks)


def test_numpy_values_paths_force_and_single_names(tmp_path, monkeypatch):
    """NumPy scalars count as the numbers they hold (and the file stores them as such); a Dataset object
    names its source; force=True replaces another run; one name stands for a list of one; a glob
    character in a file name is that file; check_every beyond the budget changes nothing and costs
    nothing; a found_dir that cannot be written is refused before the search."""
    monkeypatch.chdir(tmp_path)
    out = str(tmp_path / "r[1].h5")
    a = bm.train(networks=np.int64(64), steps=np.int64(50), seed=np.int64(3), lr=np.float32(0.5),
                 early_exit=np.bool_(True), output=out)
    b = bm.train(bm.load_dataset("xor"), networks=64, steps=50, seed=3, lr=float(np.float32(0.5)))
    assert a.config()["networks"] == 64 and np.array_equal(a["outcome"], b["outcome"])
    assert a.path == out and bm.open(out).n() == 64
    with pytest.raises(bm.StoreError, match="different configuration"):
        bm.train(networks=64, steps=51, output=out)
    assert bm.train(networks=64, steps=51, output=out, force=True).config()["steps"] == 51
    with pytest.raises(bm.StoreError, match="holds another run"):       # `a` was opened on the old run
        a["outcome"]
    a = bm.open(out)
    for ce in (10 ** 12, 51):
        same = bm.train(networks=64, steps=51, check_every=ce)
        assert all(np.array_equal(same[k], bm.open(out)[k], equal_nan=True) for k in ("outcome", "steps", "weights"))
    sgd = [bm.train("fxor", optimizer="sgd", networks=64, steps=60, lr=0.1, check_every=ce) for ce in (16, 10 ** 12)]
    assert all(np.array_equal(sgd[0][k], sgd[1][k], equal_nan=True) for k in ("outcome", "steps", "weights"))
    csv = tmp_path / "reg.csv"
    csv.write_text("x0,x1,y\n0,0,0\n1,1,1\n2,0,0\n")
    with pytest.raises(bm.DataError, match="cannot be reloaded"):     # its kind is not what the file says
        bm.train(bm.load_dataset(str(csv), "regression"), networks=4, steps=4)
    assert bm.train(bm.load_dataset("xor"), networks=4, steps=4).config()["dataset"] == "xor"
    import dataclasses
    edited = dataclasses.replace(bm.load_dataset("xor"), x=bm.load_dataset("xor").x * 2)
    with pytest.raises(bm.DataError, match="cannot be reloaded"):     # never trained on xor under its name
        bm.train(edited, networks=4, steps=4)
    assert bm.open(iter([out])).n() == 64 and list(a.data(fields=iter(["loss"]))) == ["loss"]
    assert "outcome" in a and "nope" not in a and list(a) == a.fields and a.data(fields=[]) == {}
    with pytest.raises(bm.StoreError, match="one field name"):
        a[["outcome", "loss"]]
    assert "weights" not in a.to_pandas().columns and "w00" in a.to_pandas(weights=True).columns
    monkeypatch.setenv("BADMINIMA_MEMORY_LIMIT", "1K")         # reads too are bounded
    with pytest.raises(bm.ResourceError, match="reading weights"):
        a.data(fields=["weights"])
    monkeypatch.delenv("BADMINIMA_MEMORY_LIMIT")
    s = bm.search(6, budget=2, ones=3, output=str(tmp_path / "s.h5"), found_dir=str(tmp_path / "f"))
    assert s["attempts"] == 2
    again = bm.search(6, budget=2, ones=3, output=str(tmp_path / "s.h5"), found_dir=str(tmp_path) + "/./f/")
    assert again["attempts"] == 2 and again["path"] == s["path"]     # one folder however spelt: reused
    assert bm.search(6, budget=2, ones="3", output=str(tmp_path / "s.h5"), found_dir=str(tmp_path / "f"))["path"] \
        == s["path"]                                                  # ones as the command line spells it
    found = bm.open(s["path"])                  # a search's Results count and show its verdicts by name
    assert found.counts() == s["verdicts"] and sum(found.counts().values()) == 2
    frame = found.to_pandas()
    assert list(frame["verdict"].cat.categories) == list(s["verdicts"]) and frame["verdict"].notna().all()
    with pytest.raises(bm.StoreError, match="no optimizer outcomes"):
        found.counts(optimizer=True)
    weights = found.to_pandas(weights=True)          # the 2-2-1 network's parameters, by name
    assert np.array_equal(weights[["v0", "w00", "w01", "b0", "v1", "w10", "w11", "b1", "c"]].to_numpy(),
                          found.data(fields=["weights"])["weights"])
    with pytest.raises(bm.StoreError, match="closest: search N=6 joint"):
        found.counts("nope")
    with pytest.raises(bm.AnalysisError, match="deadlock search"):
        bm.plot("convergence", str(tmp_path / "s.h5"))
    with pytest.raises(bm.StoreError, match="found-dir"):
        bm.search(6, budget=2, output=str(tmp_path / "s2.h5"), found_dir=str(tmp_path / "s.h5"))
    assert not (tmp_path / "s2.h5").exists() and not (tmp_path / "s2.h5.part").exists()
    paper = bm.search(9, budget=1, strategy="delete", output=str(tmp_path / "d9.h5"), found_dir=str(tmp_path / "f9"))
    assert bm.open(paper["path"]).config()["parents"] == ["paper10:W_hat"]     # the command line's default too
    d1 = bm.search(5, budget=2, seed=3)["path"]
    d2 = bm.search(5, budget=3, seed=3)["path"]             # another search: another default file
    assert d1 != d2 and d1.startswith("runs/search/N5-joint-seed3-")
    for bad in (None, 5):
        with pytest.raises(bm.ConfigError, match="source"):
            bm.plot("losses", bad)
    from badminima.analysis import plots
    monkeypatch.setattr(plots, "figure", lambda *a, **k: pytest.fail("drawn before the size was checked"))
    with pytest.raises(bm.ResourceError, match="100 x 100 inches at 1200 dpi"):
        bm.plot("losses", out, size=(100, 100), dpi=1200)


def test_outputs_never_replace_the_inputs_they_read(tmp_path, monkeypatch):
    """No output, force=True included, replaces a file its command reads: the dataset of a run, the
    parents of a search, the data file of certify's --json, the result files of a report (one inside
    the report folder under a name the report writes); a text output never replaces an HDF5 file."""
    import shutil
    from click.testing import CliRunner
    from badminima.cli import main
    monkeypatch.chdir(tmp_path)
    csv = tmp_path / "my.csv"
    csv.write_text("x0,x1,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n")
    before = csv.read_bytes()
    (tmp_path / "link.csv").symlink_to(csv)
    for out in ("my.csv", "link.csv"):
        with pytest.raises(bm.StoreError, match="which this command reads"):
            bm.train(dataset="my.csv", output=out, force=True, networks=5, steps=5)
    assert csv.read_bytes() == before
    parent = tmp_path / "p8.json"
    shutil.copy(bm.load_dataset("deadlock_n8").source, parent)
    with pytest.raises(bm.StoreError, match="which this command reads"):
        bm.search(7, strategy="delete", parents=str(parent), budget=2, output=str(parent), force=True,
                  found_dir=str(tmp_path / "f"))
    assert bm.load_dataset(str(parent)).points
    p10 = tmp_path / "p10.json"
    shutil.copy(bm.load_dataset("paper10").source, p10)
    r = CliRunner().invoke(main, ["certify", str(p10), "--point", "W_hat", "--json", str(p10)])
    assert r.exit_code == 1 and "which this command reads" in r.output and bm.load_dataset(str(p10)).points
    rp = tmp_path / "rp"
    rp.mkdir()
    bm.train(networks=20, steps=50, output=str(rp / "report.md"))
    for name in ("report.md", "outcomes.csv", "figures/a.png"):
        src = rp / name
        src.parent.mkdir(exist_ok=True)
        if name != "report.md":
            shutil.copy(rp / "report.md", src)
        with pytest.raises(bm.StoreError, match="one of the result files it reads"):
            bm.report(str(src), str(rp), pdf=False)
        assert bm.open(str(src)).n() == 20
    (tmp_path / "rp2" / "cells").mkdir(parents=True)
    kept = tmp_path / "rp2" / "cells" / "x.h5"                     # a name the report never writes
    shutil.copy(rp / "report.md", kept)
    assert bm.report(str(kept), str(tmp_path / "rp2"), pdf=False) and bm.open(str(kept)).n() == 20
    source = bm.load_dataset("paper10").source                      # a built-in name, resolved
    before = Path(source).read_bytes()
    r = CliRunner().invoke(main, ["certify", "paper10", "--point", "W_hat", "--json", source])
    assert r.exit_code == 1 and "which this command reads" in r.output and Path(source).read_bytes() == before
    bm.report(str(rp / "report.md"), str(tmp_path / "elsewhere"), pdf=False)
    shutil.copy(rp / "report.md", tmp_path / "elsewhere" / "paper.csv")     # an HDF5 file where a CSV goes
    with pytest.raises(bm.StoreError, match="HDF5 result file, which this output would replace"):
        bm.report(str(rp / "report.md"), str(tmp_path / "elsewhere"), pdf=False)
    assert bm.open(str(tmp_path / "elsewhere" / "paper.csv")).n() == 20


def test_paths_arrays_and_odd_names_in_the_api(tmp_path, monkeypatch):
    """A pathlib output is a path (the returned "path" a string); a 0-d array is its number; a NUL or an
    over-long name is a one-line error; a CSV written with a byte-order mark loads; digits are ASCII."""
    import pathlib
    monkeypatch.chdir(tmp_path)
    t = bm.table1(networks=2, steps=10, output=pathlib.Path("t1/x.h5"), claims=False, check_final=0)
    assert t["path"] == "t1/x.h5" and len(t["results"].cells) == 52
    with pytest.raises(bm.StoreError, match=r"name one \(cells: .*, \.\.\. \(52 in all\)\)$"):
        t["results"].data()                 # a many-cell run's cells, named in a line a reader can read
    # a cell named as --cell names it: its name, its label or words of its label that pick one
    res = t["results"]
    assert res.counts("fxor relu adam h=4") == res.counts("adam-fxor-relu-h4")
    with pytest.raises(bm.StoreError, match="'xor relu' matches .* cells"):
        res.counts("xor relu")
    with pytest.raises(bm.StoreError, match="no cell matches 'nonsense'; closest"):
        res.counts("nonsense")
    from click.testing import CliRunner
    from badminima.cli import main
    r = CliRunner().invoke(main, ["plot", "basins", "t1/x.h5", "--figure", "b.png"])
    assert r.exit_code == 2 and "(52 in all)" in r.output and len(r.output) < 1000, r.output
    s = bm.search(6, budget=2, ones=3, output=pathlib.Path("s.h5"), found_dir=str(tmp_path / "f"))
    assert s["path"] == "s.h5"
    assert bm.train(hidden=np.array(2), networks=np.array(5), steps=np.array(5)).config()["networks"] == 5
    with pytest.raises(bm.StoreError, match="NUL character"):
        bm.train(networks=5, steps=5, output="a\0.h5")
    with pytest.raises(bm.DataError, match="not a usable file name"):
        bm.load_dataset("a" * 300 + ".json")
    for bad in (None, 5):
        with pytest.raises(bm.DataError, match="built-in name .* or a .json/.csv file path"):
            bm.load_dataset(bad)
    with pytest.raises(bm.ConfigError, match="witness must be the name of a point"):
        bm.certify("paper10", points="W_hat", witness=pathlib.Path("W0"))
    (tmp_path / "bom.csv").write_text("\ufeffx0,x1,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n", encoding="utf-8")
    assert bm.load_dataset(str(tmp_path / "bom.csv")).n == 4
    (tmp_path / "arabic.csv").write_text("x0,x1,y\n0,0,0\n0,\u0661,1\n1,0,1\n1,1,0\n", encoding="utf-8")
    with pytest.raises(bm.DataError, match="not numeric"):
        bm.load_dataset(str(tmp_path / "arabic.csv"))
    (tmp_path / "huge.csv").write_text("x0,x1,y\n0,0,0\n0,1e300,1\n1,0,1\n1,1,0\n")
    with pytest.raises(bm.ConfigError, match="float32 cannot hold the data"):
        bm.train(dataset="huge.csv", dtype="float32", networks=4, steps=4, output="huge.h5")
    assert not (tmp_path / "huge.h5").exists() and not (tmp_path / "huge.h5.part").exists()
    assert bm.train(dataset="huge.csv", dtype="float64", networks=4, steps=4).config()["dtype"] == "float64"


def test_more_bad_arguments_are_one_line_errors(tmp_path, monkeypatch):
    """Methods check their keywords like the functions; extra positional arguments, a Fraction, a
    non-list of networks, too many networks for one figure, a sub-pixel figure, malformed rows files,
    witness or continuation settings that could not fit are all one-line errors before any work;
    in-memory arrays are read-only (counts() reads them); a damaged outcome code is named."""
    import fractions
    monkeypatch.chdir(tmp_path)
    res = bm.train(networks=20, steps=50, output="p.h5")
    mem = bm.train(networks=20, steps=50)
    calls = [
        (lambda: mem.counts(optimiser=True), bm.ConfigError, "did you mean 'optimizer'"),
        (lambda: mem.to_pandas(wieghts=True), bm.ConfigError, "did you mean 'weights'"),
        (lambda: bm.plot("losses", "p.h5", "f.png"), bm.ConfigError, r"takes 2 positional arguments \(kind, source\)"),
        (lambda: bm.train("xor", 2), bm.ConfigError, "takes 1 positional argument"),
        (lambda: bm.train(networks=5, steps=5, lr=fractions.Fraction(1, 2)), bm.ConfigError, "finite number"),
        (lambda: bm.table1(2, sgd_lrs=(fractions.Fraction(1, 2),)), bm.ConfigError, "sequence of numbers"),
        (lambda: bm.plot("regions", res, networks=1.0), bm.ConfigError, "network index or a list"),
        (lambda: bm.plot("regions", res, networks=range(10 ** 8)), bm.AnalysisError, "at most 64 networks"),
        (lambda: bm.plot("losses", res, size=(0.01, 0.01)), bm.ConfigError, r"each in \[0.5, 100\]"),
        (lambda: bm.plot("losses", res, size=(True, 2)), bm.ConfigError, "bad figure size"),
        (lambda: bm.search(8, budget=2, strategy="delete", parents="deadlock_n9", continuation_steps=10 ** 12,
                           output="s.h5", found_dir="f"), bm.ConfigError, "at most 10"),
        (lambda: bm.search(8, budget=2, witness_starts=10 ** 12, output="s.h5", found_dir="f"),
         bm.ResourceError, "witness search"),
        (lambda: bm.search(6, budget=2, gtol=-1, output="s.h5", found_dir="f"), bm.ConfigError,
         "gtol must be positive"),
        (lambda: bm.search(6, budget=2, screen_gtol=0, output="s.h5", found_dir="f"), bm.ConfigError,
         "screen_gtol must be positive"),
        (lambda: bm.search(6, budget=2, kv=-1, output="s.h5", found_dir="f"), bm.ConfigError, "kv must be >= 0"),
        (lambda: bm.search(6, budget=2, ones=(2, 2), output="s.h5", found_dir="f"), bm.ConfigError,
         "names a label split twice"),
        (lambda: bm.search(6, budget=2, strategy="refine", parents=5, output="s.h5", found_dir="f"),
         bm.ConfigError, "FILE"),
        (lambda: bm.search(6, budget=2, strategy="refine", parents=[1], output="s.h5", found_dir="f"),
         bm.ConfigError, "FILE"),
        (lambda: bm.search(6, budget=2, ones=(2.0,), output="s.h5", found_dir="f"), bm.ConfigError,
         "must be an integer"),
        (lambda: bm.search(6, budget=2, strategy="refine", parents=None, output="s.h5", found_dir="f"),
         bm.ConfigError, "needs --parents"),            # None: the default, which refine cannot run on
        (lambda: bm.search(8, budget=2, strategy="delete", output="s.h5", found_dir="f"), bm.ConfigError,
         "needs --parents"),                            # only deletion to 9 points has a default parent
    ]
    for call, err, needle in calls:
        with pytest.raises(err, match=needle):
            call()
    assert not (tmp_path / "s.h5").exists() and not (tmp_path / "s.h5.part").exists()
    assert bm.plot("losses", res, cells=None, points=None) is not None
    for kw, what in ((dict(points=["W_hat"]), "points"), (dict(networks=[0]), "networks"), (dict(title="t"), "title")):
        with pytest.raises(bm.AnalysisError, match=f"the losses figure takes no {what} "):
            bm.plot("losses", res, **kw)
    with pytest.raises(bm.AnalysisError, match="the minimality figure takes no cells"):
        bm.plot("minimality", "rows.json", cells=["main"])
    for text, needle in (('[{"a": 1}, [1, 2]]', "all objects or all lists"),
                         ('{"columns": ["a"], "rows": [[1, 2, 3]]}', "row 1 has 3 values for 1 columns"),
                         ('{"columns": 5, "rows": [[1]]}', "'columns' must be a list"),
                         ('[[]]', "no columns"), ('[{}]', "no columns"),
                         (str([{"N": i} for i in range(501)]).replace("'", '"'), "at most 500")):
        (tmp_path / "rows.json").write_text(text)
        with pytest.raises(bm.AnalysisError, match=needle):
            bm.plot("minimality", "rows.json")
    with pytest.raises(ValueError, match="read-only"):
        mem["outcome"][:] = 42
    assert sum(mem.counts().values()) == 20
    damaged = bm.Results(memory={"main": {**mem.data(), "outcome": np.full(20, 100, np.int8)}},
                         configs={"main": mem.config()})
    for call in (damaged.to_pandas, damaged.counts):
        with pytest.raises(bm.StoreError, match="100, which is no outcome code"):
            call()
    assert bm.Results().fields == []
    for limit in ("abc", "-5G", "1e400", "nan", "8X"):
        monkeypatch.setenv("BADMINIMA_MEMORY_LIMIT", limit)
        with pytest.raises(bm.ConfigError, match="BADMINIMA_MEMORY_LIMIT must be a number of bytes"):
            bm.train(networks=5, steps=5)
    for limit in ("8G", "8 GiB", "8gb", "1e10"):
        monkeypatch.setenv("BADMINIMA_MEMORY_LIMIT", limit)
        assert bm.train(networks=5, steps=5).n() == 5
    monkeypatch.delenv("BADMINIMA_MEMORY_LIMIT")
    for call, needle in ((lambda: bm.train(networks=5, steps=5, output="new.h5/"), "trailing / names a directory"),
                         (lambda: bm.plot("losses", res, output="fig.png/"), "trailing / names a directory"),
                         (lambda: bm.search(6, budget=2, output="x.h5", found_dir="x.h5"), "result file's own path")):
        with pytest.raises(bm.StoreError, match=needle):
            call()
    assert not any(p.exists() for p in (tmp_path / "fig.png", tmp_path / "x.h5", tmp_path / "new.h5"))


def test_copies_moves_and_spellings_of_one_run(tmp_path, monkeypatch):
    """Two copies of one run are refused, not added up (a glob skips the writer's lock and temporary
    files, and a finished file hides its leftover .part); shards whose configs spell a number differently
    are one run; a Results handle reads the file it opened whatever the cwd is later, and its plot refuses a
    file replaced since; lr=1 and lr=1.0, "d.csv" and "./d.csv" are one configuration; a longdouble is
    a number; a directory where the writer puts its own files, a linked output, config() edits and a
    Dataset given to certify behave."""
    import json
    import shutil
    import h5py
    from click.testing import CliRunner
    from badminima.analysis.load import load_cells
    from badminima.cli import main
    from badminima.engine.store import canonical_json
    monkeypatch.chdir(tmp_path)
    a = bm.train(networks=30, steps=20, output="a.h5")
    shutil.copy("a.h5", "b.h5")
    for source in (["a.h5", "b.h5"], "*.h5"):
        with pytest.raises(bm.NotMergeable, match="both hold networks 0..29 of cell 'main'"):
            bm.open(source)
    Path("b.h5").unlink()
    for i, shard in ((0, ["--shard", "0/3"]), (1, ["--shard", "1/3"]), ("all", [])):   # shards and the whole run
        assert CliRunner().invoke(main, ["train", "-n", "30", "--steps", "20", "--lr", "1", *shard,
                                         "-o", f"s{i}.h5", "-q"]).exit_code == 0
    with h5py.File("s1.h5", "r+") as f:
        for obj in (f, f["cells/main"]):
            obj.attrs["config"] = canonical_json({**json.loads(obj.attrs["config"]), "lr": 1})
    cells = load_cells(["s0.h5", "s1.h5"], progress=False)
    assert len(cells) == 1 and cells[0].results.n_rows("main") == 20
    with pytest.raises(bm.NotMergeable, match="both hold networks 10..19 of cell"):
        bm.open(["sall.h5", "s1.h5"])
    Path("a.h5.lock").write_text("")
    Path("a.h5.tmp").write_text("")
    shutil.copy("a.h5", "a.h5.part")                          # what a finish killed before its cleanup leaves
    assert bm.open("a.h5*").n() == 30                          # the lock and .tmp are no results, the .part hidden
    Path("a.h5.part").unlink()
    Path("sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    bm.train(networks=25, steps=20, seed=1, output="a.h5")      # another run of the same name elsewhere
    assert np.array_equal(a["outcome"], bm.open("../a.h5")["outcome"])
    text = Path(bm.report(a, "rep", pdf=False, cell_figures=False)).read_text()
    assert "30 networks" in text and str(tmp_path / "a.h5") in text          # the cwd moved: the full path
    monkeypatch.chdir(tmp_path)
    text = Path(bm.report(a, "rep", pdf=False, cell_figures=False)).read_text()
    assert "`a.h5`" in text and str(tmp_path / "a.h5") not in text          # as it was named
    monkeypatch.chdir(tmp_path)
    bm.train(networks=30, steps=21, output="a.h5", force=True)
    with pytest.raises(bm.StoreError, match="holds another run"):
        bm.plot("losses", a)
    # one configuration, however a number or the dataset's path is spelt
    bm.train(networks=8, steps=5, lr=1, output="n.h5")
    assert bm.train(networks=8, steps=5, lr=1.0, output="n.h5").n() == 8
    Path("d.csv").write_text("x0,x1,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n")
    bm.train("d.csv", networks=8, steps=5, output="d.h5")
    for spelt in ("./d.csv", str(tmp_path / "d.csv")):
        assert bm.train(spelt, networks=8, steps=5, output="d.h5").n() == 8
    long = bm.train(networks=8, steps=5, lr=np.longdouble(0.5), gtol=np.longdouble(1e-6))
    assert long.config()["lr"] == 0.5 and type(long.config()["lr"]) is float
    assert np.array_equal(long["outcome"], bm.train(networks=8, steps=5)["outcome"])
    t = bm.table1(2, steps=5, gd_lr=np.longdouble(0.5), sgd_lrs=(1, 0.1), claims=False, check_final=0,
                  output="t.h5")
    assert type(t["results"]._store.config["protocol"]["gd_lr"]) is float
    assert bm.table1(2, steps=5, sgd_lrs=(1.0, 0.1), claims=False, check_final=0, output="t.h5")["path"] == "t.h5"
    # the writer's own side files, a linked output, config() handed out
    for side in ("e.h5.part", "e.h5.part.tmp", "e.h5.tmp"):
        Path(side).mkdir()
        for force in (False, True):
            with pytest.raises(bm.StoreError, match=f"{side} is a directory"):
                bm.train(networks=8, steps=5, output="e.h5", force=force)
        Path(side).rmdir()
    Path("link.h5").symlink_to("n.h5")
    bm.train(networks=8, steps=6, output="link.h5", force=True)
    assert Path("link.h5").is_symlink() and bm.open("n.h5").config()["steps"] == 6
    cfg = a.config()
    cfg["init"]["law"] = "changed"
    assert a.config()["init"]["law"] == "normal"
    assert bm.certify(bm.load_dataset("paper10"))["points"]


def test_damaged_metadata_is_a_store_error(tmp_path, monkeypatch):
    """A result file whose run or cell config, cell ranges, counts or outcome codes were damaged is
    refused with a StoreError (never an AttributeError, a TypeError or quietly wrong counts), by every
    reader: a report or figure as well as show."""
    import json
    import shutil
    import h5py
    from badminima.engine.store import merge, show
    monkeypatch.chdir(tmp_path)
    bm.train(networks=20, steps=20, output="ok.h5")

    def damaged(edit):
        shutil.copy("ok.h5", "bad.h5")
        with h5py.File("bad.h5", "r+") as f:
            edit(f, f["cells/main"])
        return "bad.h5"

    with h5py.File("ok.h5") as f:
        conf = json.loads(f["cells/main"].attrs["config"])
        solved, stuck = (int(f["cells/main"].attrs[k]) for k in ("count_solved", "count_out_of_steps"))
    for edit, needle in (
            (lambda f, g: f.attrs.__setitem__("config", "[1, 2]"), "config is not a JSON object"),
            (lambda f, g: g.attrs.__setitem__("config", '"hello"'), "cell 'main' config is not a JSON object"),
            (lambda f, g: g.attrs.__setitem__("index_stop", 99), "networks 0..99 of 20"),
            (lambda f, g: g.attrs.__setitem__("count_solved", 10 ** 6), "outcome counts"),
            (lambda f, g: (g.attrs.__setitem__("count_solved", -1),             # the right sum, one negative
                           g.attrs.__setitem__("count_out_of_steps", stuck + solved + 1)), "outcome counts"),
            (lambda f, g: f.attrs.__setitem__("fields", json.dumps(["outcome", "loss"])), "no index")):
        with pytest.raises(bm.StoreError, match=needle):
            bm.open(damaged(edit))
    for code in (-1, 100):
        def edit(f, g):
            g["optimizer_outcome"][3] = code
        with pytest.raises(bm.StoreError, match=f"optimizer_outcome of row 3 is {code}"):
            bm.open(damaged(edit)).counts(optimizer=True)

        def edit(f, g):
            g["outcome"][3] = code
        path = damaged(edit)
        for call in (lambda: merge([path], "m.h5"), lambda: show(path), lambda: bm.open(path)["outcome"],
                     lambda: bm.report(path, "rep"), lambda: bm.plot("losses", path, output="f.png")):
            with pytest.raises(bm.StoreError, match=f"cell 'main' outcome of row 3 is {code}"):
                call()
        assert not Path("m.h5").exists() and not Path("rep").exists() and not Path("f.png").exists()
    for hidden in (0, "two", 3):
        def edit(f, g):
            g.attrs["config"] = json.dumps({**conf, "hidden": hidden})
        with pytest.raises(bm.StoreError, match="does not fit its 9 parameters"):
            bm.open(damaged(edit)).to_pandas(weights=True)
    def edit(f, g):
        g.attrs["config"] = json.dumps({**conf, "init": [1]})
    assert "init" not in bm.open(damaged(edit)).to_pandas().columns


def test_an_interrupt_stops_a_long_call_at_once(tmp_path):
    """SIGINT (Ctrl-C, a notebook's interrupt) during one block of days of work raises KeyboardInterrupt
    within seconds, with the run's .part kept and its lock released; in-memory calls alike."""
    import subprocess
    import sys
    script = tmp_path / "nb.py"
    script.write_text(
        "import os, signal, sys, threading, time\n"
        "import badminima as bm\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "t = {}\n"
        "def later(path):\n"
        "    while path and not os.path.exists(path):\n"
        "        time.sleep(0.05)\n"
        "    time.sleep(1.5)\n"
        "    t['sent'] = time.monotonic()\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "for output in (None, 'r.h5'):\n"
        "    threading.Thread(target=later, args=(output and output + '.part',), daemon=True).start()\n"
        "    try:\n"
        "        bm.train(networks=64, steps=10 ** 12, output=output)\n"
        "    except KeyboardInterrupt:\n"
        "        print('%.2f' % (time.monotonic() - t['sent']))\n")
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    waits = [float(x) for x in p.stdout.split()]
    assert p.returncode == 0 and len(waits) == 2 and max(waits) < 30, (p.stdout, p.stderr)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["nb.py", "r.h5.part"]


def test_bad_numba_threads_is_a_config_error(monkeypatch):
    """NUMBA_NUM_THREADS below 1 (which makes `import numba` raise) or not an integer: every API call
    refuses it as ConfigError, as the command line does in one line."""
    for value in ("0", "-2", "abc", "", "99999"):
        monkeypatch.setenv("NUMBA_NUM_THREADS", value)
        with pytest.raises(bm.ConfigError, match=f"NUMBA_NUM_THREADS={value}"):
            bm.train(networks=4, steps=2)
