"""Analysis: statistics vs hand-computed values, grouping modulo symmetry, plateaus, figures, report/plot CLI."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from badminima.analysis import figures, plots
from badminima.analysis.load import AnalysisError, cell_labels, load_cells, select_cells
from badminima.analysis.minima import (canonical, cell_minima, dead_units, distinct_minima, group_by_symmetry,
                                       minima_table, symmetry_distance)
from badminima.analysis.plateaus import cell_plateaus, drifting_plateaus, plateau_table
from badminima.analysis.stats import (difference, differences_table, neighbour_pairs, outcome_table, paper_table,
                                      rate, rates_table)
from badminima.analysis.tables import Interval, Table, format_value
from badminima.analysis.wilson import wilson
from badminima.cli import main
from badminima.engine.certify.smooth import symmetric_copies
from badminima.engine.data.datasets import load_dataset
from badminima.engine.core.model import evaluate, hessian
from badminima.engine.core.names import ACTIVATIONS, LOSSES
from badminima.engine.core.outcomes import DRIFTING, LOCAL_MINIMUM

try:
    from badminima.tests import reference as ref
except ImportError:
    import reference as ref


def cli(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


# ---------------------------------------------------------------------------------- statistics

def test_wilson_against_hand_computed_values():
    z2 = 1.959963984540054 ** 2
    lo, hi = wilson(0, 10)                                 # k = 0: [0, z^2 / (n + z^2)]
    assert lo == 0.0 and hi == pytest.approx(z2 / (10 + z2), abs=1e-15)
    lo, hi = wilson(5, 10)                                 # centre 1/2, half z sqrt(2.5 + z^2/4) / (10 + z^2)
    half = math.sqrt(z2) * math.sqrt(2.5 + z2 / 4) / (10 + z2)
    assert (lo, hi) == pytest.approx((0.5 - half, 0.5 + half), abs=1e-15)
    assert (round(lo, 4), round(hi, 4)) == (0.2366, 0.7634)
    assert tuple(round(v, 4) for v in wilson(81, 263)) == (0.2553, 0.3662)   # Newcombe 1998 (single proportion)
    assert wilson(10, 10)[1] == 1.0
    r = rate(812, 1000)
    assert r.p == 0.812 and r.ci.lo < 0.812 < r.ci.hi
    assert math.isnan(rate(0, 0).p)
    with pytest.raises(ValueError):
        rate(5, 4)


@pytest.mark.parametrize("k1,n1,k2,n2,lo,hi", [       # Newcombe, Stat. Med. 17 (1998) 873, Table II, method 10
    (56, 70, 48, 80, 0.0524, 0.3339), (9, 10, 3, 10, 0.1705, 0.8090), (6, 7, 2, 7, 0.0582, 0.8062),
    (5, 56, 0, 29, -0.0381, 0.1926), (0, 10, 0, 20, -0.1611, 0.2775), (0, 10, 0, 10, -0.2775, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0), (10, 10, 0, 10, 0.6075, 1.0)])
def test_newcombe_difference_interval(k1, n1, k2, n2, lo, hi):
    d = difference(k1, n1, k2, n2)
    assert d.d == pytest.approx(k1 / n1 - k2 / n2)
    assert (round(d.ci.lo, 4), round(d.ci.hi, 4)) == (lo, hi)


def test_table_text_markdown_csv():
    t = Table(["cell", "n", "rate", "95% CI", "loss"], title="T", formats={"rate": "%", "95% CI": "%"})
    t.add("a|b", 10, 0.8125, Interval(0.5, 0.9), float("nan"))
    t.add("c", 3, 1.0, Interval(0.4385, 1.0), 0.123456789)
    text = t.text().splitlines()
    assert text[0] == "T" and "rate (%)" in text[1] and "81.2" in text[3] and "[50.0, 90.0]" in text[3]
    assert text[3].rstrip().endswith("-")
    assert [format_value(v, "%") for v in (0.0, 0.00015, 0.000496, 0.0005, 1.0)] == ["0.0", "0.015", "0.05", "0.1",
                                                                                  "100.0"]
    md = t.markdown()
    assert "| a\\|b | 10 | 81.2 | [50.0, 90.0] | - |" in md and "|:---|---:|" in md
    rows = t.csv().splitlines()
    assert rows[0] == "cell,n,rate,95% CI_lo,95% CI_hi,loss"
    assert rows[1] == "a|b,10,0.8125,0.5,0.9," and rows[2].endswith(",0.123456789")


def test_rates_and_differences_from_shards(runs):
    cells = load_cells([str(runs / "xor2.s*.h5"), str(runs / "xor3.h5")], progress=False)
    assert [c.n for c in cells] == [160, 160] and all(c.complete for c in cells)
    assert [c.label for c in cells] == ["xor sigmoid gd h=2", "xor sigmoid gd h=3"]
    long = outcome_table(cells)
    assert sum(r[2] for r in long.rows if r[0] == cells[0].label) == 160
    wide = rates_table(cells)
    assert wide.rows[0][:2] == ["xor sigmoid gd h=2", 160]
    solved = cells[0].counts["solved"]
    assert wide.rows[0][2] == solved / 160 and wide.rows[0][3] == Interval(*wilson(solved, 160))
    pairs = neighbour_pairs(cells)
    assert [(a.label, b.label, k) for a, b, k in pairs] == [("xor sigmoid gd h=2", "xor sigmoid gd h=3", "hidden")]
    row = differences_table(pairs).rows[0]
    d = difference(cells[0].counts["solved"], 160, cells[1].counts["solved"], 160)
    assert row[5] == d.d and row[6] == d.ci
    pt = paper_table(cells)                                  # the paper's GD sigmoid XOR column: 90, 100
    assert [r[4] for r in pt.rows] == [0.90, 1.00]
    assert select_cells(cells, ["xor sigmoid gd h=3"]) == [cells[1]]
    assert select_cells(cells, ["h=3"]) == [cells[1]]                   # any unambiguous part of a label
    assert select_cells(cells, ["h=2", "xor h=3", "h=2"]) == cells
    with pytest.raises(AnalysisError, match=r"matches 2 cells \(xor sigmoid gd h=2; xor sigmoid gd h=3\)"):
        select_cells(cells, ["sigmoid gd"])
    with pytest.raises(AnalysisError, match=r"no cell matches 'xor sigmoid gd h=4'; closest: xor sigmoid gd h="):
        select_cells(cells, ["xor sigmoid gd h=4"])


def test_cell_labels_name_what_varies():
    a = {"dataset": "xor", "activation": "relu", "optimizer": "gd", "hidden": 2, "lr": 0.5, "seed": 0}
    b = dict(a, lr=0.1)
    assert cell_labels([a, b]) == ["xor relu gd h=2 lr=0.5", "xor relu gd h=2 lr=0.1"]
    assert cell_labels([a, a], ["x", "y"]) == ["xor relu gd h=2 [x]", "xor relu gd h=2 [y]"]
    # the network count is left out, unless it alone tells two runs apart
    assert cell_labels([dict(a, networks=8), dict(b, networks=16)]) == ["xor relu gd h=2 lr=0.5", "xor relu gd h=2 lr=0.1"]
    assert cell_labels([dict(a, networks=8), dict(a, networks=16)], ["main", "main"]) == [
        "xor relu gd h=2 networks=8", "xor relu gd h=2 networks=16"]


# ---------------------------------------------------------------------------------- minima modulo symmetry

def newton(theta, ds, h, act, steps=6):
    """A few plain Newton steps on the mean loss with engine.core.model (test-side refinement)."""
    X, y = np.ascontiguousarray(ds.x), np.ascontiguousarray(ds.y)
    th = np.array(theta, dtype=float)
    for _ in range(steps):
        _, _, g = evaluate(th, X, y, X.shape[1], h, ACTIVATIONS[act], LOSSES["xent"])
        th = th - np.linalg.solve(hessian(th, X, y, X.shape[1], h, ACTIVATIONS[act], LOSSES["xent"]), g)
    return th


def test_theorem1_copies_are_one_minimum():
    ds = load_dataset("paper10")
    w_hat = newton(ds.points["W_hat"].theta, ds, 2, "sigmoid")
    copies = np.array([[float(v) for v in th] for _, th in symmetric_copies(w_hat, 2, "sigmoid")])
    assert len(copies) == 8 and len({tuple(np.round(c, 9)) for c in copies}) == 8   # all different points
    mins = distinct_minima(copies, np.full(8, LOCAL_MINIMUM), np.arange(8), ds.x, ds.y, hidden=2,
                           activation="sigmoid", loss="xent", n_networks=40, known={"W_hat": ds.points["W_hat"].theta})
    assert len(mins) == 1
    m = mins[0]
    assert m.hits == 8 and m.points == 1 and m.known == "W_hat" and m.example == 0
    assert m.loss == pytest.approx(0.577738, abs=1e-6) and m.accuracy == 0.4 and m.min_eig > 0
    assert m.fraction.p == 0.2 and m.fraction.ci == Interval(*wilson(8, 40))
    four = copies[[0, 1, 2, 3]]                                 # the four copies: a subset, same answer
    assert len(set(group_by_symmetry(four, 2, "sigmoid", 1e-8)[0])) == 1
    assert "W_hat" in minima_table(mins).text()


def _copy(theta, d, act, rng):
    """A random symmetric image of theta (permutation, flips / rescalings), written out independently."""
    h = (len(theta) - 1) // (d + 2)
    blocks = [np.array(theta[j * (d + 2):(j + 1) * (d + 2)]) for j in range(h)]
    c = theta[-1]
    out = []
    for j in rng.permutation(h):
        v, w, b = blocks[j][0], blocks[j][1:1 + d], blocks[j][1 + d]
        if act in ("sigmoid", "tanh") and rng.random() < 0.5:
            if act == "sigmoid":
                c = c + v
            v, w, b = -v, -w, -b
        if act == "relu":
            a = rng.uniform(0.2, 5.0)
            v, w, b = v / a, a * w, a * b
        out += [v, *w, b]
    return np.array(out + [c])


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
def test_grouping_synthetic_symmetric_copies(act, rng):
    d, h = 2, 3
    P = h * (d + 2) + 1
    A, B = rng.normal(size=P) * 2, rng.normal(size=P) * 2
    pts, truth = [], []
    for k in range(30):
        src = (A, B)[k % 2]
        pts.append(_copy(src, d, act, rng) + rng.normal(size=P) * 1e-9)
        truth.append(k % 2)
    labels, leaders = group_by_symmetry(np.array(pts), d, act, tol=1e-6)
    assert len(leaders) == 2 and np.array_equal(labels, np.array(truth))
    assert symmetry_distance(pts[0], pts[2], d, act) < 1e-6 < symmetry_distance(pts[0], pts[1], d, act)
    assert np.allclose(canonical(pts[0], d, act), canonical(A, d, act), atol=1e-6)


def test_relu_rescaling_and_dead_units():
    ds = load_dataset("relu_d1")
    p = ds.points["prop1"].theta                                  # (v, w, b, c) = (1, 1, -3, 0)
    scaled = np.array([p * [1 / s, s, s, 1] for s in (0.5, 1.0, 3.0)])
    mins = distinct_minima(scaled, np.full(3, LOCAL_MINIMUM), np.arange(3), ds.x, ds.y, hidden=1, activation="relu",
                           loss="mse", n_networks=3, known={"prop1": p})
    assert len(mins) == 1 and mins[0].hits == 3 and mins[0].known == "prop1"
    assert mins[0].loss == pytest.approx(18 / 5)                  # Prop 1: L = 18 (sum), mean 3.6
    X = np.array([[0.0], [1.0]])
    dead = np.array([[2.0, -1.0, -5.0, 7.0, 1.0, 0.5, 0.3]])      # unit 0 off on every point, unit 1 on
    assert dead_units(dead, X).tolist() == [[True, False]]
    other = dead.copy()
    other[0, :3] = [-4.0, -2.0, -1.0]                             # a different dead unit: same minimum
    assert symmetry_distance(dead[0], other[0], 1, "relu", X) == 0.0
    assert symmetry_distance(dead[0], other[0], 1, "relu") > 1


def test_stored_relu_minima_and_drifting_plateaus(runs):
    (d1,) = load_cells(str(runs / "d1.h5"), progress=False)
    mins = cell_minima(d1, progress=False)
    data = d1.data(["outcome"])
    n_crit = int(np.isin(data["outcome"], [1, 2, 3]).sum())
    assert mins and sum(m.hits for m in mins) == n_crit
    assert all(m.grad_norm < 1e-10 for m in mins)
    assert len({round(m.loss, 8) for m in mins}) == len(mins)    # continua merged: one row per function
    (fx,) = load_cells(str(runs / "fxor.h5"), progress=False)
    pl = cell_plateaus(fx, progress=False)
    n_drift = fx.counts["drifting"]
    assert n_drift > 0 and sum(p.hits for p in pl) == n_drift
    for p in pl:
        assert p.loss <= p.loss_median <= p.loss_max and not set(p.wrong) & set(p.undecided)
        assert (4 - len(p.wrong) - len(p.undecided)) / 4 <= p.accuracy <= (4 - len(p.wrong)) / 4
    assert all(p.fraction.n == fx.n for p in pl)
    assert "misclassified" in plateau_table(pl).text()


def _verdict_points(path):
    """(index, outcome, weights) of a one-cell result file read raw: the finisher's point where it ran."""
    import badminima as bm
    res = bm.open(str(path))
    d = res.data(None, ["index", "outcome", "weights", "finish_iters", "finish_weights"])
    ran = d["finish_iters"] >= 0
    return d["index"], d["outcome"], np.where(ran[:, None], d["finish_weights"], d["weights"]), ran


