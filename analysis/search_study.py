"""The N <= 7 study of the deadlock search: how close the converged, non-degenerate critical points come
to a strict minimum, per N and label split, as a table and a figure.

    badminima study 'runs/study/N*.h5' --figure study.png [--json study.json]

Reads search result files (one per N and strategy, shards or merged; engine/search/run.py) and, per
(N, number of points labelled 1), counts the attempts, the converged non-degenerate critical points
(verdict not_minimum, or any verdict past the float screen) and the largest smallest Hessian eigenvalue
lambda_min among them, and the same for those whose data lie off a line (OFF_LINE); the figure shows
the distribution of lambda_min over the critical points (symmetric-log axis: a strict minimum needs
lambda_min > 0).
"""
from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

from badminima.engine.search.run import CERTIFIED, FLOAT_PASSED, NOT_MINIMUM, OFF_LINE, off_line, record_identity
from badminima.engine.store import StoreError, expand_paths, open_results


def _searches(paths) -> list:
    """The files in `paths` grouped by search: those whose candidates have the same records (the same
    options but for budget, found-dir and shard), each group a list of opened files."""
    groups: dict = defaultdict(list)
    for path in paths:
        res = open_results(path)
        if res.config.get("command") != "search" or "points" not in res.config:
            raise StoreError(f"{path}: not a search result file (badminima search writes those)")
        groups[json.dumps(record_identity(res.config), sort_keys=True, default=str)].append(res)
    return list(groups.values())


def study_data(patterns) -> dict:
    """{(N, ones): {"attempts", "critical", "float_candidates", "certified", "lambdas", "off_line",
    "lambdas_off_line", "strategies"}}.  Each candidate counts once: files of one search that hold the
    same candidate (copies, a shard beside its merge, runs of other budgets) are refused."""
    out: dict = defaultdict(lambda: {"attempts": 0, "critical": 0, "float_candidates": 0, "certified": 0,
                                     "lambdas": [], "off_line": 0, "lambdas_off_line": [], "strategies": set()})
    for group in _searches(expand_paths(patterns)):
        held: list = []                                 # (file, its candidate indices) of this search
        for res in group:
            N = int(res.config["points"])
            rows = res.cell(res.cells[0], ["index", "verdict", "min_eig", "labels", "points"])
            for other, idx in held:
                both = np.intersect1d(idx, rows["index"])
                if len(both):
                    raise StoreError(f"{res.files[0]} and {other} both hold candidate {int(both[0])} of one search "
                                     f"(copies, or runs that overlap): give each candidate once")
            held.append((res.files[0], rows["index"]))
            _count(out, N, res.config["strategy"], rows)
    return dict(out)


def _count(out: dict, N: int, strategy: str, rows: dict) -> None:
    """Add one file's candidates to the study's counts, per label split."""
    ones = rows["labels"].sum(1)
    ones = np.minimum(ones, N - ones)               # the label flip is a symmetry
    crit = (rows["verdict"] == NOT_MINIMUM) | np.isin(rows["verdict"], FLOAT_PASSED)
    apart = off_line(rows["points"], among=crit)
    for k in np.unique(ones):
        m = ones == k
        d = out[(N, int(k))]
        d["attempts"] += int(m.sum())
        d["critical"] += int((m & crit).sum())
        d["float_candidates"] += int((m & np.isin(rows["verdict"], FLOAT_PASSED)).sum())
        d["certified"] += int((m & (rows["verdict"] == CERTIFIED)).sum())
        d["lambdas"].extend(rows["min_eig"][m & crit].tolist())
        d["off_line"] += int((m & crit & apart).sum())
        d["lambdas_off_line"].extend(rows["min_eig"][m & crit & apart].tolist())
        d["strategies"].add(strategy)


def study_table(data: dict) -> str:
    head = (f"{'N':>3} {'ones':>4} | {'attempts':>9} | {'crit. pts':>9} | {'float cand.':>11} | {'certified':>9} | "
            f"{'best lambda_min':>15} | {'median':>10} | {'off a line':>10} | {'best off line':>13} | strategies")
    lines = [head, "-" * len(head)]

    def fmt(values, how):
        return f"{how(np.array(values)):.3g}" if len(values) else "-"
    for (N, k) in sorted(data):
        d = data[(N, k)]
        lines.append(f"{N:>3} {k:>4} | {d['attempts']:>9} | {d['critical']:>9} | {d['float_candidates']:>11} | "
                     f"{d['certified']:>9} | {fmt(d['lambdas'], np.max):>15} | {fmt(d['lambdas'], np.median):>10} | "
                     f"{d['off_line']:>10} | {fmt(d['lambdas_off_line'], np.max):>13} | {','.join(sorted(d['strategies']))}")
    lines.append("crit. pts: converged (||grad|| < 1e-7 after Newton), non-degenerate critical points; "
                 "ones: points labelled 1 (or 0, whichever is fewer)")
    lines.append(f"off a line: the critical points whose centred data have a second singular value >= {OFF_LINE} "
                 "of the first (data on a line always have a flat direction)")
    return "\n".join(lines)


def study_json(data: dict) -> list:
    """The table's rows as JSON-ready dicts (the lambda_min lists summarized by their best)."""
    return [{"points": N, "ones": k,
             **{key: v for key, v in d.items() if key not in ("lambdas", "lambdas_off_line", "strategies")},
             "strategies": sorted(d["strategies"]),
             "best_lambda_min": max(d["lambdas"]) if d["lambdas"] else None,
             "best_lambda_min_off_line": max(d["lambdas_off_line"]) if d["lambdas_off_line"] else None}
            for (N, k), d in sorted(data.items())]


def study_figure(data: dict):
    """The distribution of lambda_min over the critical points, one panel per N, one curve per label
    split (a matplotlib Figure; analysis.figures.save writes it)."""
    from badminima.analysis.figures import new_figure
    Ns = sorted({N for N, _ in data}) or [None]         # no candidates at all: one panel saying so
    fig = new_figure((3.6 * len(Ns), 3.2), dpi=120)
    axes = fig.subplots(1, len(Ns), squeeze=False)
    lin = 1e-7
    edges = np.concatenate([-np.logspace(0, np.log10(lin), 29), np.linspace(-lin, lin, 5)[1:-1],
                            np.logspace(np.log10(lin), 0, 29)])
    for ax, N in zip(axes[0], Ns):
        for (n, k) in sorted(data):
            if n != N:
                continue
            lam = np.clip(np.array(data[(n, k)]["lambdas"]), -0.999, 0.999)
            if len(lam):
                ax.hist(lam, bins=edges, histtype="step", label=f"{k} vs {N - k} (best {lam.max():.2g})")
        ax.set_xscale("symlog", linthresh=lin)
        ax.set_xticks([-1e-1, -1e-4, 0.0, 1e-4, 1e-1])
        ax.set_xticklabels(["-1e-1", "-1e-4", "0", "1e-4", "1e-1"])
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_title(f"N = {N}" if N is not None else "no candidates")
        ax.set_xlabel("smallest Hessian eigenvalue")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, title="label split", title_fontsize=7)
        else:
            ax.text(0.5, 0.5, "no converged non-degenerate\ncritical point", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
    axes[0][0].set_ylabel("converged non-degenerate critical points")
    return fig
