"""Every quantitative claim of the paper, recomputed: one row per claim with a verdict.

``run_checks()`` returns a list of `Check` rows {claim, paper, computed, verdict, note}; analysis/verify.py
prints them as a table, Markdown or JSON (``badminima verify``).  Verdicts:

  agrees                              the printed claim holds as printed (to the printed digits)
  agrees after the stated correction  it holds once the correction named in the note is applied
                                      (index swap of the printed weights, mean vs summed loss, a sign
                                      typo, the missing hypothesis of Theorem 2, ...)
  disagrees                           it does not hold; the computed value is the finding
  unavailable                         the check could not run (e.g. the certification module is missing)

Disagreements are findings, not failures.  Nothing here is tuned to match a printed number: conventions
are stated (docs/paper.md, data/README.md) and every value is computed from the data files.

What is computed where
  * paper10 (Theorem 1, W0, Remark 2): float64 with engine/core/model.py; 50-digit mpmath (own small
    evaluator below, exact data) for the loss, gradient, Hessian, its eigenvalues and Newton's method;
    the rigorous certificate from engine/certify/smooth.py (interval Krawczyk + positive definiteness).
  * W0 and Remark 2 "finite critical point or drift?": the gradient flow d(theta)/dt = -grad L is followed
    with implicit-Euler (proximal-point) steps whose time step grows geometrically up to t = 1e16 (the
    flow is stiff: Hessian eigenvalues span ~1e-11 .. 0.2).  A drifting flow has max|theta| growing
    without bound while the loss converges; its limit is identified exactly: the saturated points are
    classified with certainty and each remaining group of points shares one output probability k/n (k
    positives out of n), so the limiting loss is sum_groups [k ln(n/k) + (n-k) ln(n/(n-k))] / N.
  * ReLU regression (Props 1-3, Remark 5, Theorem 2): exact rational arithmetic; local minimality by
    engine/certify/relu.py (exact pattern-cone test).
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction

import mpmath
import numpy as np

from badminima.engine.data.datasets import load_dataset, parse_exact
from badminima.engine.core.layout import idx_b, idx_c, idx_v, idx_w
from badminima.engine.core.model import evaluate, hessian, logits
from badminima.engine.core.names import SIGMOID, XENT

AGREES = "agrees"
CORRECTED = "agrees after the stated correction"
DISAGREES = "disagrees"
UNAVAILABLE = "unavailable"
VERDICTS = (AGREES, CORRECTED, DISAGREES, UNAVAILABLE)

DPS = 50                 # mpmath digits
MP_TEXT_DIGITS = 45      # significant digits of an mpf written as text (str() would print only 15)
FLOW_T_MAX = 1e16        # gradient-flow time followed
SATURATED_LOGIT = 12.0   # |z| beyond this: a point the plateau classifies with certainty (p within 6e-6 of 0/1)


@dataclass
class Check:
    """One claim of the paper and what the computation says about it."""
    id: str
    section: str
    claim: str
    paper: str
    computed: str
    verdict: str
    note: str = ""
    values: dict = field(default_factory=dict)     # machine-readable numbers (JSON, tests)


# ---------------------------------------------------------------------------------------- helpers

def _dec(x) -> Decimal:
    """A Decimal of a float / mpf / Fraction / str with enough digits to round correctly to printed text."""
    if isinstance(x, Fraction):
        return Decimal(x.numerator) / Decimal(x.denominator)
    if isinstance(x, mpmath.mpf):
        return Decimal(mpmath.nstr(x, 40, strip_zeros=False, min_fixed=-50, max_fixed=50))
    return Decimal(repr(float(x))) if not isinstance(x, str) else Decimal(x)


def rounds_to(value, printed: str) -> bool:
    """Does `value` round (half-even) to the printed decimal, at the printed number of decimals?"""
    p = Decimal(printed)
    q = Decimal(1).scaleb(p.as_tuple().exponent)
    return _dec(value).quantize(q, rounding=ROUND_HALF_EVEN) == p


def _fmt(x, digits: int = 10) -> str:
    if isinstance(x, mpmath.mpf):
        return mpmath.nstr(x, digits)
    return f"{float(x):.{digits}g}"


def _fmt_list(xs, digits: int = 4) -> str:
    return "(" + ", ".join(f"{float(v):.{digits}g}" for v in xs) + ")"


def _mps(x) -> str:
    """An mpf as text with MP_TEXT_DIGITS significant digits."""
    return mpmath.nstr(x, MP_TEXT_DIGITS)


def _frac(q: Fraction) -> str:
    return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


# ------------------------------------------------------------------- mpmath model (sigmoid, xent)

def to_mpf(v):
    """An mpf (current precision) from an exact decimal / 'p/q' string, a Fraction, an mpf or a float."""
    if isinstance(v, str):
        v = parse_exact(v)
    if isinstance(v, Fraction):
        return mpmath.mpf(v.numerator) / v.denominator
    return mpmath.mpf(v)


def mp_derivatives(theta, X, y, h: int, dps: int = DPS):
    """Mean cross-entropy, gradient (list) and Hessian (mpmath.matrix) of a d-h-1 sigmoid network.

    theta / X / y may hold exact decimal strings, Fractions, mpf or floats (floats are taken exactly).
    """
    with mpmath.workdps(dps):
        th = [to_mpf(t) for t in theta]
        XX = [[to_mpf(c) for c in row] for row in X]
        yy = [to_mpf(t) for t in y]
        d = len(XX[0])
        P = len(th)
        L = mpmath.mpf(0)
        g = [mpmath.mpf(0)] * P
        H = mpmath.zeros(P, P)
        for x, t in zip(XX, yy):
            z = th[idx_c(d, h)]
            J = [mpmath.mpf(0)] * P
            J[idx_c(d, h)] = mpmath.mpf(1)
            second = []                      # (p, q, value) of d2z
            for j in range(h):
                a = th[idx_b(j, d)] + mpmath.fsum(th[idx_w(j, k, d)] * x[k] for k in range(d))
                s = 1 / (1 + mpmath.exp(-a))
                ds = s * (1 - s)
                dds = ds * (1 - 2 * s)
                v = th[idx_v(j, d)]
                z += v * s
                J[idx_v(j, d)] = s
                inner = [(idx_w(j, k, d), x[k]) for k in range(d)] + [(idx_b(j, d), mpmath.mpf(1))]
                for p, fp in inner:
                    J[p] = v * ds * fp
                    second.append((idx_v(j, d), p, ds * fp))
                    second.append((p, idx_v(j, d), ds * fp))
                    for q, fq in inner:
                        second.append((p, q, v * dds * fp * fq))
            prob = 1 / (1 + mpmath.exp(-z))
            L += mpmath.log(1 + mpmath.exp(z)) - t * z
            r, w = prob - t, prob * (1 - prob)
            for p in range(P):
                g[p] += r * J[p]
                for q in range(P):
                    H[p, q] += w * J[p] * J[q]
            for p, q, val in second:
                H[p, q] += r * val
        N = len(XX)
        return L / N, [gi / N for gi in g], H / N


def mp_newton(theta, X, y, h: int, dps: int = DPS, max_iter: int = 40):
    """Newton's method on the gradient at `dps` digits; returns (theta*, ||grad||, steps)."""
    with mpmath.workdps(dps):
        th = mpmath.matrix([to_mpf(t) for t in theta])
        tol = mpmath.mpf(10) ** (-(dps - 8))
        for it in range(max_iter):
            _, g, H = mp_derivatives(list(th), X, y, h, dps)
            gn = mpmath.norm(mpmath.matrix(g))
            if gn < tol:
                return list(th), gn, it
            th = th - mpmath.lu_solve(H, mpmath.matrix(g))
        _, g, _ = mp_derivatives(list(th), X, y, h, dps)
        return list(th), mpmath.norm(mpmath.matrix(g)), max_iter


