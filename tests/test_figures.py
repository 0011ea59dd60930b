"""Figures for a two-column paper: every kind renders at a single- or double-column width with every axis
labelled and a legend that explains the marks without covering data (checked on the matplotlib objects,
not pixels); basins name critical points by kind and merge images under the dataset's symmetries."""
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colorbar import Colorbar

from badminima.analysis import figures, plots
from badminima.analysis.load import load_cells
from badminima.analysis.minima import Minimum, critical_kind, kind_label
from badminima.analysis.plateaus import Plateau, drifting_plateaus
from badminima.analysis.stats import rate
from badminima.analysis.symmetry import dataset_symmetries, symmetry_classes
from badminima.engine.core.outcomes import DRIFTING
from badminima.engine.data.datasets import load_dataset

XOR_SOLVED = np.array([6.0, 4.0, 4.0, -2.0, -6.0, 4.0, 4.0, -6.0, -3.0])    # (v, w1, w2, b) x 2 units, c


def _data_axes(fig):
    """Axes that show data: visible, not a colour bar."""
    bars = {id(a) for a in fig.axes if isinstance(getattr(a, "_colorbar", None), Colorbar)}
    return [a for a in fig.axes if a.axison and id(a) not in bars]


def _colorbars(fig):
    return [a._colorbar for a in fig.axes if isinstance(getattr(a, "_colorbar", None), Colorbar)]


def _legends(fig):
    return list(fig.legends) + [a.get_legend() for a in fig.axes if a.get_legend() is not None]


def check_paper_figure(fig, *, legend_has=()):
    """Width of one or two columns; every data axes labelled (y through a shared axis counts); a legend
    inside the figure that covers no data axes and names `legend_has`."""
    assert round(fig.get_figwidth(), 2) in (figures.SINGLE, figures.DOUBLE)
    axes = _data_axes(fig)
    assert axes
    for ax in axes:
        assert ax.get_xlabel(), ax.get_title()
        shared = [ax] + list(ax.get_shared_y_axes().get_siblings(ax))
        assert any(a.get_ylabel() for a in shared), ax.get_title()
    legends = _legends(fig)
    assert legends, "no legend"
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    fbox = fig.bbox
    texts = []
    for lg in legends:
        box = lg.get_window_extent(renderer)
        assert fbox.x0 - 1 <= box.x0 and box.x1 <= fbox.x1 + 1 and fbox.y0 - 1 <= box.y0 and box.y1 <= fbox.y1 + 1
        for ax in axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), "the legend covers an axes"
        texts += [t.get_text() for t in lg.get_texts()]
    for want in legend_has:
        assert any(want in t for t in texts), (want, texts)
    return texts


def test_regions_figure_explains_every_mark():
    ds = load_dataset("xor")
    w_hat = load_dataset("paper10").points["W_hat"].theta
    fig = figures.regions_figure(ds.x, ds.y, [(XOR_SOLVED, "#3 solved"), (w_hat, "W_hat")], hidden=2,
                                 activation="sigmoid", title="xor sigmoid gd h=2")
    check_paper_figure(fig, legend_has=("class 1", "class 0", "misclassified", "decision boundary", "hidden unit"))
    (cb,) = _colorbars(fig)
    assert "output" in cb.ax.get_ylabel()
    titles = [a.get_title() for a in _data_axes(fig)]
    assert titles[0].startswith("#3 solved\nloss ") and titles[0].endswith("acc 1.00")
    L, acc = figures.loss_accuracy(w_hat, ds.x, ds.y, 2, "sigmoid")
    assert titles[1] == f"W_hat\nloss {L:.4g}, acc {acc:.2f}"
    assert [a.get_xlabel() for a in _data_axes(fig)] == ["$x_1$"] * 2
    assert [a.get_ylabel() for a in _data_axes(fig)] == ["$x_2$"] * 2


def test_named_points_get_loss_and_accuracy_and_panels_follow_network_order(runs):
    (fx,) = load_cells(str(runs / "fxor.h5"), progress=False)
    data = fx.data(plots.NET_FIELDS)
    nets = [int(i) for i in data["index"][[7, 2, 5]]]
    fig = plots.plot_regions([fx], networks=nets)
    titles = [a.get_title().split("\n") for a in _data_axes(fig)]
    assert [int(t[0].split()[0][1:]) for t in titles] == sorted(nets)
    assert all(t[1].startswith("loss ") and ", acc " in t[1] for t in titles)
    check_paper_figure(fig)


