"""Figures (matplotlib, no pyplot state: every function builds and returns a Figure; `save` writes it).

    regions_figure      dataset + decision regions of chosen networks (paper Figs 1, 3, 4)
    relu_fit_figure     1-D ReLU regression fits (paper Fig 2, e.g. relu_d1 with the Prop 1 point)
    convergence_figure  solved rate vs h per series with Wilson bars, the paper's Table 1 overlaid
    loss_histogram_figure  losses by outcome, one panel per cell
    basins_figure       basin fractions of distinct critical points / plateaus with Wilson bars
    table_figure        any list of rows as a table image (e.g. the minimality table)

Sized for a two-column paper: SINGLE (3.4 in) or DOUBLE (7 in) wide by default, 7-8 pt text
(PAPER_RC), every axis labelled and every mark explained in a legend placed outside the data.
Every figure has size (width, height) in inches and dpi; the saved PNG is exactly
round(width*dpi) x round(height*dpi) pixels (no tight bounding box).  Save as .png or .pdf by
extension (`save`), or both at once (`save_all`); PDFs embed TrueType fonts (editable text).
"""
from __future__ import annotations

import functools
import math
import textwrap
from pathlib import Path

from badminima.analysis import writable_matplotlib_dirs

writable_matplotlib_dirs()     # before matplotlib is imported
import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from badminima.engine.core.model import evaluate, logits
from badminima.engine.core.names import ACTIVATIONS, LOSSES
from badminima.engine.core.outcomes import NAMES
from badminima.engine.store.paths import atomic_file

OUTCOME_COLORS = {"solved": "#2ca02c", "local_minimum": "#d62728", "saddle": "#ff7f0e", "flat": "#9467bd",
                  "drifting": "#1f77b4", "diverged": "#000000", "out_of_steps": "#7f7f7f"}
CLASS_STYLE = {1: ("o", "#b2182b"), 0: ("s", "#2166ac")}      # marker, colour of class 1 / class 0 points
DEFAULT_DPI = 200
SINGLE = 3.4            # inches: one column of a two-column paper
DOUBLE = 7.0            # inches: the full text width
#: type sizes that read at 100% in a two-column paper (rcParams applied while a figure is built and saved)
PAPER_RC = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6.5,
            "ytick.labelsize": 6.5, "legend.fontsize": 6.5, "figure.titlesize": 8, "axes.linewidth": 0.6,
            "xtick.major.width": 0.6, "ytick.major.width": 0.6, "lines.linewidth": 1.1, "lines.markersize": 4,
            "legend.frameon": False, "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"}


