"""Exact local-minimality test for one-hidden-layer ReLU regression on 1-D data.

    f(x) = sum_j v_j relu(w_j x + b_j) + c,        L(theta) = sum_i (f(x_i) - y_i)^2,

theta in the layout of ``engine/core/layout.py`` (d = 1): (v_0, w_0, b_0, v_1, w_1, b_1, ..., c).
All arithmetic is in exact rationals (``fractions.Fraction``); nothing is rounded.

Why the test is exact (and complete)
------------------------------------
Let theta0 be the point and assume every output weight v_j is non-zero (units with v_j = 0 are treated
at the end).

1. *Reduction to (alpha, beta, c).*  ReLU is positively homogeneous, so for t_j > 0 the rescaling
   (w_j, b_j, v_j) -> (t_j w_j, t_j b_j, v_j / t_j) leaves f unchanged.  Near theta0 the sign s_j of v_j
   is fixed, so L(w, b, v, c) = L(w v / v0, b v / v0, v0, c) (componentwise, t_j = v_j / v0_j > 0).
   Hence theta0 is a local minimum of L iff it is a local minimum of L restricted to v = v0.  On that
   slice, (alpha_j, beta_j) = v0_j (w_j, b_j) is a linear bijection, and
        unit_j(x) = v_j relu(w_j x + b_j) = (alpha_j x + beta_j) * [ s_j (alpha_j x + beta_j) > 0 ].
   So the question is whether p0 = (alpha0, beta0, c0) is a local minimum of
        F(alpha, beta, c) = sum_i ( sum_j (alpha_j x_i + beta_j) [s_j(alpha_j x_i + beta_j) > 0] + c - y_i )^2.
   (This is where v's sign matters: it decides which side of a kink is the *active* side, and the
   coupling between moving v and moving (w, b) is exactly the rescaling that the reduction removes.)
2. *Activation patterns around p0.*  For a pair (i, j) with a_ij = w_j x_i + b_j != 0, the activity
   of unit j on x_i does not change in a small neighbourhood.  For a pair on the kink (a_ij = 0), the
   perturbed pre-activation is proportional to l_i(d) = d_alpha_j x_i + d_beta_j, a linear form in the
   direction d.  The kink data of unit j give a central line arrangement in the (d_alpha_j, d_beta_j)
   plane; its closed cells Gamma_j (two half-planes if all kink data share one x -- always the case when
   w_j != 0 -- or 2m sectors if w_j = b_j = 0 and m >= 2 distinct x lie on the kink) cover the plane,
   and on each cell the set S_j of data where unit j is active is constant (kink terms vanish on the
   cell boundary, so closed cells are fine).  Products of cells (times R for c and for units without
   kinks) are polyhedral cones covering all directions.
3. *Each piece is a convex quadratic.*  On the cone Gamma = prod_j Gamma_j, F(p0 + d) = Q_S(p0 + d) for
   small d, where Q_S(p) = sum_i (sum_j (alpha_j x_i + beta_j)[i in S_j] + c - y_i)^2 is a sum of squares
   of affine functions: convex.  So p0 is a local minimum of F iff for every cone Gamma, d = 0 minimises
   the convex function Q_S(p0 + d) over the convex cone Gamma, iff (first-order optimality for convex
   problems) grad Q_S(p0) . d >= 0 for all d in Gamma, iff grad Q_S(p0) lies in the dual cone -- i.e.
   has non-negative inner product with each generator of Gamma.  Second-order terms never matter.
4. *Decoupling.*  The residual e_i = f(x_i) - y_i at p0 does not depend on the pattern (kink terms are 0
   at p0), and grad Q_S(p0) has blocks 2 (sum_{i in S_j} e_i x_i, sum_{i in S_j} e_i) for unit j and
   2 sum_i e_i for c.  Block j depends only on unit j's own cell, and the cone is a product, so the test
   is: sum_i e_i = 0, and for each unit and each of its cells, g_j . r >= 0 for every generator r of the
   cell (for a unit without kinks: g_j = 0).  Finitely many exact rational inequalities.
5. *Certificates both ways.*  If the test passes, theta0 is a local minimum (never strict in theta,
   because of the rescaling curve; Remark 5 of the paper).  If it fails for a generator r of a cell, r
   is a descent direction of F; mapped back (d_w_j, d_b_j) = r / v0_j it is a descent direction of L,
   and we exhibit an exact t with L(theta0 + t d) < L(theta0).

Units with v_j = 0: a unit that is strictly inactive on all data (a_ij < 0 for all i) cannot influence
the loss near theta0 and is dropped.  If such a unit is live somewhere, dL/dv_j = 2 sum_i e_i relu(a_ij)
is computed; non-zero gives an exact descent direction, zero leaves the test inconclusive (higher-order
coupling between v_j and (w_j, b_j)) and we say so.

A witness theta' proves "not global" if L(theta') < L(theta0), both computed exactly.
"""
from __future__ import annotations

import functools
import sys
import time
from fractions import Fraction
from typing import Any, Sequence