def mp_eigenvalues(H, dps: int = DPS) -> list:
    """Ascending eigenvalues of a symmetric mpmath matrix."""
    with mpmath.workdps(dps):
        E = mpmath.eigsy(mpmath.matrix(H), eigvals_only=True)
        return sorted(E[i] for i in range(E.rows))


# ------------------------------------------------------------------------- gradient flow, plateaus

def _float_model(X, y, h):
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    d = X.shape[1]

    def lg(th):
        return evaluate(th, X, y, d, h, SIGMOID, XENT)

    def hess(th):
        return hessian(th, X, y, d, h, SIGMOID, XENT)
    return lg, hess


def _prox_step(lg, hess, center: np.ndarray, tau: float) -> np.ndarray:
    """One implicit-Euler step of the gradient flow: argmin L(th) + |th - center|^2 / (2 tau) (damped Newton)."""
    th = center.copy()
    for _ in range(100):
        L, _, g = lg(th)
        G = g + (th - center) / tau
        if not np.all(np.isfinite(G)) or np.linalg.norm(G) < 1e-17:
            break
        w, V = np.linalg.eigh(hess(th) + np.eye(th.size) / tau)
        w = np.maximum(w, 1.0 / tau)               # keep the step a descent direction
        step = -(V @ ((V.T @ G) / w))
        F0 = L + np.sum((th - center) ** 2) / (2 * tau)
        s = 1.0
        while s > 1e-12:
            cand = th + s * step
            if lg(cand)[0] + np.sum((cand - center) ** 2) / (2 * tau) <= F0 + 1e-4 * s * (G @ step):
                break
            s /= 2
        th = cand
        if np.linalg.norm(s * step) < 1e-15 * (1.0 + np.linalg.norm(th)):
            break
    return th


def follow_flow(theta0, X, y, h: int, t_max: float = FLOW_T_MAX, tau0: float = 1.0, growth: float = 1.5) -> dict:
    """Follow the gradient flow of the mean cross-entropy from theta0 up to time t_max.

    Returns the end point, samples (t, loss, max|theta|, ||grad||) at each decade of t, and the status:
      'drifting'  the gradient vanished (< 1e-8) while the weights kept moving in the late half of the flow
                  (log t from sqrt(t_max) to t_max) by more than 1 in max-norm: a plateau at infinity
                  (max|theta| grows like log t);
      'finite'    the flow converged: gradient < 1e-10 and the late half moved less than 1e-3;
      'undecided' otherwise.
    """
    lg, hess = _float_model(X, y, h)
    th = np.array(theta0, dtype=np.float64)
    L0, _, g0 = lg(th)
    samples = [(0.0, float(L0), float(np.abs(th).max()), float(np.linalg.norm(g0)))]
    t, tau, next_decade = 0.0, tau0, 10.0
    late_t, late_theta = math.sqrt(t_max), None
    while t < t_max:
        th = _prox_step(lg, hess, th, tau)
        t += tau
        tau *= growth
        if late_theta is None and t >= late_t:
            late_theta = th.copy()
        if t >= next_decade or t >= t_max:
            L, _, g = lg(th)
            samples.append((t, float(L), float(np.abs(th).max()), float(np.linalg.norm(g))))
            while next_decade <= t:
                next_decade *= 10
    L, acc, g = lg(th)
    gn = float(np.linalg.norm(g))
    late_move = float(np.abs(th - late_theta).max()) if late_theta is not None else float("nan")
    if gn < 1e-8 and late_move > 1.0:
        status = "drifting"
    elif gn < 1e-10 and late_move < 1e-3:
        status = "finite"
    else:
        status = "undecided"
    return {"theta": th, "loss": float(L), "accuracy": float(acc), "grad_norm": gn, "samples": samples, "t": t,
            "distance": float(np.abs(th - np.asarray(theta0, float)).max()), "late_move": late_move,
            "status": status, "drifting": status == "drifting"}


def plateau_limit(theta, X, y, h: int, tol: float = 1e-2) -> dict | None:
    """Identify the limit of a drifting classifier: saturated points and groups sharing one output.

    Points with |logit| > SATURATED_LOGIT must be on their correct side (else None).  The others are
    grouped by logit (within tol); a group with k positives out of n has the plateau logit ln(k/(n-k)),
    which each member must match within tol (else None).  Returns the groups and the exact limiting mean
    loss sum_groups [k ln(n/k) + (n-k) ln(n/(n-k))] / N (mpmath) with a formula string.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    z = logits(np.asarray(theta, np.float64), X, X.shape[1], h, SIGMOID)
    sat = np.abs(z) > SATURATED_LOGIT
    if np.any((z[sat] > 0) != (y[sat] > 0.5)):
        return None
    rest = np.flatnonzero(~sat)
    groups: list[list[int]] = []
    for i in rest[np.argsort(z[rest])]:
        if groups and abs(z[i] - z[groups[-1][-1]]) <= tol:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    out, coef = [], {}
    total = mpmath.mpf(0)
    with mpmath.workdps(30):
        for grp in groups:
            n, k = len(grp), int(sum(y[grp] > 0.5))
            if k in (0, n):
                return None                      # a pure group would saturate; not a plateau value
            zlim = math.log(k / (n - k))
            if np.any(np.abs(z[grp] - zlim) > tol):
                return None
            total += k * mpmath.log(mpmath.mpf(n) / k) + (n - k) * mpmath.log(mpmath.mpf(n) / (n - k))
            out.append({"points": [i + 1 for i in sorted(grp)], "positives": k, "n": n,
                        "p": _frac(Fraction(k, n)), "logit_limit": zlim})
            for arg, c in ((Fraction(n, k), k), (Fraction(n, n - k), n - k)):
                coef[arg] = coef.get(arg, 0) + c
        N = len(y)
        terms = [f"{'' if c == 1 else c} ln({_frac(a)})".strip() for a, c in sorted(coef.items())]
        value = total / N
        return {"groups": out, "saturated": [int(i) + 1 for i in np.flatnonzero(sat)],
                "loss": float(value), "loss_text": mpmath.nstr(value, 15),
                "formula": f"[{' + '.join(terms)}] / {N}"}


# ------------------------------------------------------------------------------ paper10 readings

def literal_theta(point) -> list[str]:
    """The point's printed weights read literally in eq. (1) (no index swap), in layout order."""
    p = point.printed
    return [p["v0"], p["w0,0"], p["w0,1"], p["b0"], p["v1"], p["w1,0"], p["w1,1"], p["b1"], p["c"]]


