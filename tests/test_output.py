"""Readable output: tables fit the terminal (checked at 80 and 200 columns) and wrap into stacked column
groups rather than overflowing; `show` summarises multi-cell files in a line per cell (`--cell` for one
in full, `--json` for everything); `report` writes the overview first and per-cell detail on request."""
import json
import os
import shutil

import pytest
from click.testing import CliRunner

from badminima.analysis.load import load_cells
from badminima.analysis.show import cell_detail, show_json, summary
from badminima.analysis.table1 import claims, format_claims, format_finality, format_table, make_row
from badminima.analysis.tables import Table, layout, terminal_width
from badminima.analysis.verify import format_checks
from badminima.cli import main
from badminima.engine.paper.checks import Check
from badminima.engine.paper.table1 import COLUMNS, HIDDEN, TABLE1_OPTIMIZERS, Protocol

WIDTHS = (80, 200)


def widest(text: str) -> int:
    return max(len(ln) for ln in text.splitlines())


def t1_rows():
    return [make_row(o, ds, act, h, 1000 + 100 * h, 2000, lost=3, heading=5)
            for o in TABLE1_OPTIMIZERS for ds, act in COLUMNS for h in HIDDEN]


@pytest.mark.parametrize("width", WIDTHS)
def test_table1_fits(width):
    text = format_table(t1_rows(), Protocol(), width=width)
    assert widest(text) <= width
    blocks = text.count("| XOR ReLU")                  # the header of a column group naming XOR ReLU
    assert blocks == 2                                  # once per optimizer, at either width
    if width == 200:                                    # all four columns side by side
        assert any("| XOR ReLU" in ln and "| fXOR sigmoid" in ln for ln in text.splitlines())
    else:                                               # stacked groups, the h column repeated
        assert not any("| XOR ReLU" in ln and "| fXOR sigmoid" in ln for ln in text.splitlines())
        assert text.count(" 7 | ") == 2 * 2 + 2 * 2    # h = 7 in each group of each block and side table
    chk = {"checked": 11000, "early": 19657, "sample": 1000, "agree": 10999,
           "changed": [("gd-xor-relu-h2", 17, 1, 0)]}
    assert widest(format_finality(chk, width)) <= width


@pytest.mark.parametrize("width", WIDTHS)
def test_claims_and_checks_fit(width):
    counts = {"sgd": {"relu": {0.5: (12, 2000), 0.1: (297, 2000)}},
              "full": {"relu": {"gd": (199, 2000), "adam": (362, 2000)}},
              "regions": {"gd": (1700, 1800, 60, 200, 1200), "adam": (1600, 1640, 150, 360, 1100)},
              "limit": 0, "truncated": False}
    assert widest(format_claims(claims(counts, Protocol()), width)) <= width
    checks = [Check(id="t1", section="Theorem 1", claim="W_hat is a strict local minimum of the 10-point dataset " * 2,
                    paper="yes", computed="lambda_min = 2.1e-4 > 0, certified by Krawczyk " * 3, verdict="agrees",
                    note="a long note " * 20)]
    assert widest(format_checks(checks, width=width)) <= width


@pytest.mark.parametrize("width", WIDTHS)
def test_table_text_wraps_into_groups(width):
    t = Table(["cell", "n"] + [f"outcome {k}" for k in range(8)], formats={f"outcome {k}": "%" for k in range(8)})
    for h in range(2, 8):
        t.add(f"xor sigmoid gd h={h} lr=0.5 steps=10000", 2000, *[0.123] * 8)
    text = t.text(width)
    assert widest(text) <= width
    lines = text.splitlines()
    groups = sum(ln.startswith("cell ") for ln in lines)
    assert (groups == 1) == (width == 200)
    assert sum("h=7" in ln for ln in lines) == groups        # each group repeats the row labels


def test_layout_wraps_what_cannot_fit():
    lines = layout(["name", "value"], [["a" * 60, "b" * 70]], left=[True, True], width=40)
    assert max(len(ln) for ln in lines) <= 40 and len(lines) > 3
    assert terminal_width(10) == 40 and terminal_width(123) == 123


def test_terminal_width_from_the_environment(monkeypatch):
    monkeypatch.setenv("COLUMNS", "91")
    assert terminal_width() == 91
    t = Table(["a", "b"] + [f"c{k}" for k in range(20)])
    t.add("x" * 10, 1, *range(20))
    assert widest(t.text()) <= 91


# ------------------------------------------------------------------------------ show

@pytest.mark.parametrize("width", WIDTHS)
def test_show_summary_is_compact_and_fits(runs, width):
    cells = load_cells([str(runs / "xor2.s*.h5"), str(runs / "xor3.h5"), str(runs / "fxor.h5"),
                        str(runs / "d1.h5")], progress=False)
    text = summary(cells, width)
    assert widest(text) <= width
    for c in cells:
        assert sum(ln.startswith(c.label + " ") for ln in text.splitlines()) == (1 if width == 200 else
                                                                                text.count("\ncell "))
    assert "shared by every cell:" in text and "--cell" in text and "--json" in text
    assert len(text.splitlines()) < 40
    detail = cell_detail(cells[0], width)
    assert widest(detail) <= width and "configuration:" in detail and "95% CI" in detail