def test_fit_convergence_losses_table_figures(runs):
    (d1,) = load_cells(str(runs / "d1.h5"), progress=False)
    fig = plots.plot_fit([d1])
    texts = check_paper_figure(fig, legend_has=("data", "prop1 (dataset point), loss 3.6"))
    assert all("loss" in t for t in texts if t != "data")
    xor = load_cells([str(runs / "xor2.s*.h5"), str(runs / "xor3.h5")], progress=False)
    check_paper_figure(plots.plot_convergence(xor), legend_has=("sigmoid gd", "the paper's Table 1"))
    (fx,) = load_cells(str(runs / "fxor.h5"), progress=False)
    fig = plots.plot_losses([fx, d1])
    check_paper_figure(fig, legend_has=("solved",) if fx.counts["solved"] else ())
    assert all("\n" in a.get_title() for a in _data_axes(fig))          # counts per outcome under the caption
    tab = plots.plot_minimality([{"point": "W_hat", "verdict": "strict local minimum"}])
    assert round(tab.get_figwidth(), 2) == figures.SINGLE and tab.axes[0].get_title()


def test_convergence_legend_stays_outside_with_many_series():
    r = rate(30, 100)
    series = [{"dataset": ds, "label": f"act{k} opt{k} lr=0.00{k} steps=10000", "h": [2, 3, 4, 5, 6, 7],
               "rates": [r] * 6, "paper_h": [2, 3, 4, 5, 6, 7], "paper": [20, 40, 60, 80, 90, 100]}
              for ds in ("xor", "fxor") for k in range(9)]
    fig = figures.convergence_figure(series)
    check_paper_figure(fig, legend_has=("the paper's Table 1", "act8 opt8"))


def test_basins_name_kinds_and_merge_dataset_images(runs):
    mk = lambda n, kind, hits, same=0: Minimum(number=n, theta=np.zeros(9), example=n, loss=0.3 + 0.1 * (n > 2),  # noqa: E731
                                               accuracy=0.5, grad_norm=0.0, min_eig=-1.0, hits=hits,
                                               fraction=rate(hits, 100), kind=kind, same_as=same)
    minima = [mk(1, "saddle", 10), mk(2, "saddle", 8, same=1), mk(3, "flat", 5), mk(4, "saddle/flat", 2)]
    plats = [Plateau(number=1, loss=0.35, loss_median=0.35, loss_max=0.35, accuracy=0.5, wrong=(), undecided=(1, 3),
                     hits=20, fraction=rate(20, 100)),
             Plateau(number=2, loss=0.35, loss_median=0.35, loss_max=0.35, accuracy=0.5, wrong=(), undecided=(0, 2),
                     hits=15, fraction=rate(15, 100), same_as=1)]
    groups = plots.basin_groups(minima, plats)
    labels = [g[0].split("\n")[0] for g in groups]
    assert labels == ["saddle 1 (+1 image)", "flat point 3", "saddle/flat point 4", "plateau 1 (+1 image)"]
    assert [g[1].k for g in groups] == [18, 5, 2, 35] and [g[2] for g in groups] == ["saddle", "flat", "saddle/flat",
                                                                                     "plateau"]
    fig = figures.basins_figure(groups, title="t")
    check_paper_figure(fig, legend_has=("saddle", "flat point", "saddle/flat point", "drifting plateau"))
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks[0].startswith("saddle 1") and "loss 0.3, acc 0.50" in ticks[0]
    (d1,) = load_cells(str(runs / "d1.h5"), progress=False)       # ReLU: flat points and saddles, by the engine
    fig = plots.plot_basins([d1])
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks and not any(t.startswith("min ") for t in ticks)
    assert all(t.split("\n")[0].split(" (")[0].rsplit(" ", 1)[0] in ("local min", "saddle", "flat point",
                                                                     "saddle/flat point", "plateau") or "other" in t
               for t in ticks)
    check_paper_figure(fig)


def test_every_figure_saved_as_png_and_pdf(tmp_path):
    ds = load_dataset("xor")
    fig = figures.regions_figure(ds.x, ds.y, [(XOR_SOLVED, "#0")], hidden=2, activation="sigmoid")
    png, pdf = figures.save_all(fig, tmp_path / "regions")
    assert png.suffix == ".png" and pdf.read_bytes()[:5] == b"%PDF-"
    assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000


# ------------------------------------------------------------------------------ symmetry and kinds

def test_dataset_symmetries():
    xor, fxor, p10 = load_dataset("xor"), load_dataset("fxor"), load_dataset("paper10")
    s = dataset_symmetries(xor.x, xor.y, True)
    assert len(s) == 7                                               # the square's 8, less the identity
    assert sum(not t.flip for t in s) == 3                           # two diagonal reflections, the half turn
    (swap,) = dataset_symmetries(fxor.x, fxor.y, True)               # x1 <-> x2, every label flipped
    assert swap.flip and swap.perm == (2, 3, 0, 1) and np.allclose(swap.A, [[0, 1], [1, 0]])
    assert dataset_symmetries(p10.x, p10.y, True) == []


