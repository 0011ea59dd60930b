"""`badminima table1` / `reproduce` (engine/paper/table1.py runs and counts, analysis/table1.py formats): the grid,
resume/reuse, Wilson intervals, the sweep's budget reading, the text claims, each against an independent
computation.  Tiny networks and step budgets."""
import json
import math
import os

import numpy as np
import pytest
from click.testing import CliRunner

from badminima.analysis import table1 as at1
from badminima.cli import main
from badminima.engine.train import cells as runs_mod
from badminima.engine.paper import table1 as t1
from badminima.engine.data.datasets import load_dataset
from badminima.engine.core.outcomes import SOLVED
from badminima.engine.store import open_results
from badminima.engine.train.run import train_range

TINY = t1.Protocol(steps=60, sgd_lrs=(0.5,))


def _hand_wilson(k, n, z=1.959963984540054):
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return c - half, c + half


def test_grid_cells_and_protocol():
    cells = t1.grid_cells(TINY, 5)
    assert len(cells) == 48 + 2 and len({c.name for c in cells}) == 50
    c = next(c for c in cells if c.name == "adam-fxor-sigmoid-h7")
    assert (c.config.optimizer, c.config.activation, c.config.hidden, c.config.lr) == ("adam", "sigmoid", 7, 1e-3)
    assert (c.config.init.law, c.config.init.scale, c.config.init.bias) == ("normal", 1.0, "same")
    sgd = next(c for c in cells if c.name.startswith("lr0.5-sgd"))
    assert sgd.config.steps == 4 * 60 and sgd.config.hidden == 2
    assert t1.default_path(TINY, 5) != t1.default_path(TINY, 6) != t1.default_path(t1.Protocol(), 6)
    assert "sigmoid output unit" in t1.Protocol().describe() and "10000 steps" in t1.Protocol().describe()


def test_differences_print_signed_except_zero():
    from badminima.analysis.table1 import _signed
    assert [_signed(d) for d in (0.04, -0.04, 0.0, 0.16, -3.26)] == ["0.0", "0.0", "0.0", "+0.2", "-3.3"]


def test_paper_values_and_rows():
    assert t1.paper_value("fxor", "adam", "sigmoid", 7) == 58
    assert t1.paper_value("xor", "gd", "relu", 2) == 23 and t1.paper_value("xor", "gd", "relu", 9) is None
    r = at1.make_row("gd", "xor", "relu", 2, 5, 10)
    assert (r.lo, r.hi) == pytest.approx(_hand_wilson(5, 10)) and r.lo == pytest.approx(0.2366, abs=1e-4)
    assert r.pct == 50 and r.diff == 27 and not r.paper_in_ci          # 23 < 23.66
    assert at1.make_row("gd", "xor", "relu", 2, 3, 10).paper_in_ci
    r = at1.make_row("gd", "xor", "sigmoid", 3, 0, 20)
    assert r.lo == 0 and r.hi == pytest.approx(_hand_wilson(0, 20)[1]) and r.diff == -100 and not r.paper_in_ci
    rows = [at1.make_row("gd", "xor", "relu", 2, 5, 10), at1.make_row("gd", "xor", "relu", 3, 4, 10)]
    st = at1.block_stats(rows)["gd"]
    assert st["mean_abs_diff"] == pytest.approx((27 + 7) / 2) and st["max_abs_diff"] == 27 and st["cells"] == 2
    for k, want in ((151, "max 52.5"), (157, "max 55.5")):        # the block line rounds as the rows do
        text = at1.format_table([at1.make_row("gd", "xor", "relu", 2, k, 200)])
        assert want in text and f"+{want[4:]}" in text


def test_region_stats_against_loops():
    X = load_dataset("fxor").x
    rng = np.random.default_rng(0)
    for h in (2, 5):
        W = rng.normal(0, 1, (200, h * 4 + 1))
        got = t1.region_stats(W, X)
        for k in range(200):
            pats = []
            for x in X:
                pats.append(tuple(W[k, 4 * j + 1] * x[0] + W[k, 4 * j + 2] * x[1] + W[k, 4 * j + 3] > 0
                                  for j in range(h)))
            assert got[k] == max(pats.count(p) for p in pats)