def _point_stats(theta_text, ds, h=2) -> dict:
    """Mean loss / likelihood / accuracy / gradient norm in float64 and 50-digit mpmath."""
    th = np.array([float(parse_exact(t)) for t in theta_text])
    L, acc, g = evaluate(th, ds.x, ds.y, ds.d, h, SIGMOID, XENT)
    Lmp, gmp, _ = mp_derivatives(theta_text, ds.x_text, ds.y_text, h)
    with mpmath.workdps(DPS):
        like = mpmath.exp(-Lmp)
        gn = mpmath.norm(mpmath.matrix(gmp))
    return {"loss": float(L), "loss_mp": Lmp, "likelihood": like, "accuracy": float(acc),
            "grad_norm": float(np.linalg.norm(g)), "grad_norm_mp": gn, "theta": th}


def _verdict_swap(ok_literal: bool, ok_swapped: bool) -> str:
    return AGREES if ok_literal else (CORRECTED if ok_swapped else DISAGREES)


SWAP_NOTE = ("correction: the printed weights use the transposed index, so printed w0,1 and w1,0 are swapped "
             "(docs/paper.md); loss = MEAN cross-entropy, likelihood = exp(-mean loss)")


def _basic_rows(tag: str, section: str, label: str, point, ds) -> tuple[list[Check], dict]:
    """Loss, likelihood and accuracy rows of one paper10 point (both readings computed)."""
    sw = _point_stats(point.theta_text, ds)
    lit = _point_stats(literal_theta(point), ds)
    cl = point.claims
    rows = []
    ok_l, ok_s = rounds_to(lit["loss_mp"], cl["mean_loss"]), rounds_to(sw["loss_mp"], cl["mean_loss"])
    note = SWAP_NOTE + f"; literal reading gives {_fmt(lit['loss_mp'], 8)}"
    if not ok_s:
        pr = Decimal(cl["mean_loss"])
        seven = _dec(sw["loss_mp"]).quantize(Decimal("1e-7"), rounding=ROUND_HALF_EVEN)
        note = (f"{_fmt(sw['loss_mp'], 10)} rounds to {_dec(sw['loss_mp']).quantize(pr)}, one unit of the last "
                f"printed digit from {pr}" +
                (f" (rounding twice, to {seven} and then half-up, gives the printed digit)"
                 if seven.quantize(pr, rounding=ROUND_HALF_UP) == pr else "") +
                f"; index swap applied; the literal reading gives {_fmt(lit['loss_mp'], 8)}")
    rows.append(Check(f"{tag}.loss", section, f"{label}: mean cross-entropy", cl["mean_loss"],
                      _fmt(sw["loss_mp"], 10), _verdict_swap(ok_l, ok_s), note,
                      {"loss": sw["loss"], "loss_mp": _mps(sw["loss_mp"]), "loss_literal": float(lit["loss_mp"])}))
    ok_l, ok_s = rounds_to(lit["likelihood"], cl["likelihood"]), rounds_to(sw["likelihood"], cl["likelihood"])
    rows.append(Check(f"{tag}.likelihood", section, f"{label}: likelihood exp(-loss)", cl["likelihood"],
                      _fmt(sw["likelihood"], 10), _verdict_swap(ok_l, ok_s), SWAP_NOTE,
                      {"likelihood": float(sw["likelihood"]), "likelihood_literal": float(lit["likelihood"])}))
    ok_l, ok_s = lit["accuracy"] == float(cl["accuracy"]), sw["accuracy"] == float(cl["accuracy"])
    rows.append(Check(f"{tag}.accuracy", section, f"{label}: accuracy (threshold 1/2)", cl["accuracy"],
                      f"{sw['accuracy']:g}", _verdict_swap(ok_l, ok_s),
                      f"literal reading: {lit['accuracy']:g}",
                      {"accuracy": sw["accuracy"], "accuracy_literal": lit["accuracy"]}))
    return rows, {"swapped": sw, "literal": lit}


def _eig_closeness(ev, paper) -> dict:
    r = np.asarray(ev, float) / np.asarray(paper, float)
    return {"mean_abs_log_ratio": float(np.mean(np.abs(np.log(np.abs(r))))),
            "max_rel_diff": float(np.max(np.abs(r - 1)))}


def check_theorem1(ds=None, certify: bool = True) -> list[Check]:
    """Theorem 1 at W_hat: loss, likelihood, accuracy, gradient, Hessian spectrum, exact critical point, minimality."""
    with mpmath.workdps(DPS):
        return _theorem1(ds, certify)