def test_xor_plateaus_that_are_reflections_are_marked():
    """Stuck-at-1/2 plateaus on XOR: 'x2, x4 undecided' and 'x2, x3 undecided' are one finding (a
    reflection carries one onto the other); 'x2 wrong' is another."""
    ds = load_dataset("xor")                             # x1=(0,0) 0, x2=(1,1) 0, x3=(0,1) 1, x4=(1,0) 1
    outs = np.array([[0.0, 0.5, 1.0, 0.5], [0.0, 0.5, 0.5, 1.0], [0.0, 1.0, 1.0, 1.0]])
    first = symmetry_classes(outs, [0.3466, 0.3466, 0.48], dataset_symmetries(ds.x, ds.y, True),
                             classification=True, tol=0.05, loss_tol=0.01)
    assert first.tolist() == [0, 0, 2]
    s = 40.0                                             # the same through drifting_plateaus on weights
    a = np.array([-s, s, s, -1.5 * s, 1e-7])             # unit on only at (1,1): outputs 1/2, 0, 1/2, 1/2
    b = np.array([-s, -s, -s, 0.5 * s, 0.0])             # unit on only at (0,0): outputs 0, 1/2, 1/2, 1/2
    pl = drifting_plateaus(np.array([a, a, b]), np.full(3, DRIFTING), np.arange(3), [0.52, 0.52, 0.52], ds.x, ds.y,
                           hidden=1, activation="sigmoid", classification=True, n_networks=3)
    assert [p.same_as for p in pl] == [0, 1]


def test_critical_kinds_follow_the_engine():
    assert [critical_kind(v) for v in (1e-3, -1e-3, 1e-12, -1e-12)] == ["local_minimum", "saddle", "flat", "flat"]
    assert critical_kind(1e-6, eig_tol=1e-5) == "flat"
    assert [kind_label(k) for k in ("local_minimum", "saddle", "flat", "saddle/flat")] == \
        ["local min", "saddle", "flat point", "saddle/flat point"]


def test_stored_minima_are_labelled_by_kind(runs):
    from badminima.analysis.minima import cell_minima, minima_table
    (d1,) = load_cells(str(runs / "d1.h5"), progress=False)
    mins = cell_minima(d1, progress=False)
    assert mins and all(m.label.split(" ")[0] in ("local", "saddle", "flat", "saddle/flat") for m in mins)
    for m in mins:                                   # the kind is the engine's verdict on the runs
        top = max(m.outcomes.values())
        assert m.kind in m.outcomes or "/" in m.kind
        assert "/" in m.kind or m.outcomes[m.kind] == top
    t = minima_table(mins, classification=False)
    assert "kind" in t.columns and "image of" in t.columns


@pytest.mark.parametrize("kind", ["regions", "fit", "convergence", "losses", "basins"])
def test_plot_command_writes_paper_sized_figures(runs, tmp_path, kind):
    from click.testing import CliRunner
    from matplotlib.image import imread
    from badminima.cli import main
    src = {"regions": ["fxor.h5"], "fit": ["d1.h5"], "convergence": ["xor2.s0.h5", "xor2.s1.h5", "xor3.h5"],
           "losses": ["fxor.h5", "d1.h5"], "basins": ["d1.h5"]}[kind]
    out = tmp_path / f"{kind}.png"
    r = CliRunner().invoke(main, ["plot", kind, *[str(runs / f) for f in src], "--figure", str(out), "--dpi", "50", "-q"])
    assert r.exit_code == 0, r.output
    w = imread(out).shape[1]
    assert w in (round(figures.SINGLE * 50), round(figures.DOUBLE * 50))


def test_an_unwritable_matplotlib_folder_is_not_a_warning(runs, tmp_path):
    """MPLCONFIGDIR naming a file (or a read-only HOME) made matplotlib warn on stderr at import, even
    under -q: the package gives it a folder of its own first, so a quiet figure says nothing."""
    import os
    import subprocess
    from badminima.engine.cluster.shards import default_exe
    (tmp_path / "file").write_text("not a folder")
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "file")}
    p = subprocess.run([*default_exe(), "plot", "losses", str(runs / "xor3.h5"), "--figure", str(tmp_path / "l.png"),
                        "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0 and p.stderr == "" and (tmp_path / "l.png").exists(), p.stderr