def test_float32_default_gives_the_float64_verdicts():
    """Table 1 runs float32 by default because it gives the float64 table: paired (same starts), the two
    precisions agree on solved / not solved for at least 99% of networks, in cells with both verdicts."""
    assert t1.Protocol().dtype == "float32" and t1.SweepGrid().dtype == "float32"
    for opt, name, act, h in (("gd", "xor", "sigmoid", 2), ("adam", "fxor", "relu", 3)):
        ds = load_dataset(name)
        solved = {dt: train_range(t1.make_config(ds, t1.Protocol(steps=3000, dtype=dt), opt, act, h, 2000),
                                  ds.x, ds.y, 0, 2000)["outcome"] == SOLVED for dt in ("float32", "float64")}
        assert 0.02 < solved["float64"].mean() < 0.98, (opt, act)
        assert (solved["float32"] != solved["float64"]).mean() <= 0.01, (opt, act)


def test_sweep_trains_every_budget_to_its_end():
    """"solved" is the state at the end of the budget, which a longer run cannot tell: the sweep runs
    every budget, and a shorter budget is not read off a longer run (networks lose zero training error)."""
    grid = t1.SweepGrid(inits=("normal:1",), gd_lrs=(0.5,), adam_lrs=(1e-3,), budgets=(150, 600))
    cells = t1.sweep_cells(grid, 8)
    assert sorted({c.config.steps for c in cells}) == [150, 600] and len(cells) == 2 * 2 * 24
    ds = load_dataset("fxor")
    res = train_range(t1.make_config(ds, t1.Protocol(), "gd", "relu", 3, 2000, steps=600), ds.x, ds.y, 0, 2000)
    lost = (res["solved_at"] >= 0) & (res["solved_at"] <= 150) & (res["outcome"] != SOLVED)
    assert lost.any()