def test_plateaus_and_cell_data_describe_the_point_of_each_verdict(runs):
    """Loss, accuracy and outputs of a drifting run are those where the finisher stopped, not the
    optimizer's at the end of its budget (which made one plateau several rows with other losses): the
    plateaus equal an independent grouping of the slow reference's outputs and losses at those points."""
    (fx,) = load_cells(str(runs / "fxor.h5"), progress=False)
    ds = load_dataset("fxor")
    idx, out, pts, ran = _verdict_points(runs / "fxor.h5")
    drift = np.flatnonzero(out == DRIFTING)
    assert ran[drift].sum() >= 10, "the finisher took on too few drifting runs for this test"
    L = np.array([ref.ref_loss(pts[r], ds.x, ds.y, "sigmoid", "xent") for r in drift])
    acc = np.array([ref.ref_accuracy(pts[r], ds.x, ds.y, "sigmoid") for r in drift])
    data = fx.data(["loss", "accuracy", "weights"])
    assert np.allclose(data["loss"][drift], L, rtol=1e-12, atol=1e-14)
    assert np.array_equal(data["accuracy"][drift], acc) and np.array_equal(data["weights"], pts)
    # independent grouping: leader clustering of the outputs in network order (every output within
    # 0.05 of the leader's), then split where sorted losses jump by more than 0.01
    P = np.array([[1.0 / (1.0 + math.exp(-ref._forward(pts[r], x, "sigmoid")[0])) for x in ds.x] for r in drift])
    leaders, lab = [], []
    for k, p in enumerate(P):
        near = [g for g, j in enumerate(leaders) if np.abs(P[j] - p).max() <= 0.05]
        lab.append(near[0] if near else len(leaders))
        if not near:
            leaders.append(k)
    want = []
    for g in range(len(leaders)):
        m = np.flatnonzero(np.array(lab) == g)
        m = m[np.argsort(L[m], kind="stable")]
        for part in np.split(m, np.flatnonzero(np.diff(L[m]) > 0.01) + 1):
            want.append((len(part), round(float(L[part].min()), 9), float(np.median(acc[part]))))
    got = [(p.hits, round(p.loss, 9), p.accuracy) for p in cell_plateaus(fx, progress=False)]
    assert sorted(got) == sorted(want)


