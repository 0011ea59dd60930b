"""Figures (matplotlib, no pyplot state: every function builds and returns a Figure; `save` writes it).

    regions_figure      dataset + decision regions of chosen networks (paper Figs 1, 3, 4)
    relu_fit_figure     1-D ReLU regression fits (paper Fig 2, e.g. relu_d1 with the Prop 1 point)
    convergence_figure  solved rate vs h per series with Wilson bars, the paper's Table 1 overlaid
    loss_histogram_figure  final losses by outcome, one panel per cell
    basins_figure       basin fractions of distinct minima / plateaus with Wilson bars
    table_figure        any list of rows as a table image (e.g. the minimality table)

Every figure has size (width, height) in inches and dpi; the saved PNG is exactly
round(width*dpi) x round(height*dpi) pixels (no tight bounding box).  Save as .png or .pdf by extension.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from badminima.engine.core.model import logits
from badminima.engine.core.names import ACTIVATIONS
from badminima.engine.core.outcomes import NAMES

OUTCOME_COLORS = {"solved": "#2ca02c", "local_minimum": "#d62728", "saddle": "#ff7f0e", "flat": "#9467bd",
                  "drifting": "#1f77b4", "diverged": "#000000", "out_of_steps": "#7f7f7f"}
DEFAULT_DPI = 100


def new_figure(size, dpi: int = DEFAULT_DPI) -> Figure:
    return Figure(figsize=tuple(size), dpi=dpi, layout="constrained")


def save(fig: Figure, path, dpi: int | None = None) -> Path:
    """Write the figure (format from the extension: .png, .pdf, .svg) at its own size; a raster larger
    than the memory available is refused (ResourceError) before it is drawn."""
    from badminima.engine.train.limits import check_fits
    path = Path(path)
    w, h = fig.get_size_inches()
    px = (w * (dpi or fig.dpi)) * (h * (dpi or fig.dpi))
    check_fits(int(16 * px), f"a figure of {w:g} x {h:g} inches at {dpi or fig.dpi:g} dpi",
               "choose a smaller --size or --dpi")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi or fig.dpi)
    return path


def _grid(n: int, ncols: int | None = None) -> tuple[int, int]:
    ncols = ncols or min(3, max(n, 1))
    return max(1, math.ceil(n / ncols)), ncols


def _outputs(theta, X, hidden: int, activation: str) -> np.ndarray:
    """Output pre-activations (logits for classification, f(x) for regression) at the rows of X."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    return logits(np.ascontiguousarray(theta, dtype=np.float64), X, X.shape[1], hidden, ACTIVATIONS[activation])


def _padded(lo: float, hi: float, frac: float = 0.25) -> tuple[float, float]:
    span = hi - lo if hi > lo else 1.0
    return lo - frac * span, hi + frac * span


# ------------------------------------------------------------------------------- decision regions