def _theorem1(ds, certify) -> list[Check]:
    ds = ds or load_dataset("paper10")
    pt, w0 = ds.points["W_hat"], ds.points["W0"]
    S = "Theorem 1"
    rows, st = _basic_rows("thm1", S, "W_hat", pt, ds)
    sw, lit = st["swapped"], st["literal"]
    N = ds.n
    # gradient
    rows.append(Check(
        "thm1.gradient", S, "W_hat: gradient = 0", "0",
        f"||grad|| = {sw['grad_norm']:.2g} (mean loss), {N * sw['grad_norm']:.2g} (summed)",
        CORRECTED,
        "correction: the printed W_hat is rounded to 8 digits, so it is only approximately critical; "
        f"the exact critical point theta* lies next to it (below); literal reading: ||grad|| = {lit['grad_norm']:.2g}",
        {"grad_norm": sw["grad_norm"], "grad_norm_mp": float(sw["grad_norm_mp"]),
         "grad_norm_literal": lit["grad_norm"]}))
    # Hessian spectra in several conventions
    paper = [float(v) for v in pt.claims["hessian_eigenvalues_sum_loss"]]
    paper_txt = _fmt_list(paper, 4)
    H64 = hessian(sw["theta"], ds.x, ds.y, ds.d, 2, SIGMOID, XENT)
    ev64 = N * np.linalg.eigvalsh(0.5 * (H64 + H64.T))
    _, _, Hmp = mp_derivatives(pt.theta_text, ds.x_text, ds.y_text, 2)
    evmp = [N * e for e in mp_eigenvalues(Hmp)]
    star, gstar, nsteps = mp_newton(pt.theta_text, ds.x_text, ds.y_text, 2)
    Lstar, _, Hstar = mp_derivatives(star, ds.x_text, ds.y_text, 2)
    evstar = [N * e for e in mp_eigenvalues(Hstar)]
    th_lit = np.array([float(parse_exact(t)) for t in literal_theta(pt)])
    Hl = hessian(th_lit, ds.x, ds.y, ds.d, 2, SIGMOID, XENT)
    ev_lit = N * np.linalg.eigvalsh(0.5 * (Hl + Hl.T))
    conv = {
        "summed loss at W_hat": _eig_closeness(evmp, paper),
        "summed loss at theta*": _eig_closeness(evstar, paper),
        "mean loss at W_hat": _eig_closeness([e / N for e in evmp], paper),
        "summed loss, literal reading": _eig_closeness(ev_lit, paper),
    }
    agree_mp_64 = max(abs(float(a) - b) for a, b in zip(evmp, ev64))
    rows.append(Check(
        "thm1.hessian_w_hat", S, "Hessian eigenvalues at W_hat (summed loss, float64)", paper_txt,
        _fmt_list(ev64, 4), DISAGREES,
        f"max relative difference {conv['summed loss at W_hat']['max_rel_diff']:.0%} (smallest eigenvalue "
        f"{ev64[0]:.4g} vs {paper[0]:.4g}); the paper's 34-digit values are not reproduced in any of the readings tried (below)",
        {"eigenvalues": [float(e) for e in ev64], "paper": paper}))
    rows.append(Check(
        "thm1.hessian_mp", S, "Hessian eigenvalues at W_hat (summed loss, mpmath 50 digits)", paper_txt,
        _fmt_list(evmp, 6), DISAGREES,
        f"float64 and mpmath agree to {agree_mp_64:.1g} (so the discrepancy is not rounding error)",
        {"eigenvalues": [_mps(e) for e in evmp], "max_abs_diff_float64": agree_mp_64}))
    with mpmath.workdps(DPS):
        dist = max(abs(a - to_mpf(t)) for a, t in zip(star, pt.theta_text))
    rows.append(Check(
        "thm1.critical_point", S, "exact critical point theta* near W_hat (Newton, mpmath)", "W_hat itself",
        f"max|theta* - W_hat| = {float(dist):.2g}, ||grad(theta*)|| = {float(gstar):.1g}, "
        f"L(theta*) = {_fmt(Lstar, 12)}",
        CORRECTED, f"{nsteps} Newton steps at 50 digits from the printed W_hat; correction: W_hat is theta* rounded",
        {"theta_star": [_mps(t) for t in star], "distance": float(dist), "grad_norm": float(gstar),
         "loss": _mps(Lstar), "newton_steps": nsteps}))
    rows.append(Check(
        "thm1.hessian_star", S, "Hessian eigenvalues at theta* (summed loss)", paper_txt,
        _fmt_list(evstar, 4), DISAGREES,
        f"max relative difference {conv['summed loss at theta*']['max_rel_diff']:.0%}",
        {"eigenvalues": [_mps(e) for e in evstar]}))
    best = min(conv, key=lambda k: conv[k]["mean_abs_log_ratio"])
    rows.append(Check(
        "thm1.hessian_conventions", S, "which Hessian convention comes closest to the printed spectrum",
        "summed loss (implied)",
        "; ".join(f"{k}: {v['mean_abs_log_ratio']:.3f}" for k, v in conv.items()) + " (mean |ln ratio|)",
        DISAGREES,
        f"closest: {best}, still off by {conv[best]['max_rel_diff']:.0%} in some eigenvalue; mean-loss eigenvalues "
        f"are 1/{N} of the summed ones; the literal reading is not a critical point "
        f"(||grad|| = {lit['grad_norm']:.2g})",
        {"conventions": conv, "closest": best, "literal_eigenvalues": [float(e) for e in ev_lit]}))
    lam = evstar[0]
    fl, _ = _paper10_flow("W_hat")
    to_star = float(np.abs(fl["theta"] - np.array([float(t) for t in star])).max())
    rows.append(Check(
        "thm1.local_minimum", S, "W_hat is a (strict) local minimum", "all 9 eigenvalues > 0",
        f"at theta*: gradient {float(gstar):.1g}, all 9 eigenvalues > 0 (smallest {_fmt(lam, 4)})",
        CORRECTED if lam > 0 else DISAGREES,
        f"the minimum is at theta*, within the printed rounding of W_hat; the gradient flow from W_hat is "
        f"{fl['status']} and ends {to_star:.1g} from theta* (contrast W0 and Remark 2 below)",
        {"min_eigenvalue_sum": float(lam), "flow_status": fl["status"], "flow_to_star": to_star}))
    rows.append(_certify_theorem1(ds, pt, w0) if certify else Check(
        "thm1.certificate", S, "rigorous certificate (interval arithmetic)", "-", "skipped", UNAVAILABLE,
        "skipped on request"))
    w0_stats = _point_stats(w0.theta_text, ds)
    lower = w0_stats["loss_mp"] < Lstar
    rows.append(Check(
        "thm1.not_global", S, "W_hat is not a global minimum (a point of lower loss)", "W0: loss 0.381913",
        f"L(W0) = {_fmt(w0_stats['loss_mp'], 8)} < L(theta*) = {_fmt(Lstar, 8)}",
        CORRECTED if lower else DISAGREES, "with the index swap for both points",
        {"loss_w0": float(w0_stats["loss_mp"]), "loss_star": float(Lstar)}))
    return rows


def _certify_theorem1(ds, pt, w0) -> Check:
    S = "Theorem 1"
    try:
        from badminima.engine.certify.smooth import certify_smooth
    except Exception as e:  # noqa: BLE001 - optional dependency (python-flint) or module not present
        return Check("thm1.certificate", S, "rigorous certificate (interval arithmetic)", "local min, not global",
                     "certification unavailable", UNAVAILABLE, f"{type(e).__name__}: {e}")
    rep = certify_smooth(ds.x_text, ds.y_text, pt.theta_text, witness=w0.theta_text, cross_check=True)
    if rep.get("certified"):
        lo, hi = rep["loss_enclosure"]
        return Check(
            "thm1.certificate", S, "rigorous certificate: strict local minimum, not global",
            "local min, not global",
            f"certified: unique critical point in a box of radius {rep['box_radius']:.0e} around theta*, Hessian "
            f"(summed) >= {rep['min_eig_lower_bound_sum']:.3g} on the box, loss in [{lo:.12f}, {hi:.12f}], "
            f"W0 lower by >= {rep['witness']['margin_lower']:.4f}",
            CORRECTED, "engine/certify/smooth.py (Arb Krawczyk + Gershgorin, mpmath.iv cross-check); "
                       "correction: the minimum is at theta*, not at the rounded W_hat",
            {"box_radius": rep["box_radius"], "min_eig_lower_bound_sum": rep["min_eig_lower_bound_sum"],
             "loss_enclosure": [lo, hi], "witness_margin": rep["witness"]["margin_lower"]})
    return Check("thm1.certificate", S, "rigorous certificate: strict local minimum, not global",
                 "local min, not global", f"not certified: {rep.get('reason')}", DISAGREES,
                 str(rep.get("detail", "")), {"report": {k: v for k, v in rep.items() if k != "center"}})


@functools.lru_cache(maxsize=8)
def _paper10_flow(name: str) -> tuple[dict, dict | None]:
    """The gradient flow from a paper10 point and, if it drifts, its identified plateau limit (cached)."""
    ds = load_dataset("paper10")
    pt = ds.points[name]
    fl = follow_flow(np.asarray(pt.theta, float), ds.x, ds.y, pt.hidden)
    lim = plateau_limit(fl["theta"], ds.x, ds.y, pt.hidden) if fl["drifting"] else None
    return fl, lim