def test_report_without_its_dataset_keeps_the_rates(runs, tmp_path):
    """A moved dataset file leaves the report its rates and loss figure, and says why the rest is missing."""
    import shutil
    data = tmp_path / "pts.csv"
    data.write_text("x0,x1,y\n0,0,0\n1,1,0\n0,1,1\n1,0,1\n")
    res = tmp_path / "r.h5"
    r = cli(["train", "-q", "--dataset", str(data), "-n", "40", "--steps", "300", "-o", str(res)])
    assert r.exit_code == 0, r.output
    shutil.move(data, tmp_path / "moved.csv")
    r = cli(["report", str(res), "--out-dir", str(tmp_path / "rep"), "-q", "--no-pdf"])
    assert r.exit_code == 0, r.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Dataset unavailable" in md and "## Outcome rates" in md
    assert list((tmp_path / "rep" / "figures").glob("*losses*.png"))


def test_a_critical_point_at_outputs_one_half_classifies_no_point():
    """Logits of rounding size decide no class: the same constant function 1/2 (a dead ReLU unit, c = +-1e-16)
    has accuracy 0 either way, where the sign of c made it 0.5 with one class or the other; a real
    constant output (c = 0.3) classifies its class."""
    from badminima.analysis.minima import point_summary
    ds = load_dataset("xor")
    dead = np.array([1.0, -1.0, -1.0, -1.0, 0.0])          # (v, w0, w1, b, c): pre-activation < 0 on every point
    accs = []
    for c in (1e-16, -1e-16, 0.3):
        th = dead.copy()
        th[-1] = c
        accs.append(point_summary(th, ds.x, ds.y, 1, "relu", "xent")["accuracy"])
        assert ref.ref_accuracy(th, ds.x, ds.y, "relu") == 0.5         # the plain sign rule
    assert accs == [0.0, 0.0, 0.5]