def paper_style(fn):
    """Build the figure under PAPER_RC (matplotlib reads most sizes when an artist is created)."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        with matplotlib.rc_context(PAPER_RC):
            return fn(*a, **kw)
    return wrapper


def new_figure(size, dpi: int = DEFAULT_DPI) -> Figure:
    return Figure(figsize=tuple(size), dpi=dpi, layout="constrained")


def check_format(path) -> None:
    """Refuse a figure file name whose extension matplotlib cannot write, before anything is drawn (no
    extension: matplotlib's default, PNG)."""
    import shutil
    from matplotlib.backend_bases import FigureCanvasBase
    from badminima.analysis.load import AnalysisError
    ext = Path(path).suffix[1:].lower()
    supported = dict(FigureCanvasBase.get_supported_filetypes())
    if not shutil.which(matplotlib.rcParams["pgf.texsystem"]):
        supported.pop("pgf", None)          # matplotlib sets a PGF figure's text through a LaTeX run
    if ext and ext not in supported:
        raise AnalysisError(f"cannot write {path}: format {ext!r} is not supported (use .png, .pdf or .svg; "
                            f"also {', '.join(sorted(set(supported) - {'png', 'pdf', 'svg'}))})")


def check_output(path, sources, what: str) -> None:
    """Refuse, before anything is drawn, a figure file that is not named, cannot be written, has no
    format matplotlib writes, or is one of the files the figure is drawn from (a rows file named without
    an extension, which matplotlib would write as PNG)."""
    import glob
    import os
    from badminima.engine.store.paths import check_not_input, check_output_file
    from badminima.engine.train.config import ConfigError
    if isinstance(path, (str, os.PathLike)) and not os.fspath(path).strip():
        raise ConfigError(f"{what} is empty: give a file name")
    if path == "-":                 # '-' is standard output for --json, never a file here
        raise ConfigError(f"{what} -: a figure is not written to standard output; give a file name")
    check_output_file(path, what=what)
    check_format(path)
    check_not_input(path, [p for s in sources for p in (glob.glob(os.fspath(s)) or [s])], what=what)


def figure_options(size=None, dpi=DEFAULT_DPI) -> dict:
    """The size (width, height in inches, each in [0.5, 100]; or "WxH") and dpi (10..1200) of a figure,
    checked (ConfigError, as every option) before anything is drawn, as keyword arguments of the plot
    functions."""
    import numbers
    from badminima.engine.train.config import ConfigError, decimal_float
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Integral) or not 10 <= dpi <= 1200:
        raise ConfigError(f"dpi must be an integer in [10, 1200], got {dpi!r}")
    kw = {"dpi": int(dpi)}
    if size is not None:
        try:
            parts = size.lower().split("x") if isinstance(size, str) else list(size)
            if any(isinstance(v, (bool, np.bool_)) for v in parts):
                raise TypeError
            w, h = (decimal_float(v) if isinstance(v, str) else float(v) for v in parts)
        except (TypeError, ValueError):
            w = h = float("nan")
        if not (0.5 <= w <= 100 and 0.5 <= h <= 100):
            raise ConfigError(f"bad figure size {size!r}: width and height in inches, each in [0.5, 100], e.g. 6x4")
        kw["size"] = (w, h)
        check_raster(w, h, dpi)
    return kw


def check_raster(w: float, h: float, dpi: float) -> None:
    """Refuse (ResourceError) a w x h inch figure at dpi whose raster would not fit in memory."""
    from badminima.engine.train.limits import check_fits
    check_fits(int(16 * (w * dpi) * (h * dpi)), f"a figure of {w:g} x {h:g} inches at {dpi:g} dpi",
               "choose a smaller --size or --dpi")


def save(fig: Figure, path, dpi: int | None = None) -> Path:
    """Write the figure (format from the extension: .png, .pdf, .svg) at its own size; a raster larger
    than the memory available is refused (ResourceError) before it is drawn."""
    path = Path(path)
    w, h = fig.get_size_inches()
    check_raster(w, h, dpi or fig.dpi)
    with matplotlib.rc_context(PAPER_RC), atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=dpi or fig.dpi, format=path.suffix[1:].lower() or "png")   # none: PNG (check_format)
    return path


def save_all(fig: Figure, stem, formats=("png", "pdf"), dpi: int | None = None) -> list[Path]:
    """The figure as STEM.png and STEM.pdf (or the given formats); returns the paths."""
    stem = Path(stem)
    return [save(fig, stem.with_name(f"{stem.name}.{ext}"), dpi=dpi) for ext in formats]


def _grid(n: int, ncols: int | None = None) -> tuple[int, int]:
    ncols = ncols or min(3, max(n, 1))
    return max(1, math.ceil(n / ncols)), ncols


def _outputs(theta, X, hidden: int, activation: str) -> np.ndarray:
    """Output pre-activations (logits for classification, f(x) for regression) at the rows of X."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    return logits(np.ascontiguousarray(theta, dtype=np.float64), X, X.shape[1], hidden, ACTIVATIONS[activation])


def loss_accuracy(theta, X, y, hidden: int, activation: str, classification: bool = True) -> tuple[float, float]:
    """Exact mean loss (cross-entropy or squared error) and accuracy (NaN for regression) at theta."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    L, acc, _ = evaluate(np.ascontiguousarray(theta, dtype=np.float64), X, y, X.shape[1], hidden,
                         ACTIVATIONS[activation], LOSSES["xent" if classification else "mse"])
    return float(L), float(acc)