def test_show_command(runs):
    files = [str(runs / "xor2.s0.h5"), str(runs / "xor2.s1.h5"), str(runs / "xor3.h5"), str(runs / "fxor.h5")]
    labels = [c.label for c in load_cells(files, progress=False)]
    assert labels[1] == "xor sigmoid gd h=3 lr=0.5 steps=1500"
    r = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["show", *files])
    assert r.exit_code == 0, r.output
    assert widest(r.output) <= 80 and all(lb in r.output for lb in labels) and "configuration:" not in r.output
    r = CliRunner().invoke(main, ["show", *files, "--cell", labels[1]])
    assert r.exit_code == 0 and "configuration:" in r.output and "2 files" not in r.output
    r = CliRunner().invoke(main, ["show", *files, "--json", "-"])
    obj = json.loads(r.output)
    assert [c["label"] for c in obj["cells"]] == labels
    assert len(obj["runs"]) == 3 and len(obj["runs"][0]["files"]) == 2 and obj["cells"][0]["networks"] == 160
    assert sum(obj["cells"][0]["counts"].values()) == 160
    r = CliRunner().invoke(main, ["show", *files, "--json", "-", "--cell", labels[2]])
    (c,) = json.loads(r.output)["cells"]
    assert "optimizer_counts" in c and sum(c["optimizer_counts"].values()) == 150
    r = CliRunner().invoke(main, ["show", str(runs / "d1.h5")])                 # one cell: in full
    assert r.exit_code == 0 and "configuration:" in r.output
    bad = CliRunner().invoke(main, ["show", *files, "--cell", "nope"])
    assert bad.exit_code == 2 and "no cell matches 'nope'" in bad.output
    assert show_json(load_cells(files[2], progress=False))["cells"][0]["complete"] is True


# ------------------------------------------------------------------------------ report

def test_report_overview_first_detail_on_request(runs, tmp_path):
    files = [str(runs / "xor2.s0.h5"), str(runs / "xor2.s1.h5"), str(runs / "xor3.h5"), str(runs / "fxor.h5"),
             str(runs / "d1.h5")]
    out = tmp_path / "overview"
    r = CliRunner().invoke(main, ["report", *files, "--out-dir", str(out), "-q", "--no-details"])
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    heads = [ln for ln in md.splitlines() if ln.startswith("## ")]
    assert heads[0] == "## Outcome rates" and heads[-1] == "## Cells"
    assert "### " not in md and "--cell '" in md and "Distinct finite" not in md
    assert "71" not in heads and "[" in md.split("## Outcome rates")[1].split("\n|")[3]   # value [lo, hi] in one cell
    files_out = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files_out == [".report-files", "differences.csv", "figures/convergence.pdf", "figures/convergence.png",
                         "outcomes.csv", "paper.csv", "report.md"]
    assert sorted((out / ".report-files").read_text().split()) == [f for f in files_out if f != ".report-files"]
    out2 = tmp_path / "one"
    fx = [c.label for c in load_cells(files, progress=False) if c.label.startswith("fxor")][0]
    r = CliRunner().invoke(main, ["report", *files, "--out-dir", str(out2), "-q", "--cell", fx, "--no-pdf"])
    assert r.exit_code == 0, r.output
    md = (out2 / "report.md").read_text()
    assert md.count("\n### ") == 1 and f"### {fx}" in md and "Drifting runs" in md
    assert any(p.name.endswith("-regions.png") for p in (out2 / "figures").iterdir())
    assert not any(p.suffix == ".pdf" for p in (out2 / "figures").iterdir())
    # the next report into the folder removes what the last one wrote and it does not; others' files stay
    (out2 / "figures" / "mine.png").write_bytes(b"user")
    r = CliRunner().invoke(main, ["report", *files, "--out-dir", str(out2), "-q", "--no-details", "--no-pdf"])
    assert r.exit_code == 0, r.output
    left = sorted(p.relative_to(out2).as_posix() for p in out2.rglob("*") if p.is_file())
    assert left == [".report-files", "differences.csv", "figures/convergence.png", "figures/mine.png",
                    "outcomes.csv", "paper.csv", "report.md"]
    # a list edited by hand never removes a file outside the report's own layout
    (out2 / "sub").mkdir()
    (out2 / "sub" / "mine.txt").write_text("kept")
    with open(out2 / ".report-files", "a") as f:
        f.write("sub/mine.txt\nfigures/mine.png\n")
    r = CliRunner().invoke(main, ["report", *files, "--out-dir", str(out2), "-q", "--no-details", "--no-pdf"])
    assert r.exit_code == 0 and (out2 / "sub" / "mine.txt").read_text() == "kept"
    assert not (out2 / "figures" / "mine.png").exists()     # in the layout and listed: the report's to remove