def _flow_row(tag, section, name, claim, paper_text) -> Check:
    fl, lim = _paper10_flow(name)
    samples = fl["samples"]
    traj = []
    for want in (0.0, 1e4, 1e8, 1e12, 1e16):
        s = min(samples, key=lambda q: abs(math.log10(q[0] + 1.0) - math.log10(want + 1.0)))
        item = f"t={s[0]:.0e}: max|theta| {s[2]:.4g}, loss {s[1]:.10f}"
        if item not in traj:
            traj.append(item)
    if fl["status"] == "drifting":
        limit = f"{lim['loss']:.12f}" if lim else "not identified"
        computed = (f"plateau drifting to infinity: loss -> {limit} (flow at t={fl['t']:.0e}: {fl['loss']:.12f}); "
                    f"max|theta| {samples[0][2]:.4g} -> {samples[-1][2]:.4g}, ||grad|| -> {fl['grad_norm']:.0e}")
        if lim:
            groups = "; ".join(f"x{','.join(map(str, g['points']))} at p = {g['p']}" for g in lim["groups"])
            note = (f"limit: {', '.join(f'x{i}' for i in lim['saturated'])} classified with certainty, {groups}; "
                    f"limiting loss = {lim['formula']}")
        else:
            note = "the limit's structure was not identified"
    elif fl["status"] == "finite":
        computed = f"finite critical point: the flow settles {fl['distance']:.2g} away, loss {fl['loss']:.12f}"
        note = ""
    else:
        computed = f"undecided: at t={fl['t']:.0e} ||grad|| = {fl['grad_norm']:.1e}, loss {fl['loss']:.12f}"
        note = ""
    note += "; gradient flow by implicit-Euler steps, t up to 1e16: " + "; ".join(traj)
    values = {"status": fl["status"], "flow_loss": fl["loss"], "flow_time": fl["t"], "late_move": fl["late_move"],
              "max_theta_start": samples[0][2], "max_theta_end": samples[-1][2], "grad_norm_end": fl["grad_norm"],
              "limit": lim, "samples": samples}
    return Check(f"{tag}.flow", section, claim, paper_text, computed, "", note.lstrip("; "), values)


def check_w0(ds=None) -> list[Check]:
    """W0 (Theorem 1's witness, Remark 1): loss, likelihood, accuracy; drifting plateau, its limiting loss."""
    ds = ds or load_dataset("paper10")
    S = "Theorem 1 / Remark 1"
    rows, _ = _basic_rows("w0", S, "W0", ds.points["W0"], ds)
    row = _flow_row("w0", S, "W0", "W0 is not a minimum: it drifts to infinity (Remark 1)", "not a minimum, drifts")
    row.verdict = CORRECTED if row.values["status"] == "drifting" else DISAGREES
    row.note = "with the index swap; " + row.note
    rows.append(row)
    return rows


def check_remark2(ds=None) -> list[Check]:
    """Remark 2's point: loss, likelihood, accuracy; what the flow does there (finite point or plateau)."""
    ds = ds or load_dataset("paper10")
    S = "Remark 2"
    rows, _ = _basic_rows("remark2", S, "Remark 2 point", ds.points["remark2"], ds)
    row = _flow_row("remark2", S, "remark2", "Remark 2 point: 'yet another suboptimal point of convergence'",
                    "suboptimal point of convergence")
    lim, (_, w0_lim) = row.values["limit"], _paper10_flow("W0")
    status = row.values["status"]
    subopt = lim is not None and w0_lim is not None and lim["loss"] > w0_lim["loss"]
    row.verdict = CORRECTED if status == "drifting" and subopt else DISAGREES
    kind = {"drifting": "training stalls on a plateau drifting to infinity, not at a finite critical point",
            "finite": "a finite critical point", "undecided": "undecided"}[status]
    row.note = (f"{kind}; suboptimal: its limiting loss is above W0's limit {w0_lim['loss']:.9f}; " if subopt else
                f"{kind}; ") + "with the index swap; " + row.note
    rows.append(row)
    return rows


# ------------------------------------------------------------------------------ ReLU regression

def _relu_loss(xs, ys, th) -> Fraction:
    """Exact sum of squared errors of a 1-h-1 ReLU net (layout v, w, b per unit, then c)."""
    h = (len(th) - 1) // 3
    tot = Fraction(0)
    for x, y in zip(xs, ys):
        f = th[-1] + sum((th[3 * j] * max(th[3 * j + 1] * x + th[3 * j + 2], Fraction(0)) for j in range(h)),
                         Fraction(0))
        tot += (f - y) ** 2
    return tot


def _relu_data(ds):
    return [parse_exact(r[0]) for r in ds.x_text], [parse_exact(t) for t in ds.y_text]


def _theta_q(point):
    return [parse_exact(t) for t in point.theta_text]


def _certify_relu_row(id_, section, claim, paper, ds, point, witness=None, corrected=False, note=""):
    """Local minimality of a ReLU point by the exact test of engine/certify/relu.py."""
    try:
        from badminima.engine.certify.relu import certify_relu
    except Exception as e:  # noqa: BLE001
        return Check(id_, section, claim, paper, "certification unavailable", UNAVAILABLE, f"{type(e).__name__}: {e}")
    rep = certify_relu([r[0] for r in ds.x_text], list(ds.y_text), list(point.theta_text),
                       witness=None if witness is None else list(witness.theta_text))
    if rep.get("local_minimum"):
        comp = "local minimum (exact pattern-cone test" + (", not strict)" if rep.get("strict") is False else ")")
        if witness is not None:
            comp += f"; witness loss {rep['witness']['loss']} < {rep['loss']}" if rep.get("not_global") \
                else f"; witness NOT lower ({rep['witness']['loss']} vs {rep['loss']})"
        ok = rep.get("not_global") if witness is not None else True
        verdict = (CORRECTED if corrected else AGREES) if ok else DISAGREES
    elif rep.get("local_minimum") is False:
        desc = rep.get("descent", {})
        comp = (f"NOT a local minimum: {rep.get('detail')}; loss {rep['loss']} -> {desc.get('loss_after')} "
                f"along an exact descent direction")
        verdict = DISAGREES
    else:
        comp, verdict = f"undecided: {rep.get('detail')}", DISAGREES
    return Check(id_, section, claim, paper, comp, verdict, note,
                 {"loss": rep.get("loss"), "local_minimum": rep.get("local_minimum"),
                  "not_global": rep.get("not_global"), "verdict": rep.get("verdict")})