def _fill(text: str, inches: float, size: float = 7.0) -> str:
    """Text broken into lines that fit `inches` at `size` points (about 0.55 em per character)."""
    per_line = max(12, int(inches * 72 / (0.55 * size)))
    return "\n".join(textwrap.fill(ln, per_line, break_long_words=False) for ln in str(text).split("\n"))


def _padded(lo: float, hi: float, frac: float = 0.25) -> tuple[float, float]:
    span = hi - lo if hi > lo else 1.0
    return lo - frac * span, hi + frac * span


def _legend_below(fig: Figure, handles, labels=None, ncols: int | None = None) -> None:
    """One legend for the whole figure, under the axes (so it never covers data), in as many columns
    (at most `ncols`) as fit the figure's width."""
    labels = labels if labels is not None else [h.get_label() for h in handles]
    em = matplotlib.rcParams["legend.fontsize"]
    em = (em if isinstance(em, (int, float)) else 7.0) / 72.0          # inches
    entry = (1.8 + 0.8 + 1.2) * em + 0.56 * em * max((len(lb) for lb in labels), default=1)
    fit = max(1, int((fig.get_figwidth() - 0.1) / entry))
    fig.legend(handles, labels, loc="outside lower center", ncols=max(1, min(ncols or 4, fit, len(handles))),
               handlelength=1.8, columnspacing=1.2)


# ------------------------------------------------------------------------------- decision regions