from badminima.engine.core import layout
from badminima.engine.certify.smooth import to_fraction

REASON_NOT_MIN = "not a local minimum: descent direction found"
REASON_ZERO_V = "output weight zero on a live unit: test inconclusive"
REASON_WITNESS = "witness not lower"
REASON_BAD_INPUT = "bad input"


def _relu(a: Fraction) -> Fraction:
    return a if a > 0 else Fraction(0)


def relu_loss(xs: Sequence[Fraction], ys: Sequence[Fraction], th: Sequence[Fraction]) -> Fraction:
    """Exact sum of squared errors of f(x) = sum_j v_j relu(w_j x + b_j) + c."""
    h = (len(th) - 1) // 3
    total = Fraction(0)
    for x, y in zip(xs, ys):
        f = th[-1]
        for j in range(h):
            f += th[3 * j] * _relu(th[3 * j + 1] * x + th[3 * j + 2])
        total += (f - y) ** 2
    return total


def _cells(kink_xs: list[Fraction]):
    """Closed cells of the line arrangement {d_alpha x + d_beta = 0 : x in kink_xs} in the
    (d_alpha, d_beta) plane, each as (generators, interior point)."""
    xs = sorted(set(kink_xs), reverse=True)
    if not xs:
        return [([(1, 0), (-1, 0), (0, 1), (0, -1)], (0, 0))]
    if len(xs) == 1:
        x = xs[0]
        t = (Fraction(1), -x)          # direction of the kink line
        nrm = (x, Fraction(1))         # normal: l(nrm) = x^2 + 1 > 0
        return [([t, (-t[0], -t[1]), (sg * nrm[0], sg * nrm[1])], (sg * nrm[0], sg * nrm[1]))
                for sg in (1, -1)]
    # rays (1, -x) for x descending have increasing angle in (-pi/2, pi/2); then their negatives
    rays = [(Fraction(1), -x) for x in xs] + [(Fraction(-1), x) for x in xs]
    cells = []
    for k in range(len(rays)):
        r1, r2 = rays[k], rays[(k + 1) % len(rays)]
        cells.append(([r1, r2], (r1[0] + r2[0], r1[1] + r2[1])))   # consecutive rays: angle < pi
    return cells


def _parse(x, y, theta):
    xs = []
    for row in x:
        if isinstance(row, (list, tuple)):
            if len(row) != 1:
                raise ValueError("the ReLU test is for 1-D inputs (d = 1)")
            row = row[0]
        xs.append(to_fraction(row))
    ys = [to_fraction(t) for t in y]
    if not xs or len(xs) != len(ys):
        raise ValueError("x and y must be non-empty and of equal length")
    th = [to_fraction(t) for t in theta]
    layout.hidden_from_params(len(th), 1)
    return xs, ys, th