def test_table1_cli_runs_reuses_and_checks_numbers(tmp_path):
    out = tmp_path / "t.h5"
    args = ["table1", "-n", "12", "--steps", "60", "--sgd-lr", "0.5", "-o", str(out), "-q",
            "--json", str(tmp_path / "t.json")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    for s in ("GD (lr 0.5)", "Adam (lr 0.001)", "XOR ReLU", "fXOR sigmoid", "paper", "protocol:", "GD block",
              "linear region", "SGD lr 0.5"):
        assert s in r.output
    res = open_results(str(out))
    assert len(res.cells) == 50 and all(res.n_rows(c) == 12 for c in res.cells)
    d = json.loads((tmp_path / "t.json").read_text())
    assert len(d["cells"]) == 48
    for c in d["cells"]:           # every number against the file and a hand Wilson interval
        k = res.code_counts(t1.cell_name(c["opt"], c["dataset"], c["act"], c["h"]), "optimizer_outcome")["solved"]
        assert c["solved"] == k and c["n"] == 12
        lo, hi = _hand_wilson(k, 12)
        assert c["lo"] == pytest.approx(max(lo, 0), abs=1e-12) and c["hi"] == pytest.approx(min(hi, 1), abs=1e-12)
        assert c["diff"] == pytest.approx(100 * k / 12 - t1.paper_value(c["dataset"], c["opt"], c["act"], c["h"]))
    # the linear-region claim recomputed here from the stored weights
    fail = hits = 0
    X = load_dataset("fxor").x
    for opt in ("gd", "adam"):
        for h in range(2, 8):
            cd = res.cell(f"{opt}-fxor-relu-h{h}", ["outcome", "weights"])
            for w, o in zip(cd["weights"], cd["outcome"]):
                if o == SOLVED:
                    continue
                a = [tuple((w[4 * j + 1] * x[0] + w[4 * j + 2] * x[1] + w[4 * j + 3]) > 0 for j in range(h)) for x in X]
                fail += 1
                hits += max(a.count(p) for p in a) >= 3
    region = d["claims"][-1]["values"]
    assert region["failed"] == [hits, fail]
    # rerun: reuses the finished file, same table
    r2 = CliRunner().invoke(main, args)
    assert r2.exit_code == 0 and "reusing finished results" in r2.output
    assert r2.output.split("reusing finished results")[1].split("\n", 1)[1].split("json:")[0] == \
        r.output.split("json:")[0]
    # a different protocol into the same file is refused (exit 1, one line naming what differs)
    r3 = CliRunner().invoke(main, ["table1", "-n", "12", "--steps", "61", "-o", str(out), "-q"])
    assert r3.exit_code == 1 and "differing keys: " in r3.output and "protocol.steps" in r3.output, r3.output
    assert len(r3.output.strip().splitlines()) == 1 and "more" in r3.output     # 48 cells: summarized


def test_interrupted_run_resumes_to_the_same_results(tmp_path, monkeypatch):
    cells = t1.grid_cells(TINY, 40)[:6]
    real = runs_mod.train
    calls = {"n": 0}

    def flaky(*a, **kw):
        for chunk in real(*a, **kw):
            calls["n"] += 1
            if calls["n"] == 4:
                raise KeyboardInterrupt
            yield chunk
    monkeypatch.setattr(runs_mod, "train", flaky)
    path = str(tmp_path / "r.h5")
    with pytest.raises(KeyboardInterrupt):
        t1.run_or_reuse(path, {"command": "test"}, cells, chunk=16, progress=False)
    assert os.path.exists(path + ".part") and not os.path.exists(path)
    monkeypatch.setattr(runs_mod, "train", real)
    res = t1.run_or_reuse(path, {"command": "test"}, cells, chunk=16, progress=False)
    ref = t1.run_or_reuse(str(tmp_path / "ref.h5"), {"command": "test"}, cells, chunk=16, progress=False)
    for c in cells:
        a, b = res.cell(c.name), ref.cell(c.name)
        assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


def test_sweep_cli_and_bad_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["table1", "-n", "6", "--steps", "40", "--sgd-lr", "0.5", "-q", "--no-claims",
                                  "--sweep", "--sweep-init", "normal:1,glorot/zero", "--sweep-gd-lr", "0.5",
                                  "--sweep-adam-lr", "0.01", "--sweep-steps", "20,40"])
    assert r.exit_code == 0, r.output
    assert "GD block: protocols ranked" in r.output and "best: init" in r.output
    assert "Claims of the text" not in r.output and os.path.exists(r.output.split("sweep results: ")[1].split()[0])
    for bad in (["--sweep", "--sweep-gd-lr", "x"], ["--sweep-init", "bogus:1", "--sweep"], ["--shard", "0/2", "--sweep"],
                ["--shard", "2/2"],
                ["--gd-lr", "-1"], ["--init", "nope"], ["-n", "0"]):
        r = CliRunner().invoke(main, ["table1", "--steps", "10", "-q"] + bad)
        assert r.exit_code == 2, (bad, r.output)
        assert r.output.startswith("error:") and len(r.output.strip().splitlines()) == 1, r.output


def test_reproduce_writes_runs(tmp_path):
    r = CliRunner().invoke(main, ["reproduce", "-n", "4", "--out-dir", str(tmp_path / "runs"), "-q"])
    assert r.exit_code == 0, r.output
    assert "[Theorem 2]" in r.output and "Adam block" in r.output and "verify" in r.output.splitlines()[-1]
    files = sorted(os.listdir(tmp_path / "runs"))
    assert "verify.json" in files and any(f.endswith(".h5") for f in files) and any(f.startswith("table1-") and
                                                                                  f.endswith(".json") for f in files)


def test_sharded_table1_merges_to_the_single_run_and_prints_from_it(tmp_path):
    from badminima.engine.store import diff_files
    base = ["table1", "-n", "9", "--steps", "50", "--sgd-lr", "0.5", "-q", "--no-claims"]
    single = tmp_path / "single.h5"
    assert CliRunner().invoke(main, base + ["-o", str(single)], catch_exceptions=False).exit_code == 0
    shards = []
    for i in range(3):
        p = tmp_path / f"s{i}.h5"
        r = CliRunner().invoke(main, base + ["--shard", f"{i}/3", "-o", str(p)], catch_exceptions=False)
        assert r.exit_code == 0 and "shard" in r.output, r.output
        shards.append(str(p))
    merged = tmp_path / "merged.h5"
    assert CliRunner().invoke(main, ["merge", *shards, "-o", str(merged)]).exit_code == 0
    assert diff_files(str(single), str(merged)) == []
    r = CliRunner().invoke(main, base + ["-o", str(merged)], catch_exceptions=False)
    assert r.exit_code == 0 and "GD block" in r.output