@paper_style
def regions_figure(X, y, nets, *, hidden: int, activation: str, size=None, dpi: int = DEFAULT_DPI,
                   ncols: int | None = None, units: bool = True, resolution: int = 200,
                   title: str = "") -> Figure:
    """2-D classification data with each network's decision regions, one panel per network in the
    given order: shading = the network's output P(y = 1 | x) (colour bar), solid line = decision
    boundary P = 1/2, dashed lines = the hidden units' lines w_j . x + b_j = 0 (units=True; for ReLU
    they bound the linear regions).  Points: class 1 circles, class 0 squares, misclassified ones
    ringed in black.  Each panel's title is its caption with the network's exact loss and accuracy.

    nets: list of (theta, caption), e.g. (weights, "#12 solved") or (W_hat, "W_hat").
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.shape[1] != 2:
        raise ValueError("decision regions need 2-D inputs")
    nrows, ncols = _grid(len(nets), ncols)
    fig = new_figure(size or (DOUBLE if ncols > 1 else SINGLE, 2.0 * nrows + 0.55 + (0.2 if title else 0)), dpi)
    x0, x1 = _padded(X[:, 0].min(), X[:, 0].max())
    y0, y1 = _padded(X[:, 1].min(), X[:, 1].max())
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    G = np.column_stack([gx.ravel(), gy.ravel()])
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(nets):]:
        ax.set_axis_off()
    image = None
    boundary = unit_lines = False
    for ax, (theta, caption) in zip(axes.ravel(), nets):
        z = _outputs(theta, G, hidden, activation).reshape(gx.shape)
        p = 0.5 * (1.0 + np.tanh(0.5 * np.clip(z, -700, 700)))
        image = ax.imshow(p, origin="lower", extent=(x0, x1, y0, y1), cmap="RdBu_r", vmin=0.0, vmax=1.0,
                          alpha=0.5, aspect="auto", interpolation="bilinear")   # raster: small, fast PDFs
        if z.min() < 0.0 < z.max():
            ax.contour(gx, gy, z, levels=[0.0], colors="k", linewidths=1.1)
            boundary = True
        if units:
            th = np.asarray(theta, dtype=np.float64)
            for j in range(hidden):
                v, w0, w1, b = th[j * 4: j * 4 + 4]
                if abs(w1) >= abs(w0) and w1 != 0.0:
                    xs = np.array([x0, x1])
                    ax.plot(xs, -(w0 * xs + b) / w1, "--", color="0.3", lw=0.7)
                    unit_lines = True
                elif w0 != 0.0:
                    ys = np.array([y0, y1])
                    ax.plot(-(w1 * ys + b) / w0, ys, "--", color="0.3", lw=0.7)
                    unit_lines = True
        zx = _outputs(theta, X, hidden, activation)
        wrong = (zx > 0) != (y > 0.5)
        for cls, (marker, color) in CLASS_STYLE.items():
            m = (y > 0.5) == bool(cls)
            ax.scatter(X[m, 0], X[m, 1], marker=marker, c=color, s=22, zorder=3,
                       edgecolors=np.where(wrong[m], "k", "w").tolist(), linewidths=np.where(wrong[m], 1.6, 0.6))
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        L, acc = loss_accuracy(theta, X, y, hidden, activation)
        ax.set_title(_fill(f"{caption}\nloss {L:.4g}, acc {acc:.2f}", fig.get_figwidth() / ncols))
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
        ax.set_aspect("auto")
    if image is not None:
        cb = fig.colorbar(image, ax=axes.ravel()[:len(nets)].tolist(), shrink=0.9, aspect=25, pad=0.01)
        cb.set_label("network output P(y=1 | x)")
        cb.solids.set_alpha(0.5)
    handles = [Line2D([], [], ls="", marker=CLASS_STYLE[1][0], color=CLASS_STYLE[1][1], mec="w", label="class 1"),
               Line2D([], [], ls="", marker=CLASS_STYLE[0][0], color=CLASS_STYLE[0][1], mec="w", label="class 0"),
               Line2D([], [], ls="", marker="o", mfc="none", mec="k", mew=1.6, label="misclassified")]
    if boundary:
        handles.append(Line2D([], [], color="k", lw=1.1, label="decision boundary (P = 1/2)"))
    if unit_lines:
        handles.append(Line2D([], [], color="0.3", ls="--", lw=0.7, label="hidden unit $w_j \\cdot x + b_j = 0$"))
    _legend_below(fig, handles, ncols=min(len(handles), 5 if ncols > 1 else 2))
    if title:
        fig.suptitle(_fill(title, fig.get_figwidth(), 8.0))
    return fig


# ------------------------------------------------------------------------------- ReLU regression fits

@paper_style
def relu_fit_figure(X, y, nets, *, hidden: int, activation: str = "relu", size=(SINGLE, 2.9),
                    dpi: int = DEFAULT_DPI, title: str = "") -> Figure:
    """1-D regression data and the fitted functions f(x) of the given (theta, caption) networks; the
    legend (below the axes) gives each network's exact mean squared error."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.shape[1] != 1:
        raise ValueError("regression fits need 1-D inputs")
    fig = new_figure(size, dpi)
    ax = fig.subplots()
    lo, hi = _padded(X[:, 0].min(), X[:, 0].max(), 0.15)
    xs = np.linspace(lo, hi, 400)
    for k, (theta, caption) in enumerate(nets):
        L, _ = loss_accuracy(theta, X, y, hidden, activation, classification=False)
        ax.plot(xs, _outputs(theta, xs[:, None], hidden, activation), lw=1.2, color=f"C{k % 10}",
                ls=("-", "--", "-.", ":")[k % 4], label=f"{caption}, loss {L:.4g}")   # coinciding fits stay visible
    ax.scatter(X[:, 0], y, c="k", s=16, zorder=3, label="data")
    for i, (xi, yi) in enumerate(zip(X[:, 0], y)):
        ax.annotate(f"$x_{{{i + 1}}}$", (xi, yi), textcoords="offset points", xytext=(3, 3), fontsize=6)
    ax.set_xlabel("input $x$")
    ax.set_ylabel("network output $f(x)$")
    ax.set_xlim(lo, hi)
    _legend_below(fig, ax.get_legend_handles_labels()[0], ncols=1 if len(nets) > 3 else 2)
    if title:
        ax.set_title(_fill(title, fig.get_figwidth() - 0.3))
    return fig