def test_an_interrupted_or_concurrent_report_leaves_the_old_one_whole(runs, tmp_path, monkeypatch):
    """The report is written into a staging folder and moved into place at the end: a failure half way
    (here in the cell detail, after the overview's CSVs and figure) changes nothing in the folder; a
    second report into a folder being written is refused in one line; a killed run's staging folder goes."""
    from badminima.analysis import report as rep
    from badminima.engine.store.write import lock_run, unlock_run
    files = [str(runs / "xor3.h5")]
    out = tmp_path / "rep"
    r = CliRunner().invoke(main, ["report", *files, "--out-dir", str(out), "-q", "--no-details"])
    assert r.exit_code == 0, r.output

    def snapshot():
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    before = snapshot()
    assert "report.md" in before and "### " not in before["report.md"].decode()

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(rep, "_cell_section", boom)
    with pytest.raises(KeyboardInterrupt):
        rep.write_report(files, out, progress=False, details=True, dpi=50)     # other figure bytes
    assert snapshot() == before
    with pytest.raises(KeyboardInterrupt):          # a first report that fails leaves no empty folder
        rep.write_report(files, tmp_path / "new" / "rep", progress=False, details=True, dpi=50)
    assert (tmp_path / "new").is_dir() and not (tmp_path / "new" / "rep").exists()
    monkeypatch.undo()

    # a target that cannot be written (figures/ is a file, report.md a folder): one line, nothing moved in
    for blocker in ("figures", "report.md"):
        shutil.move(out / blocker, tmp_path / "aside")
        (out / blocker).mkdir() if blocker == "report.md" else (out / blocker).write_text("x")
        r = CliRunner().invoke(main, ["report", *files, "--out-dir", str(out), "-q", "--details", "--dpi", "50"])
        assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1, r.output
        assert blocker in r.output and ".report-partial" not in r.output
        snap = snapshot()
        assert {k: v for k, v in snap.items() if not k.startswith(blocker)} == \
            {k: v for k, v in before.items() if not k.startswith(blocker)}
        (shutil.rmtree if blocker == "report.md" else os.remove)(out / blocker)
        shutil.move(tmp_path / "aside", out / blocker)
    assert snapshot() == before

    (out / ".report-partial-killed").mkdir()                # a killed run's staging folder (marked) ...
    (out / ".report-partial-killed" / ".badminima-staging").touch()
    (out / ".report-partial-killed" / "report.md").write_text("half")
    (out / ".report-partial-mine").mkdir()                  # ... and a user's folder of that name
    (out / ".report-partial-mine" / "notes.txt").write_text("keep")
    fd = lock_run(str(out / "report.md"))
    try:
        r = CliRunner().invoke(main, ["report", *files, "--out-dir", str(out), "-q", "--details"])
    finally:
        unlock_run(str(out / "report.md"), fd)
    assert r.exit_code != 0 and "another process" in r.output and len(r.output.strip().splitlines()) == 1
    assert snapshot() == {**before, ".report-partial-killed/report.md": b"half",
                          ".report-partial-killed/.badminima-staging": b"", ".report-partial-mine/notes.txt": b"keep"}
    r = CliRunner().invoke(main, ["report", *files, "--out-dir", str(out), "-q", "--details"])
    assert r.exit_code == 0, r.output
    after = snapshot()
    assert "### " in after["report.md"].decode()
    assert [k for k in after if k.startswith(".report-partial")] == [".report-partial-mine/notes.txt"]


def test_figures_go_through_links_and_default_to_png(runs, tmp_path):
    """A figure written through a symbolic link replaces the file it points to (the link stays); a name
    without an extension is written as PNG, as check_format promises."""
    target = tmp_path / "docs" / "fig.png"
    target.parent.mkdir()
    target.write_bytes(b"old")
    (tmp_path / "link.png").symlink_to(target)
    for name in ("link.png", "noext"):
        r = CliRunner().invoke(main, ["plot", "losses", str(runs / "xor3.h5"), "--figure", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    assert (tmp_path / "link.png").is_symlink() and target.read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "noext").read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "link.png", "noext"]


def test_a_figure_that_fails_half_written_leaves_no_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    from badminima.analysis import figures
    target = tmp_path / "f.png"
    target.write_bytes(b"old")
    fig = Figure()

    def partial(path, **kw):
        with open(path, "wb") as f:
            f.write(b"\x89PNG half")
        raise KeyboardInterrupt
    monkeypatch.setattr(fig, "savefig", partial)
    with pytest.raises(KeyboardInterrupt):
        figures.save(fig, target)
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"] and target.read_bytes() == b"old"
