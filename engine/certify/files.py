"""Certify the weight points stored in a dataset file (the data/ JSON format) and summarise the result.

``certify_file(path)`` loads a dataset (a path or a built-in name, via engine/data/datasets.py), picks the
points to certify, resolves a witness for each, dispatches on the point's activation --
sigmoid/tanh to ``certify_smooth`` (interval Krawczyk + positive-definite Hessian, see its docstring),
relu to ``certify_relu`` (exact rational pattern-cone test) -- and returns one JSON-able report.
``format_report(report)`` turns it into a short human summary.

Witness resolution, per point P (first that applies): the ``witness`` argument (a point name in the
file, or an explicit weight vector); P's own ``"witness": "<name>"`` key; a point named ``P_witness``;
the file's top-level ``"witness": "<name>"`` key; a point named ``witness``.  A point is never its own
witness.  Witness points are certified too when they are selected (all points by default, except the
one literally named ``witness``).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from badminima.engine.data import datasets
from badminima.engine.certify.relu import certify_relu
from badminima.engine.certify.smooth import certify_smooth


def _resolve_witness(name: str, ds, witness) -> tuple[str | None, Sequence[str] | None]:
    pts = ds.points
    if witness is not None:
        if isinstance(witness, str):
            if witness not in pts:
                raise datasets.DataError(f"witness point {witness!r} not in the file "
                                         f"(points: {', '.join(pts) or 'none'})")
            return (None, None) if witness == name else (witness, pts[witness].theta_text)
        return "given", [str(t) for t in witness]
    cands = [c for c in (pts[name].witness, f"{name}_witness", ds.witness, "witness") if c]
    for c in cands:
        if c in pts and c != name:
            return c, pts[c].theta_text
    return None, None


def certify_file(path, point_names: Sequence[str] | None = None, witness=None, cross_check: bool = False,
                 rounding: bool = True) -> dict:
    """Certify points of a dataset file; see the module docstring.

    Raises ``datasets.DataError`` (a ValueError) on unusable input: unreadable file, unknown point or
    witness, no points.  A point that cannot be certified is not an error: its report says why.
    """
    t0 = time.perf_counter()
    spec = str(path)
    ds = datasets.load_dataset(spec)
    if not ds.points:
        raise datasets.DataError(f"{spec}: the file holds no weight points to certify")
    if point_names:
        missing = [p for p in point_names if p not in ds.points]
        if missing:
            raise datasets.DataError(f"{spec}: no point(s) {', '.join(map(repr, missing))} "
                                     f"(points: {', '.join(ds.points)})")
        names = list(dict.fromkeys(point_names))
        if isinstance(witness, str) and witness in names:
            raise datasets.DataError(f"{spec}: the witness {witness!r} is also a point to certify: a point cannot "
                                     f"be its own witness (name another point of lower loss)")
    else:
        names = [p for p in ds.points if p != "witness"] or list(ds.points)
        if isinstance(witness, str) and names == [witness]:     # the witness named would go unused
            raise datasets.DataError(f"{spec}: no point to certify besides the witness {witness!r} (a point "
                                     f"cannot be its own witness); name the points with --point")
    x = [[datasets.parse_exact(t) for t in row] for row in ds.x_text]
    y = [datasets.parse_exact(t) for t in ds.y_text]
    out: dict[str, Any] = {"file": spec, "dataset": ds.name, "kind": ds.kind, "n": ds.n, "d": ds.d,
                           "fingerprint": ds.fingerprint, "points": {}}
    for name in names:          # every point's loss checked before any is certified
        if (ds.points[name].activation == "relu") != (ds.kind == "regression"):
            raise datasets.DataError(f"{spec}: point {name!r} is a {ds.points[name].activation} network on {ds.kind} "
                                     f"data; certify proves minima of the cross-entropy of sigmoid or tanh networks "
                                     f"on classification data and of the squared error of ReLU networks on regression data")
    for name in names:
        pt = ds.points[name]
        wname, wtheta = _resolve_witness(name, ds, witness)
        if wtheta is not None and len(wtheta) != len(pt.theta_text):
            if witness is not None:         # asked for by name: never dropped silently
                raise datasets.DataError(f"{spec}: the witness {wname!r} has {len(wtheta)} weights and point "
                                         f"{name!r} {len(pt.theta_text)}: not the same network")
            wname, wtheta = None, None
        theta = [datasets.parse_exact(t) for t in pt.theta_text]
        wq = None if wtheta is None else [datasets.parse_exact(str(t)) for t in wtheta]
        if pt.activation == "relu":
            rep = certify_relu(x, y, theta, witness=wq, hidden=pt.hidden)
        else:
            rep = certify_smooth(x, y, theta, hidden=pt.hidden, activation=pt.activation, witness=wq,
                                 rounding=rounding, cross_check=cross_check)
        rep["point"] = name
        rep["witness_name"] = wname
        if pt.claims:
            rep["paper_claims"] = pt.claims
        out["points"][name] = rep
    out["all_certified"] = all(r["certified"] for r in out["points"].values())
    out["certified"] = [n for n, r in out["points"].items() if r["certified"]]
    out["not_certified"] = [n for n, r in out["points"].items() if not r["certified"]]
    out["time_ms"] = 1e3 * (time.perf_counter() - t0)
    return out


def _fmt_point(name: str, r: dict) -> list[str]:
    arch = f"{r.get('d', '?')}-{r.get('h', '?')}-1 {r.get('activation', '?')}"
    head = "CERTIFIED" if r["certified"] else "NOT certified"
    verdict = r.get("verdict", "").replace("_", " ")
    lines = [f"  {name}: {arch}: {head}" + (f" ({verdict})" if verdict != "not certified" else "")]
    if r.get("reason"):
        lines.append(f"      reason: {r['reason']}" + (f" -- {r['detail']}" if r.get("detail") else ""))
    if r["kind"] == "smooth":
        if "loss_enclosure" in r:
            lo, hi = r["loss_enclosure"]
            lines.append(f"      mean cross-entropy in [{lo:.12g}, {hi:.12g}]; unique critical point in the "
                         f"box of radius {r['box_radius']:.0e} around the refined point "
                         f"({r['distance_from_input']:.2g} from the input)")
            lines.append(f"      smallest Hessian eigenvalue on the box >= {r['min_eig_lower_bound']:.4g} "
                         f"(mean loss; {r['min_eig_lower_bound_sum']:.4g} for the summed loss)")
        w = r.get("witness")
        if w:
            lines.append(f"      witness {r.get('witness_name')}: loss <= {w['loss_upper']:.10g}, "
                         f"margin >= {w['margin_lower']:.6g} -> " +
                         ("not global" if r.get("not_global") else "NOT lower"))
        q = r.get("quality")
        if q:
            lines.append(f"      accuracy {q['accuracy']:.4g} vs majority {q['majority_rate']:.4g}; "
                         f"loss vs best constant {q['constant_loss']:.6g}"
                         f" ({'below' if q['loss_below_constant'] else 'not below'}, "
                         f"L - L_const = {q['loss_minus_constant']:.4g})")
            if "delta_star" in q:
                lines.append(f"      outputs in [{min(q['outputs']):.4g}, {max(q['outputs']):.4g}]: decision "
                             f"margin delta* = {q['delta_star']:.4g}, AUC {q['auc']:.4g}")
        ro = r.get("rounding")
        if ro:
            k = ro["coarsest_decimals"]
            lines.append(f"      coarsest data rounding that still certifies: "
                         f"{'none' if k is None else f'{k} decimal(s)'} (data has {ro['data_decimals']})")
        cc = r.get("cross_check")
        if cc:
            lines.append(f"      mpmath.iv cross-check: {cc['detail']}")
    else:
        if "loss" in r:
            lines.append(f"      sum of squared errors = {r['loss']} (best constant "
                         f"{r['quality']['constant_loss']})")
        w = r.get("witness")
        if w:
            lines.append(f"      witness {r.get('witness_name')}: loss {w['loss']}, margin {w['margin']} -> " +
                         ("not global" if r.get("not_global") else "NOT lower"))
        if r.get("descent"):
            dd = r["descent"]
            lines.append(f"      descent: theta + {dd['t']} * ({', '.join(dd['direction'])}) has loss "
                         f"{dd['loss_after']}")
    return [ln for ln in lines if ln]


def format_report(report: dict) -> str:
    """A short human summary of a ``certify_file`` (or single-point) report."""
    if "points" not in report:
        return "\n".join(_fmt_point(report.get("point", "point"), report))
    lines = [f"{report['dataset']} ({report['n']} points, d={report['d']}, {report['kind']}) -- {report['file']}"]
    for name, r in report["points"].items():
        lines.extend(_fmt_point(name, r))
    lines.append(f"certified: {', '.join(report['certified']) or 'none'}; "
                 f"not certified: {', '.join(report['not_certified']) or 'none'} "
                 f"({report['time_ms']:.0f} ms)")
    return "\n".join(lines)