# ------------------------------------------------------------------------------- convergence vs h

@paper_style
def convergence_figure(series, *, size=None, dpi: int = DEFAULT_DPI, outcome: str = "solved") -> Figure:
    """Rate (percent) vs h with Wilson 95% bars; one panel per dataset, one line per series, the legend
    under the panels (so it never covers a point).

    series: list of dicts with keys dataset, label, h (list), rates (list of Rate) and optionally
    paper_h, paper (percent values), drawn as crosses on a dotted line of the same colour.
    """
    datasets = list(dict.fromkeys(s["dataset"] for s in series)) or ["-"]
    labels = list(dict.fromkeys(s["label"] for s in series))
    width = SINGLE if len(datasets) == 1 else DOUBLE
    per_row = max(1, int(width / (0.6 + 0.05 * max((len(lb) for lb in labels), default=1))))
    rows = math.ceil((len(labels) + any(s.get("paper") for s in series)) / per_row)
    fig = new_figure(size or (width, 2.2 + 0.13 * rows), dpi)
    axes = fig.subplots(1, len(datasets), squeeze=False, sharey=True)[0]
    color = {lb: f"C{k % 10}" for k, lb in enumerate(labels)}
    handles, paper = {}, False
    for ax, ds in zip(axes, datasets):
        for s in (s for s in series if s["dataset"] == ds):
            c = color[s["label"]]
            h = np.asarray(s["h"], dtype=float)
            p = np.array([100 * r.p for r in s["rates"]])
            err = np.array([[100 * (r.p - r.ci.lo) for r in s["rates"]], [100 * (r.ci.hi - r.p) for r in s["rates"]]])
            eb = ax.errorbar(h, p, yerr=err, fmt="o-", color=c, capsize=2, ms=3, lw=1.0, elinewidth=0.8,
                             label=s["label"])
            handles.setdefault(s["label"], eb)
            if s.get("paper"):
                ax.plot(s["paper_h"], s["paper"], "x:", color=c, ms=4, lw=0.8)
                paper = True
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        lo, hi = ax.get_xlim()
        ax.set_xlim(min(lo, math.floor(lo + 0.5) - 0.5), max(hi, math.ceil(hi - 0.5) + 0.5))
        ax.set_title(ds)
        ax.set_xlabel("hidden units $h$")
        if ax is axes[0]:                   # the panels share the y axis
            ax.set_ylabel(f"{outcome} (% of networks)")
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3, lw=0.5)
    hs = [handles[lb] for lb in labels if lb in handles]
    if paper:
        hs.append(Line2D([], [], color="0.3", ls=":", marker="x", ms=4, lw=0.8, label="the paper's Table 1"))
    if hs:
        _legend_below(fig, hs, [h.get_label() for h in hs], ncols=5)
    return fig


# ------------------------------------------------------------------------------- losses by outcome