def regions_figure(X, y, nets, *, hidden: int, activation: str, size=None, dpi: int = DEFAULT_DPI,
                   ncols: int | None = None, units: bool = True, resolution: int = 200,
                   title: str = "") -> Figure:
    """2-D classification data with each network's decision regions (P(y=1) shading, boundary z = 0).

    nets: list of (theta, caption).  Points: class 1 as circles, class 0 as squares, misclassified
    ones ringed in black.  units=True draws every hidden unit's line w_j . x + b_j = 0 (dashed): for
    ReLU these bound the linear regions.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.shape[1] != 2:
        raise ValueError("decision regions need 2-D inputs")
    nrows, ncols = _grid(len(nets), ncols)
    fig = new_figure(size or (3.2 * ncols, 3.0 * nrows + (0.3 if title else 0)), dpi)
    x0, x1 = _padded(X[:, 0].min(), X[:, 0].max())
    y0, y1 = _padded(X[:, 1].min(), X[:, 1].max())
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    G = np.column_stack([gx.ravel(), gy.ravel()])
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(nets):]:
        ax.set_axis_off()
    for ax, (theta, caption) in zip(axes.ravel(), nets):
        z = _outputs(theta, G, hidden, activation).reshape(gx.shape)
        p = 0.5 * (1.0 + np.tanh(0.5 * np.clip(z, -700, 700)))
        ax.imshow(p, origin="lower", extent=(x0, x1, y0, y1), cmap="RdBu_r", vmin=0.0, vmax=1.0, alpha=0.45,
                  aspect="auto", interpolation="bilinear")   # raster: small, fast PDFs
        if z.min() < 0.0 < z.max():
            ax.contour(gx, gy, z, levels=[0.0], colors="k", linewidths=1.2)
        if units:
            th = np.asarray(theta, dtype=np.float64)
            for j in range(hidden):
                v, w0, w1, b = th[j * 4: j * 4 + 4]
                if abs(w1) >= abs(w0) and w1 != 0.0:
                    xs = np.array([x0, x1])
                    ax.plot(xs, -(w0 * xs + b) / w1, "--", color="0.35", lw=0.8)
                elif w0 != 0.0:
                    ys = np.array([y0, y1])
                    ax.plot(-(w1 * ys + b) / w0, ys, "--", color="0.35", lw=0.8)
        zx = _outputs(theta, X, hidden, activation)
        wrong = (zx > 0) != (y > 0.5)
        for cls, marker, color in ((1, "o", "#b2182b"), (0, "s", "#2166ac")):
            m = (y > 0.5) == bool(cls)
            ax.scatter(X[m, 0], X[m, 1], marker=marker, c=color, s=40, zorder=3,
                       edgecolors=np.where(wrong[m], "k", "w").tolist(), linewidths=np.where(wrong[m], 2.0, 0.8))
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_title(caption, fontsize=9)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ------------------------------------------------------------------------------- ReLU regression fits

def relu_fit_figure(X, y, nets, *, hidden: int, activation: str = "relu", size=(6.0, 4.0),
                    dpi: int = DEFAULT_DPI, title: str = "") -> Figure:
    """1-D regression data and the fitted functions f(x) of the given (theta, caption) networks."""
    X = np.asarray(X, dtype=np.float64)
    if X.shape[1] != 1:
        raise ValueError("regression fits need 1-D inputs")
    fig = new_figure(size, dpi)
    ax = fig.subplots()
    lo, hi = _padded(X[:, 0].min(), X[:, 0].max(), 0.15)
    xs = np.linspace(lo, hi, 400)
    for k, (theta, caption) in enumerate(nets):
        ax.plot(xs, _outputs(theta, xs[:, None], hidden, activation), lw=1.6, color=f"C{k % 10}", label=caption)
    ax.scatter(X[:, 0], y, c="k", s=30, zorder=3, label="data")
    for i, (xi, yi) in enumerate(zip(X[:, 0], y)):
        ax.annotate(f"x{i + 1}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_xlim(lo, hi)
    if nets:
        ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


# ------------------------------------------------------------------------------- convergence vs h

def convergence_figure(series, *, size=None, dpi: int = DEFAULT_DPI, outcome: str = "solved") -> Figure:
    """Rate (percent) vs h with Wilson 95% bars; one panel per dataset, one line per series.

    series: list of dicts with keys dataset, label, h (list), rates (list of Rate) and optionally
    paper_h, paper (percent values), paper_label, drawn as crosses on a dotted line of the same colour.
    """
    datasets = list(dict.fromkeys(s["dataset"] for s in series)) or ["-"]
    fig = new_figure(size or (4.6 * len(datasets), 3.8), dpi)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    color = {}
    for ax, ds in zip(axes, datasets):
        for s in (s for s in series if s["dataset"] == ds):
            c = color.setdefault(s["label"], f"C{len(color) % 10}")
            h = np.asarray(s["h"], dtype=float)
            p = np.array([100 * r.p for r in s["rates"]])
            err = np.array([[100 * (r.p - r.ci.lo) for r in s["rates"]], [100 * (r.ci.hi - r.p) for r in s["rates"]]])
            ax.errorbar(h, p, yerr=err, fmt="o-", color=c, capsize=3, ms=4, lw=1.3, label=s["label"])
            if s.get("paper"):
                ax.plot(s["paper_h"], s["paper"], "x:", color=c, ms=6, lw=1.0,
                        label=f"paper: {s.get('paper_label', s['label'])}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        lo, hi = ax.get_xlim()
        ax.set_xlim(min(lo, math.floor(lo + 0.5) - 0.5), max(hi, math.ceil(hi - 0.5) + 0.5))
        ax.set_title(ds, fontsize=10)
        ax.set_xlabel("hidden units h")
        ax.set_ylabel(f"{outcome} (%)")
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    return fig


# ------------------------------------------------------------------------------- final losses

def loss_histogram_figure(panels, *, size=None, dpi: int = DEFAULT_DPI, bins: int = 40,
                          ncols: int | None = None) -> Figure:
    """Final-loss histograms stacked by outcome; panels: list of (caption, loss (n,), outcome codes (n,)).

    The loss axis is logarithmic when the losses span more than two decades (zeros drawn at the
    smallest bin)."""
    nrows, ncols = _grid(len(panels), ncols or min(2, max(len(panels), 1)))
    fig = new_figure(size or (4.6 * ncols, 3.2 * nrows), dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_axis_off()
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
                labels.append(f"{name} ({int(m.sum())})")
                colors.append(OUTCOME_COLORS[name])
        if data:
            ax.hist(data, bins=edges, stacked=True, color=colors, label=labels)
            ax.legend(fontsize=7, loc="best")
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel("final mean loss")
        ax.set_ylabel("networks")
        ax.set_title(caption, fontsize=9)
    return fig


# ------------------------------------------------------------------------------- basin fractions

def basins_figure(groups, *, size=None, dpi: int = DEFAULT_DPI, title: str = "") -> Figure:
    """Horizontal bars of basin fractions (percent) with Wilson 95% error bars.

    groups: list of (label, Rate) or objects with .label and .fraction (Minimum, Plateau)."""
    items = [(g.label, g.fraction) if hasattr(g, "fraction") else (g[0], g[1]) for g in groups]
    fig = new_figure(size or (6.0, 1.2 + 0.32 * max(len(items), 1)), dpi)
    ax = fig.subplots()
    if items:
        ys = np.arange(len(items))[::-1]
        p = np.array([100 * r.p for _, r in items])
        err = np.array([[100 * (r.p - r.ci.lo) for _, r in items], [100 * (r.ci.hi - r.p) for _, r in items]])
        ax.barh(ys, p, xerr=err, color="#4c72b0", capsize=3, height=0.6)
        ax.set_yticks(ys, [lb for lb, _ in items], fontsize=8)
        for yy, (_, r) in zip(ys, items):
            ax.text(100 * r.ci.hi + 0.5, yy, f"{r.k}/{r.n}", va="center", fontsize=7)
        ax.set_xlim(0, min(100.0, max(100 * max(r.ci.hi for _, r in items) * 1.25, 1.0)))
    else:
        ax.text(0.5, 0.5, "no groups", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("basin fraction (% of networks)")
    if title:
        fig.suptitle(title, fontsize=10)
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
    fig = new_figure(size or (max(6.0, 1.25 * len(columns)), 0.9 + 0.3 * (len(text) + 1)), dpi)
    ax = fig.subplots()
    ax.set_axis_off()
    if text:
        tab = ax.table(cellText=text, colLabels=[str(c) for c in columns], loc="center", cellLoc="center")
        tab.auto_set_font_size(False)
        tab.set_fontsize(8)
        for (r, c), cell in tab.get_celld().items():
            if r == 0:
                cell.set_facecolor("#dddddd")
                cell.set_text_props(weight="bold")
                continue
            t = text[r - 1][c].strip().lower()
            if t in _BAD or t.startswith("not "):
                cell.set_facecolor("#f8d7d7")
            elif t in _GOOD or t.endswith("local minimum"):
                cell.set_facecolor("#d9f2d9")
    else:
        ax.text(0.5, 0.5, "no rows", ha="center", va="center")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


__all__ = ["OUTCOME_COLORS", "new_figure", "save", "regions_figure", "relu_fit_figure", "convergence_figure",
           "loss_histogram_figure", "basins_figure", "table_figure"]