def test_plateau_ignores_the_sign_of_vanishing_logits():
    """Two runs on the same XOR plateau (outputs 1/2, 0, 1/2, 1/2) whose tied logits have opposite signs
    misclassify different points, yet are one plateau; a third run on another plateau is not."""
    ds = load_dataset("xor")                         # x1=(0,0) 0, x2=(1,1) 0, x3=(0,1) 1, x4=(1,0) 1
    s = 40.0
    net = np.array([-s, s, s, -1.5 * s, 0.0])        # (v, w0, w1, b, c): unit on only at (1,1)
    a, b, other = net.copy(), net.copy(), net.copy()
    a[-1], b[-1] = 1e-7, -1e-7
    other[:4] = [s, s, s, -1.5 * s]                  # output 1 at (1,1)
    W = np.array([a, b, other])
    X, y = ds.x, ds.y
    L = np.array([evaluate(w, X, y, 2, 1, 0, 0)[0] for w in W])
    acc = np.array([evaluate(w, X, y, 2, 1, 0, 0)[1] for w in W])
    assert acc[0] != acc[1]
    pl = drifting_plateaus(W, np.full(3, DRIFTING), np.arange(3), L, X, y, hidden=1, activation="sigmoid",
                           classification=True, n_networks=10, accuracy=acc, known={"tie": a, "far": net * 0})
    assert [p.hits for p in pl] == [2, 1]
    assert pl[0].undecided == (0, 2, 3) and pl[0].wrong == () and pl[0].loss == pytest.approx(3 * math.log(2) / 4)
    assert pl[1].wrong == (1,) and pl[0].fraction.n == 10
    assert (pl[0].known, pl[1].known, pl[0].label) == ("tie", "", "plateau 1 (tie)")