def check_prop1(ds=None) -> list[Check]:
    """Proposition 1 and Remark 5 (D1, one ReLU unit)."""
    ds = ds or load_dataset("relu_d1")
    S = "Prop. 1 / Remark 5"
    xs, ys = _relu_data(ds)
    p, wit = ds.points["prop1"], ds.points["prop1_witness"]
    Lp, Lw = _relu_loss(xs, ys, _theta_q(p)), _relu_loss(xs, ys, _theta_q(wit))
    terms_w = [(_relu_loss([x], [y], _theta_q(wit))) for x, y in zip(xs, ys)]
    rows = [
        Check("prop1.loss", S, "L(1, -3, 1, 0) (order w, b, v, c)", "18", _frac(Lp),
              AGREES if Lp == 18 else DISAGREES, "exact rational sum of squared errors",
              {"loss": str(Lp)}),
        Check("prop1.witness_loss", S, "L(-7, -4, 1, 0) = 4+1+0+9+0", "14",
              f"{_frac(Lw)} = " + "+".join(_frac(t) for t in terms_w),
              AGREES if Lw == 14 and [int(t) for t in terms_w] == [4, 1, 0, 9, 0] else DISAGREES, "exact",
              {"loss": str(Lw), "terms": [str(t) for t in terms_w]}),
        _certify_relu_row("prop1.local_minimum", S, "(1, -3, 1, 0) is a local minimum, not global", "local min, 14 < 18",
                          ds, p, witness=wit),
    ]
    # Remark 5: the rescaling curve and nothing else
    curve = {str(t): _relu_loss(xs, ys, [Fraction(1) / t, t, -3 * t, Fraction(0)])
             for t in (Fraction(1, 2), Fraction(2), Fraction(3))}
    # near the point, L = 18 + |A_S (d_alpha, d_beta, d_c)|^2 on each activation pattern S of x3 (on the kink);
    # A_S of full column rank 3 means L = 18 only where (alpha, beta, c) = (w v, b v, c) is unchanged: the curve
    dets = {}
    for x3_active in (True, False):
        A = []
        for x, (on) in zip(xs, [True, True, x3_active, False, False]):
            A.append([x, Fraction(1), Fraction(1)] if on else [Fraction(0), Fraction(0), Fraction(1)])
        G = [[sum(A[i][a] * A[i][b] for i in range(len(A))) for b in range(3)] for a in range(3)]
        det = (G[0][0] * (G[1][1] * G[2][2] - G[1][2] * G[2][1]) - G[0][1] * (G[1][0] * G[2][2] - G[1][2] * G[2][0])
               + G[0][2] * (G[1][0] * G[2][1] - G[1][1] * G[2][0]))
        dets["x3 active" if x3_active else "x3 inactive"] = det
    ok = all(v == 18 for v in curve.values()) and all(d > 0 for d in dets.values())
    rows.append(Check(
        "remark5.manifold", S, "minimum not strict: lies on a 1-D manifold with L = 18", "1-D manifold",
        "L(t, -3t, 1/t, 0) = 18 for t = " + ", ".join(curve) + "; both activation patterns of x3 (on the kink) "
        "give a positive definite quadratic in (w v, b v, c) (Gram determinants "
        + ", ".join(_frac(d) for d in dets.values()) + ")",
        AGREES if ok else DISAGREES,
        "so near the point L = 18 exactly on the rescaling curve w v = 1, b v = -3, c = 0 (1-D) and L > 18 off it",
        {"curve": {k: str(v) for k, v in curve.items()}, "gram_dets": {k: str(v) for k, v in dets.items()}}))
    return rows


def check_prop2(ds=None) -> list[Check]:
    """Proposition 2 (D2, two units), as printed and with w2 = +1."""
    ds = ds or load_dataset("relu_d2")
    S = "Prop. 2"
    xs, ys = _relu_data(ds)
    P = ds.points
    Lg_p = _relu_loss(xs, ys, _theta_q(P["prop2_global_as_printed"]))
    Lg = _relu_loss(xs, ys, _theta_q(P["prop2_global"]))
    Ll = _relu_loss(xs, ys, _theta_q(P["prop2_local"]))
    th = _theta_q(P["prop2_global"])
    blind = all(th[3 * j + 1] * xs[2] + th[3 * j + 2] < 0 for j in range(2))
    rows = [
        Check("prop2.global_printed", S, "w=(-5,-1), b=(1,-8), v=(1,-1), c=-1 fits perfectly (as printed)", "0",
              f"sum of squares {_frac(Lg_p)}", AGREES if Lg_p == 0 else DISAGREES,
              "as printed unit 2 (w2 = -1, b2 = -8) is dead on all data", {"loss": str(Lg_p)}),
        Check("prop2.global", S, "... with w2 = +1: perfect fit, global minimum", "0", f"sum of squares {_frac(Lg)}",
              CORRECTED if Lg == 0 else DISAGREES, "correction: printed w2 = -1 is a typo for +1 (data/README.md)",
              {"loss": str(Lg)}),
        Check("prop2.blind_spot", S, "the global solution has a blind spot: all units off at x3", "all off at x3 = 1",
              "all units inactive at x3" if blind else "some unit active at x3", CORRECTED if blind else DISAGREES,
              "with w2 = +1", {"blind": blind}),
        _certify_relu_row("prop2.local_printed", S, "w=(-3,-1), b=(13/3,-10), v=(1,-1), c=-3 is a local minimum "
                          "(as printed)", "suboptimal local min", ds, P["prop2_local_as_printed"]),
        _certify_relu_row("prop2.local", S, "... with w2 = +1: a suboptimal local minimum", "suboptimal local min",
                          ds, P["prop2_local"], witness=P["prop2_global"], corrected=True,
                          note=f"correction: w2 = +1; its sum of squares is {_frac(Ll)} (the paper prints none)"),
    ]
    return rows


def check_prop3(ds=None) -> list[Check]:
    """Proposition 3 (D3, three units): two local minima, the first better."""
    ds = ds or load_dataset("relu_d3")
    S = "Prop. 3"
    xs, ys = _relu_data(ds)
    b, w = ds.points["prop3_better"], ds.points["prop3_worse"]
    Lb, Lw = _relu_loss(xs, ys, _theta_q(b)), _relu_loss(xs, ys, _theta_q(w))
    return [
        _certify_relu_row("prop3.better", S, "w=(-1.5,-1.5,1.5), b=(1,0,-79/6), v=(1,1,-1), c=-1 is a local minimum",
                          "local min", ds, b, note=f"sum of squares {_frac(Lb)}; b3 = -13 - 1/6 (the extracted text garbles it as '-13 - 61')"),
        _certify_relu_row("prop3.worse", S, "w=(-2,1,1), b=(11/3,-10,-11), v=(1,-1,-1), c=-3 is a local minimum",
                          "local min", ds, w, note=f"sum of squares {_frac(Lw)}"),
        Check("prop3.order", S, "the first is better than the second", "better",
              f"{_frac(Lb)} < {_frac(Lw)}" if Lb < Lw else f"{_frac(Lb)} >= {_frac(Lw)}",
              AGREES if Lb < Lw else DISAGREES, "exact sums of squared errors", {"better": str(Lb), "worse": str(Lw)}),
    ]


# ------------------------------------------------------------------------------ Theorem 2

def deep_relu_output(layers, x) -> Fraction:
    """Exact output of a ReLU net given as [(W, b), ...] (W rows of Fractions); ReLU on all but the last layer."""
    h = list(x)
    for n, (W, bvec) in enumerate(layers):
        a = [sum((wi * hi for wi, hi in zip(row, h)), Fraction(0)) + bi for row, bi in zip(W, bvec)]
        h = a if n == len(layers) - 1 else [max(ai, Fraction(0)) for ai in a]
    return h[0]


def deep_relu_loss(layers, X, Y) -> Fraction:
    """Exact sum of squared errors (eq. (3))."""
    return sum(((deep_relu_output(layers, x) - y) ** 2 for x, y in zip(X, Y)), Fraction(0))


def _mean(vals) -> Fraction:
    vals = list(vals)
    return sum(vals, Fraction(0)) / len(vals)