@paper_style
def loss_histogram_figure(panels, *, size=None, dpi: int = DEFAULT_DPI, bins: int = 40,
                          ncols: int | None = None) -> Figure:
    """Loss histograms stacked by outcome (the loss at the point each verdict describes); panels: list of (caption, loss (n,), outcome codes (n,)).
    One legend of the outcomes for all panels, under them; the counts per outcome are in each title.

    The loss axis is logarithmic when the losses span more than two decades (zeros drawn at the
    smallest bin)."""
    nrows, ncols = _grid(len(panels), ncols or min(2, max(len(panels), 1)))
    fig = new_figure(size or (SINGLE if ncols == 1 else DOUBLE, 2.1 * nrows + 0.45), dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_axis_off()
    seen = {}
    for ax, (caption, loss, outcome) in zip(axes.ravel(), panels):
        loss = np.asarray(loss, dtype=np.float64)
        outcome = np.asarray(outcome)
        ok = np.isfinite(loss)
        pos = loss[ok & (loss > 0)]
        logx = pos.size > 0 and pos.max() / pos.min() > 100
        if logx:
            lo = pos.min()
            edges = np.geomspace(lo, max(pos.max(), lo * 1.001), bins + 1)
            vals = np.clip(loss, lo, None)
        else:
            fin = loss[ok]
            a, b = (fin.min(), fin.max()) if fin.size else (0.0, 1.0)
            edges = np.linspace(a, b if b > a else a + 1.0, bins + 1)
            vals = loss
        data, labels, colors = [], [], []
        for code, name in NAMES.items():
            m = ok & (outcome == code)
            if m.any():
                data.append(vals[m])
                labels.append(name)
                colors.append(OUTCOME_COLORS[name])
        if data:
            ax.hist(data, bins=edges, stacked=True, color=colors, label=labels)
        for name in labels:
            seen.setdefault(name, Patch(color=OUTCOME_COLORS[name], label=name.replace("_", " ")))
        if logx:
            ax.set_xscale("log")
        counts = ", ".join(f"{len(d)} {n.replace('_', ' ')}" for d, n in zip(data, labels))
        ax.set_xlabel("final mean loss")
        ax.set_ylabel("networks")
        ax.set_title(_fill(f"{caption}\n{counts}" if counts else caption, fig.get_figwidth() / ncols))
    hs = [seen[n] for n in NAMES.values() if n in seen]
    if hs:
        _legend_below(fig, hs, ncols=min(len(hs), 4 if ncols == 1 else 7))
    return fig


# ------------------------------------------------------------------------------- basin fractions

BASIN_KINDS = {"local_minimum": ("local minimum", OUTCOME_COLORS["local_minimum"]),
               "saddle": ("saddle", OUTCOME_COLORS["saddle"]), "flat": ("flat point", OUTCOME_COLORS["flat"]),
               "plateau": ("drifting plateau", OUTCOME_COLORS["drifting"]), "other": ("others", "0.6")}


def _kind_style(kind: str) -> dict:
    """Bar style of a basin kind; a mixed one ("saddle/flat": a continuum holding both) is the first
    kind's colour hatched in the second's."""
    parts = [k for k in kind.split("/") if k in BASIN_KINDS] or ["other"]
    label = "/".join(BASIN_KINDS[k][0].replace(" point", "") for k in parts)
    label += " point" if parts[-1] == "flat" else ""
    style = {"facecolor": BASIN_KINDS[parts[0]][1], "label": label}
    if len(parts) > 1:
        style.update(hatch="////", edgecolor=BASIN_KINDS[parts[1]][1], linewidth=0.0)
    return style


@paper_style
def basins_figure(groups, *, size=None, dpi: int = DEFAULT_DPI, title: str = "") -> Figure:
    """Horizontal bars of basin fractions (percent) with Wilson 95% error bars, coloured by kind, k/n
    beside each bar, a legend of the kinds under the axes.

    groups: list of (label, Rate) or (label, Rate, kind) with kind one of BASIN_KINDS (local_minimum,
    saddle, flat, plateau, other) or several joined by "/" ("saddle/flat"), or objects with .label,
    .fraction and optionally .kind."""
    items = []
    for g in groups:
        if hasattr(g, "fraction"):
            items.append((g.label, g.fraction, getattr(g, "kind", "plateau")))
        else:
            items.append((g[0], g[1], g[2] if len(g) > 2 else "other"))
    lines = sum(1 + lb.count("\n") for lb, _, _ in items)
    fig = new_figure(size or (SINGLE, 0.95 + (0.2 if title else 0) + 0.17 * max(lines, 1) + 0.06 * len(items)), dpi)
    ax = fig.subplots()
    if items:
        ys = np.arange(len(items))[::-1]
        top = min(100.0, max(100 * max(r.ci.hi for _, r, _ in items) * 1.3, 1.0))
        legend = {}
        for yy, (_, r, kind) in zip(ys, items):
            st = _kind_style(kind)
            bar = ax.barh([yy], [100 * r.p], xerr=[[100 * (r.p - r.ci.lo)], [100 * (r.ci.hi - r.p)]], height=0.65,
                          capsize=2, error_kw={"elinewidth": 0.7}, **st)
            legend.setdefault(st["label"], bar.patches[0])
            ax.text(100 * r.ci.hi + 0.01 * top, yy, f"{r.k}/{r.n}", va="center", fontsize=5.5)
        ax.set_yticks(ys, [lb for lb, _, _ in items])
        ax.set_xlim(0, top)
        ax.set_ylim(-0.6, len(items) - 0.4)
        _legend_below(fig, list(legend.values()), list(legend), ncols=3)
    else:
        ax.text(0.5, 0.5, "no finite critical points or plateaus", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("basin (% of networks, Wilson 95%)")
    ax.set_ylabel("end state")
    if title:
        fig.suptitle(_fill(title, fig.get_figwidth() - 0.2, 8.0))
    return fig


# ------------------------------------------------------------------------------- tables as images

_GOOD = {"yes", "true", "strict", "certified", "local minimum", "local_minimum", "minimum", "proved"}
_BAD = {"no", "false", "not", "saddle", "not a minimum", "refuted", "failed"}


def _cell_text(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.6g}"
    return "-" if v is None else str(v)


@paper_style
def table_figure(rows, columns=None, *, size=None, dpi: int = DEFAULT_DPI, title: str = "") -> Figure:
    """A list of rows as a table image.  rows: list of dicts (columns = keys, first-seen order) or of
    lists (with `columns`).  Cells reading yes/true/certified/"... local minimum" are tinted green,
    no/false/saddle/"not ..." red."""
    rows = list(rows)
    if rows and isinstance(rows[0], dict):
        columns = columns or list(dict.fromkeys(k for r in rows for k in r))
        body = [[r.get(c) for c in columns] for r in rows]
    else:
        body = [list(r) for r in rows]
        columns = list(columns) if columns else [f"col {i + 1}" for i in range(max((len(r) for r in body), default=1))]
    text = [[_cell_text(v) for v in r] + [""] * (len(columns) - len(r)) for r in body]
    body_w = [max([len(r[c]) for r in text] + [6]) for c in range(len(columns))]
    heads = [textwrap.fill(str(col), max(body_w[c], 8), break_long_words=False) for c, col in enumerate(columns)]
    chars = [max([body_w[c]] + [len(x) for x in heads[c].split("\n")]) + 2 for c in range(len(columns))]
    head_lines = max(h.count("\n") + 1 for h in heads)
    width = SINGLE if sum(chars) * 0.06 <= SINGLE - 0.2 else DOUBLE        # ~0.06 in per bold 6.5 pt character
    fig = new_figure(size or (width, 0.45 + 0.17 * (len(text) + head_lines)), dpi)
    ax = fig.subplots()
    ax.set_axis_off()
    if text:
        tab = ax.table(cellText=text, colLabels=heads, colWidths=[c / sum(chars) for c in chars], loc="center",
                       cellLoc="center")
        tab.auto_set_font_size(False)
        tab.set_fontsize(6.5)
        for (r, c), cell in tab.get_celld().items():
            if r == 0:
                cell.set_facecolor("#dddddd")
                cell.set_text_props(weight="bold")
                cell.set_height(cell.get_height() * head_lines)
                continue
            t = text[r - 1][c].strip().lower()
            if t in _BAD or t.startswith("not "):
                cell.set_facecolor("#f8d7d7")
            elif t in _GOOD or t.endswith("local minimum"):
                cell.set_facecolor("#d9f2d9")
    else:
        ax.text(0.5, 0.5, "no rows", ha="center", va="center")
    if title:
        ax.set_title(_fill(title, fig.get_figwidth() - 0.3))
    return fig


__all__ = ["OUTCOME_COLORS", "BASIN_KINDS", "DEFAULT_DPI", "SINGLE", "DOUBLE", "PAPER_RC", "paper_style",
           "new_figure", "save", "save_all", "loss_accuracy", "regions_figure", "relu_fit_figure", "convergence_figure",
           "loss_histogram_figure", "basins_figure", "table_figure"]