# ---------------------------------------------------------------------------------- figures

def _png_shape(path):
    img = imread(path)
    assert img.std() > 0.01, f"{path} is blank"
    return img.shape[:2]


def test_every_figure_renders_at_its_size(runs, tmp_path):
    size, dpi = (4.0, 3.0), 50                                    # -> 200 x 150 pixels
    xor = load_cells([str(runs / "xor2.s*.h5"), str(runs / "xor3.h5")], progress=False)
    (fx,) = load_cells(str(runs / "fxor.h5"), progress=False)
    (d1,) = load_cells(str(runs / "d1.h5"), progress=False)
    figs = {
        "regions": plots.plot_regions([fx], size=size, dpi=dpi),
        "fit": plots.plot_fit([d1], size=size, dpi=dpi),
        "convergence": plots.plot_convergence(xor, size=size, dpi=dpi),
        "losses": plots.plot_losses([fx, d1], size=size, dpi=dpi),
        "basins": plots.plot_basins([d1], size=size, dpi=dpi),
        "minimality": plots.plot_minimality([{"point": "W_hat", "verdict": "strict local minimum"},
                                             {"point": "W0", "verdict": "not a minimum"}], size=size, dpi=dpi),
    }
    for name, fig in figs.items():
        assert _png_shape(figures.save(fig, tmp_path / f"{name}.png")) == (150, 200), name
    pdf = figures.save(figs["regions"], tmp_path / "regions.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000
    series = plots.convergence_series(xor)
    assert series[0]["h"] == [2, 3] and series[0]["paper"] == [90.0, 100.0, 100.0, 100.0, 100.0, 100.0]


def test_pick_networks_solved_then_stuck():
    out = np.array([4, 0, 0, 0, 6, 1, 4, 2])
    assert plots.pick_networks(out) == [1, 2, 5, 7, 0, 4]
    assert plots.pick_networks(out, limit=3) == [1, 2, 5]


# ---------------------------------------------------------------------------------- CLI

def test_report_and_plot_commands(runs, tmp_path):
    out = tmp_path / "rep"
    r = cli(["report", str(runs / "fxor.h5"), str(runs / "d1.h5"), "--out-dir", str(out), "--no-pdf", "-q"])
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    for part in ("## Outcome rates", "Wilson", "Drifting runs by limiting plateau",
                 "Distinct finite critical points", "| classes |", "figures/"):
        assert part in md, part
    for line in md.splitlines():
        if line.startswith("!["):
            assert (out / line.split("(")[1].rstrip(")")).stat().st_size > 0
    assert (out / "outcomes.csv").read_text().startswith("cell,outcome,k,n,rate,95% CI_lo,95% CI_hi")

    png = tmp_path / "fit.png"
    r = cli(["plot", "fit", str(runs / "d1.h5"), "--figure", str(png), "--networks", "0,1", "--point", "prop1",
             "--size", "5x3", "--dpi", "40"])
    assert r.exit_code == 0, r.output
    assert _png_shape(png) == (120, 200)
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps({"columns": ["point", "certified"], "rows": [["W_hat", True], ["W0", False]]}))
    r = cli(["plot", "minimality", str(rows), "--figure", str(tmp_path / "m.png"), "-q"])
    assert r.exit_code == 0, r.output

    bad = CliRunner().invoke(main, ["plot", "regions", str(runs / "d1.h5"), "--figure", str(tmp_path / "x.png"), "-q"])
    assert bad.exit_code == 2 and "2-D classification" in bad.output
    bad = CliRunner().invoke(main, ["plot", "basins", str(runs / "xor3.h5"), "--figure", str(tmp_path / "x.png"),
                                    "--cell", "nope", "-q"])
    assert bad.exit_code == 2 and "no cell matches 'nope'; closest:" in bad.output
    bad = CliRunner().invoke(main, ["report", str(tmp_path / "missing.h5"), "--out-dir", str(out)])
    assert bad.exit_code == 2 and "no such file" in bad.output