def theorem2_construction(X, Y, k: int, m1: int = 3, shift: bool = False):
    """The proof's better point theta-hat for a decent dataset (X rows of Fractions, Y Fractions), k layers.

    Returns (layers, info).  shift=False is the construction exactly as printed (W_n = I, b_n = 0 for
    n = 3..k, so the signal passes the ReLU of layers 2..k-1 unchanged only if it is >= 0); shift=True adds
    C = max(0, -mu, -nu) to the first bias of layer 2 and subtracts it in the output bias (the correction).
    """
    d = len(X[0])
    ybar = _mean(Y)
    r = next((i for i in range(len(X)) if _mean(Y[p] for p in range(len(X)) if X[p] == X[i]) != ybar), None)
    if r is None:
        raise ValueError("dataset is not decent")
    others = [p for p in range(len(X)) if X[p] != X[r]]
    nu = _mean(Y[p] for p in range(len(X)) if X[p] == X[r])
    mu = _mean(Y[p] for p in others)
    # a hyperplane through x_r missing every other point: v = (1, q) (d = 2) with v.(x_s - x_r) != 0
    for q in (Fraction(1, 7), Fraction(2, 13), Fraction(3, 17), Fraction(5, 23)):
        v = [Fraction(1)] + [q ** (i + 1) for i in range(d - 1)]
        gaps = [abs(sum(vi * (a - b) for vi, a, b in zip(v, X[p], X[r]))) for p in others]
        if all(g > 0 for g in gaps):
            break
    scale = 3 / min(gaps) if gaps else Fraction(1)       # |v.(x_s - x_r)| >= 3 > 2
    v = [vi * scale for vi in v]
    gamma = sum(vi * xi for vi, xi in zip(v, X[r]))
    W1 = [v, [2 * vi for vi in v], v] + [[Fraction(0)] * d for _ in range(m1 - 3)]
    b1 = [1 - gamma, -2 * gamma, -gamma - 1] + [Fraction(0)] * (m1 - 3)
    row = [nu - mu, mu - nu, nu - mu] + [Fraction(0)] * (m1 - 3)
    C = max(Fraction(0), -mu, -nu) if shift else Fraction(0)
    if k == 2:
        layers = [(W1, b1), ([row], [mu])]
    else:
        W2 = [row] + [[Fraction(0)] * m1 for _ in range(m1 - 1)]
        b2 = [mu + C] + [Fraction(0)] * (m1 - 1)
        layers = [(W1, b1), (W2, b2)]
        eye = [[Fraction(int(i == j)) for j in range(m1)] for i in range(m1)]
        for _ in range(3, k):
            layers.append((eye, [Fraction(0)] * m1))
        layers.append(([eye[0]], [-C]))
    return layers, {"r": r, "mu": mu, "nu": nu, "ybar": ybar, "v": v, "shift": C}


def _dead_margin(layer, X) -> Fraction:
    """min over points and units of -(W x + b): > 0 iff the layer is inactive on every point."""
    W, bvec = layer
    return min(-(sum((wi * xi for wi, xi in zip(row, x)), Fraction(0)) + bi) for x in X for row, bi in zip(W, bvec))


def _perturbation_min(layers, X, Y, radius=1e-3, samples=400, seed=0) -> float:
    """Smallest L(theta + e) - L(theta) over random perturbations with |e| <= radius (float64 cross-check)."""
    rng = np.random.default_rng(seed)
    Xf = np.array([[float(v) for v in x] for x in X])
    Yf = np.array([float(v) for v in Y])

    def loss(Ls):
        h = Xf
        for n, (W, bb) in enumerate(Ls):
            h = h @ W.T + bb
            if n < len(Ls) - 1:
                h = np.maximum(h, 0.0)
        return float(np.sum((h[:, 0] - Yf) ** 2))
    base = [(np.array([[float(v) for v in r] for r in W]), np.array([float(v) for v in b])) for W, b in layers]
    L0 = loss(base)
    worst = np.inf
    for _ in range(samples):
        pert = [(W + rng.uniform(-radius, radius, W.shape), b + rng.uniform(-radius, radius, b.shape)) for W, b in base]
        worst = min(worst, loss(pert) - L0)
    return worst