def _long_numbers(fn):
    """Run fn with Python's limit on int <-> str conversion lifted (4300 digits, a guard for parsing
    untrusted text): the inputs are capped at 4000 characters each where they are read, but the exact
    loss, residuals and messages of such inputs have several times their digits."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        old = sys.get_int_max_str_digits()
        sys.set_int_max_str_digits(0)
        try:
            return fn(*args, **kwargs)
        finally:
            sys.set_int_max_str_digits(old)
    return wrapper


@_long_numbers
def certify_relu(x, y, theta, *, witness=None, hidden: int | None = None) -> dict:
    """Exact test: is theta a local minimum of the sum-of-squares loss of a 1-h-1 ReLU net?

    x: 1-D data (numbers or 1-element rows; decimal strings / 'p/q' / Fractions are exact, floats are
    read as their repr); y: targets; theta: layout order (v_j, w_j, b_j per unit, then c).
    Returns a JSON-able dict; ``certified`` is True iff theta is proven a local minimum and, when a
    witness is given, proven not global.  Rejections carry an exact descent certificate.
    """
    t0 = time.perf_counter()
    rep: dict[str, Any] = {"kind": "relu", "activation": "relu", "certified": False,
                           "local_minimum": None, "not_global": None, "verdict": "inconclusive",
                           "reason": None, "detail": ""}
    try:
        xs, ys, th = _parse(x, y, theta)
        h = (len(th) - 1) // 3
        if hidden is not None and hidden != h:
            raise ValueError(f"theta has {len(th)} entries: h={h}, not hidden={hidden}")
        wq = None if witness is None else [to_fraction(t) for t in witness]
        if wq is not None and len(wq) != len(th):
            raise ValueError("witness has a different number of parameters")
    except (ValueError, TypeError, ZeroDivisionError) as e:
        rep.update(reason=REASON_BAD_INPUT, detail=str(e), time_ms=1e3 * (time.perf_counter() - t0))
        return rep
    n = len(xs)
    L0 = relu_loss(xs, ys, th)
    ybar = sum(ys, Fraction(0)) / n
    const = sum(((t - ybar) ** 2 for t in ys), Fraction(0))
    rep.update(d=1, h=h, n=n, n_params=len(th), param_names=layout.param_names(1, h),
               loss=str(L0), loss_float=float(L0),
               quality={"constant_loss": str(const), "constant_loss_float": float(const),
                        "loss_below_constant": L0 < const})
    e = []
    for xi, yi in zip(xs, ys):
        f = th[-1]
        for j in range(h):
            f += th[3 * j] * _relu(th[3 * j + 1] * xi + th[3 * j + 2])
        e.append(f - yi)
    rep["residuals"] = [str(t) for t in e]

    def finish():
        rep["time_ms"] = 1e3 * (time.perf_counter() - t0)
        return rep

    def descent(dtheta: list[Fraction], what: str):
        """Exact proof that theta is not a local minimum along dtheta."""
        t = Fraction(1)
        for _ in range(400):
            cand = [a + t * b for a, b in zip(th, dtheta)]
            Lc = relu_loss(xs, ys, cand)
            if Lc < L0:
                rep.update(local_minimum=False, verdict="not_a_local_minimum", reason=REASON_NOT_MIN,
                           detail=what,
                           descent={"direction": [str(q) for q in dtheta], "t": str(t),
                                    "loss_after": str(Lc), "loss_after_float": float(Lc)})
                return True
            t /= 2
        return False   # cannot happen when g.r < 0 (first-order decrease); kept as a guard

    units = []
    undecided = []
    patterns = 0
    grad_c = 2 * sum(e, Fraction(0))
    if grad_c != 0:
        d = [Fraction(0)] * len(th)
        d[-1] = -1 if grad_c > 0 else Fraction(1)
        if descent(d, f"dL/dc = {grad_c} != 0"):
            return finish()
    for j in range(h):
        v, w, b = th[3 * j], th[3 * j + 1], th[3 * j + 2]
        a = [w * xi + b for xi in xs]
        info = {"unit": j, "kink_x": sorted({str(xs[i]) for i in range(n) if a[i] == 0}),
                "active": [i for i in range(n) if a[i] > 0]}
        units.append(info)
        if v == 0:
            if all(ai < 0 for ai in a):
                info["status"] = "v = 0, dead on all data: irrelevant near theta"
                continue
            gv = 2 * sum((e[i] * _relu(a[i]) for i in range(n)), Fraction(0))
            if gv != 0:
                d = [Fraction(0)] * len(th)
                d[3 * j] = -1 if gv > 0 else Fraction(1)
                if descent(d, f"unit {j}: v = 0 and dL/dv = {gv} != 0"):
                    rep["units"] = units
                    return finish()
            info["status"] = "v = 0 on a live unit, dL/dv = 0: undecided"
            undecided.append(j)
            continue
        s = 1 if v > 0 else -1
        kink = [i for i in range(n) if a[i] == 0]
        cells = _cells([xs[i] for i in kink])
        info["cells"] = len(cells)
        for gens, inner in cells:
            patterns += 1
            S = [i for i in range(n) if a[i] > 0]
            S += [i for i in kink if s * (inner[0] * xs[i] + inner[1]) > 0]
            g = (2 * sum((e[i] * xs[i] for i in S), Fraction(0)), 2 * sum((e[i] for i in S), Fraction(0)))
            for r in gens:
                if g[0] * r[0] + g[1] * r[1] < 0:
                    d = [Fraction(0)] * len(th)
                    d[3 * j + 1] = Fraction(r[0]) / v
                    d[3 * j + 2] = Fraction(r[1]) / v
                    act = sorted(S)
                    if descent(d, f"unit {j}: on the pattern with active data {act}, the gradient "
                                  f"({g[0]}, {g[1]}) of (alpha, beta) has negative product with the "
                                  f"cone generator {tuple(str(q) for q in r)}"):
                        rep.update(units=units, patterns_checked=patterns)
                        return finish()
    if undecided:
        rep.update(units=units, patterns_checked=patterns, reason=REASON_ZERO_V,
                   detail=f"units {undecided} have v = 0, are live (or on a kink) and dL/dv = 0: the "
                          "second-order coupling of v and (w, b) is not decided by this test; no "
                          "descent direction found among the other units")
        return finish()
    rep.update(units=units, patterns_checked=patterns, local_minimum=True, verdict="local_minimum",
               strict=False,
               detail="first-order optimality holds on every activation-pattern cone (each piece convex); "
                      "not strict in theta: (w_j/s, b_j/s, v_j s) keeps the loss")
    if wq is not None:
        Lw = relu_loss(xs, ys, wq)
        rep["witness"] = {"theta": [str(q) for q in wq], "loss": str(Lw), "loss_float": float(Lw),
                          "margin": str(L0 - Lw), "margin_float": float(L0 - Lw)}
        rep["not_global"] = Lw < L0
        if not rep["not_global"]:
            rep.update(reason=REASON_WITNESS, detail=f"witness loss {Lw} is not below {L0}")
            return finish()
        rep["verdict"] = "local_minimum_not_global"
    rep["certified"] = True
    return finish()