def check_theorem2() -> list[Check]:
    """Theorem 2 on two instances: a 1-hidden-layer (k = 2) and a 2-hidden-layer (k = 3) ReLU regression."""
    S = "Theorem 2"
    rows = []
    d1 = load_dataset("relu_d1")
    X = [[parse_exact(r[0])] for r in d1.x_text]
    Y = [parse_exact(t) for t in d1.y_text]
    ybar = _mean(Y)
    const = sum(((y - ybar) ** 2 for y in Y), Fraction(0))
    W1 = [[Fraction(1)], [Fraction(1, 2)], [Fraction(-1)]]
    b1 = [Fraction(-6), Fraction(-3), Fraction(-2)]
    margin = _dead_margin((W1, b1), X)
    # ---- k = 2 (one hidden layer, the engine's 1-h-1 ReLU layout): certify_relu decides exactly
    v = [Fraction(1), Fraction(-2), Fraction(3)]

    def flat(c):
        return [str(t) for j in range(3) for t in (v[j], W1[j][0], b1[j])] + [str(c)]
    inst = f"D1 (data/relu_d1), 1-3-1 ReLU, first layer w=(1,1/2,-1), b=(-6,-3,-2): dead on all points (margin {margin})"
    try:
        from badminima.engine.certify.relu import certify_relu
        xs = [r[0] for r in d1.x_text]
        bad = certify_relu(xs, list(d1.y_text), flat(0))
        good = certify_relu(xs, list(d1.y_text), flat(ybar))
        rows.append(Check(
            "thm2.i_as_stated", S, "(i) a point with a dead layer is a local minimum (k = 2, output bias c = 0)",
            "local minimum",
            ("local minimum" if bad.get("local_minimum") else
             f"NOT a local minimum: constant output 0 != label mean {_frac(ybar)}; "
             f"{bad.get('detail')}, loss {bad['loss']} -> {bad.get('descent', {}).get('loss_after')}"),
            AGREES if bad.get("local_minimum") else DISAGREES,
            inst + "; the hypothesis alone does not fix the output, and dL/dc = 2 sum (c - y_i) != 0 unless c is the mean",
            {"local_minimum": bad.get("local_minimum"), "loss": bad["loss"]}))
        rows.append(Check(
            "thm2.i_corrected", S, "(i) ... with the output at the label mean (Corollary 1: 'after training')",
            "local minimum",
            ("local minimum (exact test; not strict), loss " + good["loss"] + " = sum (y - mean)^2"
             if good.get("local_minimum") else f"not a local minimum: {good.get('detail')}"),
            CORRECTED if good.get("local_minimum") and parse_exact(good["loss"]) == const else DISAGREES,
            "correction: add the hypothesis that the constant output equals the label mean",
            {"local_minimum": good.get("local_minimum"), "loss": good["loss"], "mean": str(ybar)}))
    except ImportError as e:
        rows.append(Check("thm2.i_as_stated", S, "(i) dead layer => local minimum", "local minimum",
                          "certification unavailable", UNAVAILABLE, str(e)))
    # ---- (ii) the proof's construction, k = 2
    layers, info = theorem2_construction(X, Y, k=2)
    Lhat = deep_relu_loss(layers, X, Y)
    outs = [deep_relu_output(layers, x) for x in X]
    exact_outs = all(o == (info["nu"] if X[i] == X[info["r"]] else info["mu"]) for i, o in enumerate(outs))
    rows.append(Check(
        "thm2.ii_k2", S, "(ii) >= 3 first-layer units, decent data: the proof's point is strictly better (k = 2)",
        "L(theta-hat) < L(theta)",
        f"L(theta-hat) = {_frac(Lhat)} < {_frac(const)} = sum (y - mean)^2" if Lhat < const else
        f"L(theta-hat) = {_frac(Lhat)} >= {_frac(const)}",
        AGREES if Lhat < const and exact_outs else DISAGREES,
        f"r = x{info['r'] + 1}, mu = {_frac(info['mu'])}, nu = {_frac(info['nu'])}, v = {_frac(info['v'][0])}; "
        f"outputs are exactly nu at x_r and mu elsewhere: {exact_outs}",
        {"loss_hat": str(Lhat), "loss_dead": str(const), "outputs": [str(o) for o in outs]}))
    # ---- k = 3 (two hidden layers): dead first layer, output = W3 relu(b2) + b3
    W2 = [[Fraction(1), Fraction(2), Fraction(-1)], [Fraction(0), Fraction(1), Fraction(1)]]
    b2 = [Fraction(1, 2), Fraction(-1)]
    W3 = [[Fraction(2), Fraction(3)]]

    def net(b3):
        return [(W1, b1), (W2, b2), (W3, [b3])]
    const_out = deep_relu_output(net(Fraction(0)), X[0])
    Lbad = deep_relu_loss(net(Fraction(0)), X, Y)
    step = net(-(const_out - ybar) / 2)
    Lstep = deep_relu_loss(step, X, Y)
    good = net(ybar - const_out)
    Lgood = deep_relu_loss(good, X, Y)
    pert = _perturbation_min(good, X, Y)
    inst3 = (f"1-3-2-1 ReLU net on D1, first layer as above (dead, margin {margin}), W2 = [[1,2,-1],[0,1,1]], "
             "b2 = (1/2,-1), W3 = (2,3): output W3 relu(b2) + b3 = 1 + b3 on every point")
    rows.append(Check(
        "thm2.i_k3_as_stated", S, "(i) dead first layer, k = 3, output bias b3 = 0: a local minimum", "local minimum",
        f"NOT a local minimum: constant output {_frac(const_out)} != mean {_frac(ybar)}; loss {_frac(Lbad)} drops "
        f"to {_frac(Lstep)} when b3 moves halfway to the mean",
        AGREES if not Lstep < Lbad else DISAGREES, inst3,
        {"loss_bias0": str(Lbad), "loss_step": str(Lstep)}))
    rows.append(Check(
        "thm2.i_k3_corrected", S, "(i) ... k = 3 with the constant output at the label mean", "local minimum",
        f"local minimum: loss {_frac(Lgood)} = sum (y - mean)^2; smallest loss change over 400 random perturbations "
        f"of size 1e-3: {pert:.1e}",
        CORRECTED if Lgood == const and pert >= -1e-12 else DISAGREES,
        f"proof: while the first layer stays dead (margin {margin} > 0 is an open condition) the output is a "
        "constant M, and L = N (M - mean)^2 + sum (y - mean)^2 >= L(theta); the perturbations cross-check it",
        {"loss_mean": str(Lgood), "perturbation_min": pert}))
    # ---- Lemma 2: a dead first layer has zero gradient (exactly: the loss does not move at all nearby)
    delta = margin / (2 * (1 + max(abs(x[0]) for x in X)))
    moved = []
    for sign in (1, -1):
        for j in range(len(W1)):
            for kind in ("w", "b"):
                W1p = [list(r) for r in W1]
                b1p = list(b1)
                if kind == "w":
                    W1p[j][0] += sign * delta
                else:
                    b1p[j] += sign * delta
                moved.append(deep_relu_loss([(W1p, b1p)] + net(Fraction(0))[1:], X, Y) - Lbad)
    rows.append(Check(
        "thm2.lemma2", S, "Lemma 2: local optimization does not change a dead first layer (zero gradient)",
        "W1, b1 unchanged",
        f"moving any single W1 / b1 entry by +-{_frac(delta)} changes the loss by exactly 0 "
        f"({len(moved)} moves, 1-3-2-1 instance)",
        AGREES if all(m == 0 for m in moved) else DISAGREES, "exact rational losses",
        {"moves": len(moved), "nonzero": sum(m != 0 for m in moved)}))
    # ---- (ii) for k = 3: the construction as printed needs non-negative mu, nu (ReLU of layer 2)
    Yneg = [y - 10 for y in Y]
    const_neg = sum(((y - _mean(Yneg)) ** 2 for y in Yneg), Fraction(0))
    lit, info = theorem2_construction(X, Yneg, k=3)
    fix, _ = theorem2_construction(X, Yneg, k=3, shift=True)
    Llit, Lfix = deep_relu_loss(lit, X, Yneg), deep_relu_loss(fix, X, Yneg)
    rows.append(Check(
        "thm2.ii_k3_printed", S, "(ii) the proof's point for k = 3 (W_n = I, b_n = 0 for n >= 3), as printed",
        "L(theta-hat) < L(theta)",
        f"L(theta-hat) = {_frac(Llit)} vs {_frac(const_neg)} for the dead-layer point",
        AGREES if Llit < const_neg else DISAGREES,
        f"data D1 with labels - 10 (decent): mu = {_frac(info['mu'])}, nu = {_frac(info['nu'])} < 0, and the ReLU of "
        "layer 2 outputs relu(mu) = relu(nu) = 0; the printed construction only works when mu, nu >= 0",
        {"loss_hat": str(Llit), "loss_dead": str(const_neg)}))
    rows.append(Check(
        "thm2.ii_k3_corrected", S, "(ii) ... with a shift C = max(0, -mu, -nu) in b2 and -C in the output bias",
        "L(theta-hat) < L(theta)",
        f"L(theta-hat) = {_frac(Lfix)} < {_frac(const_neg)}" if Lfix < const_neg else f"{_frac(Lfix)} >= {_frac(const_neg)}",
        CORRECTED if Lfix < const_neg else DISAGREES,
        "correction: keep the signal positive through the hidden ReLUs; claim (ii) itself holds",
        {"loss_hat": str(Lfix), "loss_dead": str(const_neg)}))
    return rows


# ------------------------------------------------------------------------------ all checks

SECTIONS = {
    "theorem1": check_theorem1,
    "w0": check_w0,
    "remark2": check_remark2,
    "prop1": check_prop1,
    "prop2": check_prop2,
    "prop3": check_prop3,
    "theorem2": check_theorem2,
}


def run_checks(sections=None, certify: bool = True, echo=None) -> list[Check]:
    """Run the checks of the given sections (default all) in paper order."""
    out = []
    for name in sections or SECTIONS:
        t0 = time.perf_counter()
        fn = SECTIONS[name]
        out.extend(fn(certify=certify) if name == "theorem1" else fn())
        if echo:
            echo(f"  {name}: {time.perf_counter() - t0:.1f} s")
    return out


def summary(checks: list[Check]) -> dict[str, int]:
    """How many checks have each verdict."""
    return {v: sum(c.verdict == v for c in checks) for v in VERDICTS}


__all__ = ["Check", "VERDICTS", "AGREES", "CORRECTED", "DISAGREES", "UNAVAILABLE", "run_checks", "summary",
           "follow_flow", "plateau_limit", "mp_derivatives",
           "mp_newton", "mp_eigenvalues", "rounds_to", "literal_theta", "deep_relu_output", "deep_relu_loss",
           "theorem2_construction", "SECTIONS"]
