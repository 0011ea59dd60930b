"""Rigorous certification of strict local minima of smooth d-h-1 networks (ball arithmetic).

Model and loss
--------------
    a_ij = sum_k w_jk x_ik + b_j,      z_i = sum_j v_j phi(a_ij) + c,     phi = sigmoid or tanh,
    L(theta) = (1/n) sum_i [ log(1 + e^{z_i}) - y_i z_i ]        (mean binary cross-entropy of sigmoid(z_i)),
with theta in the flat layout of ``engine/core/layout.py`` ([v_j, w_j0..w_j(d-1), b_j] per unit, then c).

What is proved, and why it is a proof
-------------------------------------
The data x_i, y_i are exact rationals (decimal strings are read as exact fractions) and are enclosed in
Arb balls (python-flint ``arb``; a ball [mid +/- rad] is a set of reals, and every Arb operation returns
a ball guaranteed to contain the exact result for *every* choice of reals in its input balls,
including all rounding errors).  Evaluating the closed-form loss, gradient and Hessian formulas below on
balls therefore yields enclosures of the exact values -- on a point or over a whole box.

1. *Refinement* (no proof needed): Newton's method at 128+ bits moves the given theta to a point m whose
   gradient is ~1e-35.  m is a vector of exact binary numbers.  The refined point must stay within
   ``max_move`` of the input, otherwise the input is not near a critical point and we refuse.
2. *Existence and uniqueness* (Krawczyk): for the box X = m + [-r, r]^P, let H(X) be the ball matrix
   obtained by evaluating the Hessian formula on X; it contains the Hessian at every point of X.  For any
   real matrix C (we use a float inverse of mid H) form
        K(X) = m - C grad L(m) + (I - C H(X)) (X - m).
   By the mean value theorem applied to each gradient component on the convex box,
   grad L(t) - grad L(m) = J_t (t - m) with every row of J_t a Hessian row at some point of X, so J_t is
   in H(X); hence the continuous map g(t) = t - C grad L(t) sends X into K(X).  If K(X) lies in the
   *interior* of X (checked componentwise with ``arb.contains_interior``), then (i) g maps X into
   itself, so by Brouwer it has a fixed point t*, i.e. C grad L(t*) = 0; (ii) the strict inclusion
   forces the spectral radius of |I - C J| below 1 for every J in H(X), so C and every such J are
   nonsingular; hence grad L(t*) = 0, and two zeros t1, t2 would give 0 = J (t1 - t2) with J
   nonsingular, so the zero is unique.  This is Krawczyk's theorem (Krawczyk 1969; Moore 1977;
   Rump 1983; Neumaier, Interval Methods for Systems of Equations, 1990, ch. 5).  Uniqueness also
   follows independently from step 3 (L is strictly convex on X).
3. *Strict minimum*: positive definiteness of every symmetric matrix in H(X) - lam*I.  Take any float
   matrix Q (eigenvectors of mid H).  Compute the ball matrix M = Q^T (H(X) - lam I) Q; it contains
   Q^T (H(t) - lam I) Q for every t in X.  If every Gershgorin disc of M lies in (0, inf), i.e.
   lower(M_ii) - sum_{j != i} upper|M_ij| > 0 for all i, every symmetric matrix enclosed by M is
   positive definite; that forces Q to be nonsingular, and by Sylvester's law of inertia H(t) - lam I is
   positive definite for every t in X.  So lam is a proven lower bound of the smallest Hessian eigenvalue
   on the whole box (lam = 0 suffices for the minimum).  L is then strictly convex on X, and theta* (the
   unique critical point of step 2) is the unique minimiser of L on X: a strict local minimum.
4. *Loss enclosure*: Taylor at theta* with grad L(theta*) = 0 gives
   L(m) - L(theta*) = 1/2 (m - theta*)^T H(xi) (m - theta*) with xi in X, hence
   L(theta*) in L(m) - 1/2 D^T H(X) D with D = X - m, intersected with L(m) from above (theta* minimises
   L on X).  This is also a lower bound of L over the whole box.
5. *Not global*: a witness theta' with exact rational weights; its loss is enclosed by evaluating at
   a point ball.  If upper(L(theta')) < lower(L(theta*)) the minimum is not global.

No float result ever enters a proof: floats only choose m, r, C, Q and lam, and the theorems hold for
*any* such choices.  A wrong choice can only make a check fail (honest "not certified"), never pass.
(The quality facts -- accuracy, the decision margin delta* and AUC of the outputs (engine/certify/quality.py),
float eigenvalues, distance from the input -- are plain float64 evaluations at the refined point and are
reported as such; the constant-predictor comparison and all
loss / eigenvalue / margin bounds are outward-rounded from balls.)

Failure reasons (``reason``): "gradient not zero in any box tried", "Hessian not positive definite on
box" (``verdict`` = "saddle" when, in addition, u^T H(X) u < 0 is proven for a vector u at a proven
unique critical point), "saturated units" (a hidden unit's pre-activations are large on all data:
plateau / drift to infinity), "witness not lower".

Cross-check: ``cross_check=True`` re-proves steps 2-5 for the same box with an independent code path in
mpmath's interval context (``mpmath.iv``): per-sample loops instead of matrix products, an mpmath float
inverse for C, and interval Cholesky (not Gershgorin) for positive definiteness.  The certificate is
issued only if both agree.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
from flint import arb, arb_mat, ctx, fmpq

from badminima.engine.core import layout
from badminima.engine.core import model as float_model
from badminima.engine.core.names import ACTIVATIONS, XENT
from badminima.engine.certify import quality as output_quality

CERTIFIABLE_ACTIVATIONS = ("sigmoid", "tanh")    # smooth activations: the certifier needs a Hessian

REASON_NOT_CRITICAL = "gradient not zero in any box tried"
REASON_NOT_PD = "Hessian not positive definite on box"
REASON_SATURATED = "saturated units"
REASON_WITNESS = "witness not lower"
REASON_CROSS = "cross-check failed"
REASON_BAD_INPUT = "bad input"

DEFAULT_RADII = (1e-6, 1e-8, 1e-10, 1e-13, 1e-16, 1e-20, 1e-25)
SATURATION = 1e-2   # unit saturated: phi'(a_ij) < SATURATION * phi'(0) on every data point
                    # (sigmoid: |a| > 6.0, tanh: |a| > 3.0); only used to word a failure


# ----------------------------------------------------------------------------------------------------
# exact inputs
# ----------------------------------------------------------------------------------------------------
def to_fraction(v: Any) -> Fraction:
    """Exact rational from a decimal string, 'p/q', int, Fraction; a float is read as its shortest repr
    (the decimal the user typed), never as its binary expansion."""
    if isinstance(v, Fraction):
        return v
    if isinstance(v, (bool, np.bool_)):
        raise TypeError("boolean is not a number")
    if isinstance(v, (int, np.integer)):
        return Fraction(int(v))
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            raise ValueError(f"non-finite value {v!r}")
        return Fraction(repr(float(v)))
    if isinstance(v, str):
        return Fraction(v.strip())
    raise TypeError(f"cannot read {v!r} as an exact number")


def _fq(q: Fraction) -> fmpq:
    return fmpq(q.numerator, q.denominator)


def _arbq(q: Fraction) -> arb:
    return arb(_fq(q))


@contextmanager
def _prec(bits: int):
    old = ctx.prec
    ctx.prec = bits
    try:
        yield
    finally:
        ctx.prec = old


def _flo(x: arb) -> float:
    return float(x.mid())


def _lo(x: arb) -> float:
    """A float <= every point of the ball (outward rounded)."""
    return math.nextafter(float(x.lower()), -math.inf)


def _hi(x: arb) -> float:
    return math.nextafter(float(x.upper()), math.inf)


def _abs_hi(x: arb) -> arb:
    return abs(x).upper()


# ----------------------------------------------------------------------------------------------------
# float model (only to choose things: Newton directions, C, Q, lam; never part of a claim)
# ----------------------------------------------------------------------------------------------------
def _act_np(a: np.ndarray, activation: str):
    if activation == "sigmoid":
        s = 0.5 * (1.0 + np.tanh(0.5 * a))
        ds = s * (1.0 - s)
        return s, ds, ds * (1.0 - 2.0 * s)
    t = np.tanh(a)
    dt = 1.0 - t * t
    return t, dt, -2.0 * t * dt


def float_derivs(X: np.ndarray, y: np.ndarray, theta: np.ndarray, h: int, activation: str):
    """(mean loss, gradient, Hessian) in float64: the engine's exact model (engine/core/model.py)."""
    d = X.shape[1]
    args = (np.ascontiguousarray(X, np.float64), np.ascontiguousarray(y, np.float64), d, h,
            ACTIVATIONS[activation], XENT)
    th = np.ascontiguousarray(theta, np.float64)
    loss, _, grad = float_model.evaluate(th, *args)
    return loss, grad, float_model.hessian(th, *args)


# ----------------------------------------------------------------------------------------------------
# ball model
# ----------------------------------------------------------------------------------------------------
class BallModel:
    """Loss, gradient and Hessian of the mean cross-entropy, evaluated in Arb ball arithmetic.

    Must be used inside ``_prec(self.prec)`` (the public functions take care of that)."""

    def __init__(self, xq: Sequence[Sequence[Fraction]], yq: Sequence[Fraction], h: int,
                 activation: str, prec: int = 128):
        if activation not in CERTIFIABLE_ACTIVATIONS:
            raise ValueError(f"activation {activation!r} not in {CERTIFIABLE_ACTIVATIONS}")
        self.n, self.d, self.h = len(xq), len(xq[0]), h
        self.P = layout.n_params(self.d, h)
        self.activation, self.prec = activation, prec
        with _prec(prec):
            self.Xt = arb_mat([[_arbq(q) for q in row] + [arb(1)] for row in xq])
            self.XtT = self.Xt.transpose()
            self.y = [_arbq(q) for q in yq]
            self.inv_n = arb(fmpq(1, self.n))

    def _act(self, a: arb):
        if self.activation == "sigmoid":
            s = 1 / (1 + (-a).exp())
            ds = s * (1 - s)
            return s, ds, ds * (1 - 2 * s)
        t = a.tanh()
        dt = 1 - t * t
        return t, dt, -2 * t * dt

    def evaluate(self, th: Sequence[arb], order: int = 2):
        """(loss, grad (P x 1 arb_mat) or None, Hessian (P x P arb_mat) or None) at the ball vector th."""
        n, d, h, P = self.n, self.d, self.h, self.P
        st = d + 2
        v = [th[j * st] for j in range(h)]
        Wt = arb_mat([[th[j * st + 1 + k] for k in range(d + 1)] for j in range(h)])
        c = th[P - 1]
        A = self.Xt * Wt.transpose()
        phi = [[None] * h for _ in range(n)]
        dphi = [[None] * h for _ in range(n)]
        ddphi = [[None] * h for _ in range(n)]
        z = []
        for i in range(n):
            zi = c
            for j in range(h):
                p0, p1, p2 = self._act(A[i, j])
                phi[i][j], dphi[i][j], ddphi[i][j] = p0, p1, p2
                zi = zi + v[j] * p0
            z.append(zi)
        loss = arb(0)
        for i in range(n):
            loss += (z[i].exp()).log1p() - self.y[i] * z[i]
        loss *= self.inv_n
        if order == 0:
            return loss, None, None
        s = [1 / (1 + (-zi).exp()) for zi in z]
        r = [s[i] - self.y[i] for i in range(n)]
        G = arb_mat(n, P)
        for i in range(n):
            for j in range(h):
                o = j * st
                G[i, o] = phi[i][j]
                vd = v[j] * dphi[i][j]
                for k in range(d + 1):
                    G[i, o + 1 + k] = vd * self.Xt[i, k]
            G[i, P - 1] = arb(1)
        GT = G.transpose()
        grad = (GT * arb_mat([[ri] for ri in r])) * self.inv_n
        if order == 1:
            return loss, grad, None
        Gq = arb_mat(n, P)
        for i in range(n):
            qi = s[i] * (1 - s[i])
            for k in range(P):
                Gq[i, k] = qi * G[i, k]
        H = GT * Gq
        for j in range(h):
            o = j * st
            cross = self.XtT * arb_mat([[r[i] * dphi[i][j]] for i in range(n)])
            M = arb_mat(n, d + 1)
            for i in range(n):
                t = r[i] * ddphi[i][j]
                for k in range(d + 1):
                    M[i, k] = t * self.Xt[i, k]
            WW = self.XtT * M
            for k in range(d + 1):
                H[o, o + 1 + k] += cross[k, 0]
                H[o + 1 + k, o] += cross[k, 0]
                for l in range(d + 1):
                    H[o + 1 + k, o + 1 + l] += v[j] * WW[k, l]
        H = H * self.inv_n
        return loss, grad, H


# ----------------------------------------------------------------------------------------------------
# proof steps
# ----------------------------------------------------------------------------------------------------
def _newton(model: BallModel, theta0: list[Fraction], max_move: float, max_iter: int = 60):
    """Refine to a critical point at model.prec bits.  Returns (m as exact arbs, steps, ok, info)."""
    m = [_arbq(q) for q in theta0]
    start = np.array([float(q) for q in theta0])
    tol = 2.0 ** (-(model.prec - 24))
    C = None
    last = math.inf
    for it in range(1, max_iter + 1):
        _, g, H = model.evaluate(m, 2 if C is None or it % 4 == 0 else 1)
        gf = np.array([_flo(g[k, 0]) for k in range(model.P)])
        if not np.all(np.isfinite(gf)):
            return m, it, False, "non-finite gradient"
        if H is not None:
            Hf = np.array([[_flo(H[a, b]) for b in range(model.P)] for a in range(model.P)])
            try:
                C = np.linalg.inv(Hf)
            except np.linalg.LinAlgError:
                return m, it, False, "singular Hessian during Newton"
            if not np.all(np.isfinite(C)):
                return m, it, False, "singular Hessian during Newton"
        step = C @ gf
        Ca = arb_mat(C.tolist())
        st = Ca * g
        m = [(m[k] - st[k, 0]).mid() for k in range(model.P)]
        cur = np.array([_flo(t) for t in m])
        move = float(np.max(np.abs(cur - start)))
        if not np.isfinite(move) or move > max_move:
            return m, it, False, f"Newton left the max_move={max_move:.3g} neighbourhood (moved {move:.3g})"
        size = float(np.max(np.abs(step)))
        scale = max(1.0, float(np.max(np.abs(cur))))
        if size <= tol * scale:
            return m, it, True, ""
        if it > 12 and size > 0.5 * last:       # linear or worse: near-singular, give up
            return m, it, False, "Newton not converging (near-singular Hessian)"
        last = size
    return m, max_iter, False, "Newton did not converge"


def _krawczyk(model: BallModel, m: list[arb], r: float, C: np.ndarray, g_m: arb_mat):
    P = model.P
    X = [arb(mk, r) for mk in m]
    loss_X, grad_X, H_X = model.evaluate(X, 2)
    Ca = arb_mat(C.tolist())
    D = arb_mat([[X[k] - m[k]] for k in range(P)])
    I = arb_mat(P, P)
    for k in range(P):
        I[k, k] = arb(1)
    Kc = arb_mat([[mk] for mk in m]) - Ca * g_m + (I - Ca * H_X) * D
    ok = all(X[k].contains_interior(Kc[k, 0]) for k in range(P))
    return ok, X, D, H_X


def _gershgorin_pd(Hb: arb_mat, Q: np.ndarray, lam: float) -> bool:
    """Proof that every symmetric matrix in Hb - lam*I is positive definite (see module docstring)."""
    P = Hb.nrows()
    S = arb_mat(P, P)
    for a in range(P):
        for b in range(P):
            S[a, b] = Hb[a, b]
        S[a, a] -= arb(lam)
    Qa = arb_mat(Q.tolist())
    M = Qa.transpose() * S * Qa
    for a in range(P):
        rad = arb(0)
        for b in range(P):
            if b != a:
                rad += _abs_hi(M[a, b])
        if not (M[a, a] - rad > 0):
            return False
    return True


def _prove_pd(H_X: arb_mat, Hf: np.ndarray):
    """Largest lam (of a few tries) with H(X) - lam I proven PD; None if not even lam = 0."""
    Hs = 0.5 * (Hf + Hf.T)
    w, Q = np.linalg.eigh(Hs)
    lam0 = float(w[0])
    if lam0 <= 0:
        return None, Q, w
    for lam in (lam0 * (1 - 1e-6), lam0 * 0.99, lam0 * 0.9, lam0 * 0.5, lam0 * 0.1, 0.0):
        if _gershgorin_pd(H_X, Q, lam):
            return lam, Q, w
    return None, Q, w


def _prove_indefinite(H_X: arb_mat, Q: np.ndarray) -> bool:
    u = arb_mat([[float(t)] for t in Q[:, 0]])
    val = (u.transpose() * H_X * u)[0, 0]
    return bool(val < 0)


def _loss_point(model: BallModel, thq: Sequence[Fraction]) -> arb:
    return model.evaluate([_arbq(q) for q in thq], 0)[0]


# ----------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------
def _parse_problem(x, y, theta, hidden, activation):
    xq = [[to_fraction(t) for t in (row if isinstance(row, (list, tuple, np.ndarray)) else [row])]
          for row in x]
    yq = [to_fraction(t) for t in y]
    if not xq or len(xq) != len(yq):
        raise ValueError("x and y must be non-empty and of equal length")
    d = len(xq[0])
    if any(len(row) != d for row in xq):
        raise ValueError("ragged x")
    if any(not (0 <= t <= 1) for t in yq):
        raise ValueError("labels must lie in [0, 1]")
    thq = [to_fraction(t) for t in theta]
    h = layout.hidden_from_params(len(thq), d)
    if hidden is not None and hidden != h:
        raise ValueError(f"theta has {len(thq)} entries: h={h}, not hidden={hidden}")
    if activation not in CERTIFIABLE_ACTIVATIONS:
        raise ValueError(f"activation {activation!r} not supported by the smooth certifier {CERTIFIABLE_ACTIVATIONS}")
    return xq, yq, thq, d, h


def saturated_units(xq, thq, d: int, h: int, activation: str = "sigmoid",
                    threshold: float = SATURATION) -> list[int]:
    """Hidden units whose activation derivative is below threshold * phi'(0) on every data point."""
    X = np.array([[float(t) for t in row] for row in xq])
    th = np.array([float(t) for t in thq])
    W, b, _, _ = layout.unpack(th, d)
    _, dphi, _ = _act_np(X @ W.T + b, activation)
    ref = 0.25 if activation == "sigmoid" else 1.0
    return [j for j in range(h) if float(np.max(dphi[:, j])) < threshold * ref]


def arb_to_fraction(x: arb) -> Fraction:
    """The exact midpoint of a ball as a Fraction."""
    man, exp = x.mid().man_exp()
    man, exp = int(man), int(exp)
    return Fraction(man * 2 ** exp) if exp >= 0 else Fraction(man, 2 ** (-exp))


def _arb_str(x: arb, digits: int = 20) -> str:
    return x.str(digits, radius=True)


def _quality(xq, yq, m_float: np.ndarray, h: int, activation: str, loss_lo: float, loss_hi: float):
    X = np.array([[float(t) for t in row] for row in xq])
    labels = np.array([1.0 if t > Fraction(1, 2) else 0.0 for t in yq])
    act = ACTIVATIONS[activation]
    acc = float(float_model.evaluate(m_float, X, labels, X.shape[1], h, act, XENT)[1])
    p = 0.5 + 0.5 * np.tanh(0.5 * float_model.logits(m_float, X, X.shape[1], h, act))   # sigma(z), no overflow
    ybar = sum(yq, Fraction(0)) / len(yq)
    majority = float(max(ybar, 1 - ybar))
    with _prec(128):
        if ybar in (0, 1):
            const = arb(0)
        else:
            yb = _arbq(ybar)
            const = -(yb * yb.log() + (1 - yb) * (1 - yb).log())
    const_f = _flo(const)
    return {
        "accuracy": acc,
        "majority_rate": majority,
        "accuracy_above_majority": acc > majority,
        "constant_loss": const_f,
        "loss_below_constant": bool(loss_hi < _lo(const)),
        "loss_minus_constant": loss_lo - const_f,
        "delta_star": output_quality.decision_margin(p, labels),
        "auc": output_quality.auc(p, labels),
        "outputs": [float(t) for t in p],
    }


def _data_decimals(xq) -> int | None:
    """Number of decimals needed to write every x exactly (None if some x is not a finite decimal)."""
    best = 0
    for row in xq:
        for q in row:
            den = q.denominator
            k = 0
            while den % 10 == 0 or den % 2 == 0 or den % 5 == 0:
                if den % 10 == 0:
                    den //= 10
                elif den % 2 == 0:
                    den //= 2
                else:
                    den //= 5
            if den != 1:
                return None
            while (q * 10 ** k).denominator != 1:
                k += 1
            best = max(best, k)
    return best


def round_data(xq, k: int):
    """x rounded to k decimals (round half to even, exact)."""
    s = 10 ** k
    return [[Fraction(round(q * s), s) for q in row] for row in xq]


def _newton_float(X, y, th, h, activation, iters: int = 30):
    for _ in range(iters):
        _, g, H = float_derivs(X, y, th, h, activation)
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            return None
        th = th - step
        if not np.all(np.isfinite(th)) or np.max(np.abs(th)) > 1e6:
            return None
        if np.max(np.abs(step)) < 1e-14 * max(1.0, float(np.max(np.abs(th)))):
            break
    _, g, H = float_derivs(X, y, th, h, activation)
    if not np.all(np.isfinite(H)) or np.max(np.abs(g)) > 1e-9:
        return None
    if np.linalg.eigvalsh(0.5 * (H + H.T))[0] <= 0:
        return None
    return th


def _track(X0: np.ndarray, X1: np.ndarray, y: np.ndarray, theta: np.ndarray, h: int, activation: str,
           max_jump: float = 0.25):
    """Follow a float minimum from data X0 to X1 by continuation with adaptive steps; None if lost
    (the minimum disappears, e.g. in a fold, or the path cannot be followed with steps >= 1/1024)."""
    th, t, dt = theta.copy(), 0.0, 0.125
    with np.errstate(all="ignore"):
        while t < 1.0:
            t1 = min(1.0, t + dt)
            nxt = _newton_float((1 - t1) * X0 + t1 * X1, y, th, h, activation)
            if nxt is not None and np.max(np.abs(nxt - th)) <= max_jump * max(1.0, np.max(np.abs(th))):
                th, t = nxt, t1
                dt = min(0.25, dt * 2)
            else:
                dt /= 2
                if dt < 1.0 / 1024:
                    return None
    return th


def certify_smooth(x, y, theta, *, hidden: int | None = None, activation: str = "sigmoid",
                   witness=None, prec: int = 128, radii: Sequence[float] = DEFAULT_RADII,
                   max_move: float | None = None, rounding: bool = False, cross_check: bool = False,
                   refine: bool = True, _round_depth: int = 0) -> dict:
    """Certify that a strict local minimum of the mean cross-entropy lies next to ``theta``.

    x: rows of exact numbers (decimal strings, Fractions, ints; floats are read as their repr);
    y: labels in [0, 1]; theta: layout order (engine/core/layout.py), exact or float.
    witness: optional weight vector (same layout) to prove the minimum is not global.
    max_move: allowed inf-norm distance between theta and the refined critical point
    (default 1e-4 * max(1, |theta|_inf)).  refine=False skips Newton: the boxes are centred on theta
    itself (rounded to ``prec`` bits).  rounding: also report the coarsest decimal rounding of x that
    still certifies (re-runs the whole pipeline).  cross_check: re-prove with mpmath.iv.

    Returns a JSON-able dict (see the module docstring and docs/certify.md).  ``certified`` is True only when the
    strict local minimum is proven and, if a witness was given, proven not global.
    """
    t0 = time.perf_counter()
    rep: dict[str, Any] = {"kind": "smooth", "activation": activation, "certified": False,
                           "local_minimum": False, "not_global": None, "verdict": "not_certified",
                           "reason": None, "detail": ""}
    try:
        xq, yq, thq, d, h = _parse_problem(x, y, theta, hidden, activation)
        wq = None if witness is None else [to_fraction(t) for t in witness]
        if wq is not None and len(wq) != len(thq):
            raise ValueError("witness has a different number of parameters")
    except (ValueError, TypeError, ZeroDivisionError) as e:
        rep.update(reason=REASON_BAD_INPUT, detail=str(e), time_ms=1e3 * (time.perf_counter() - t0))
        return rep
    n = len(xq)
    P = len(thq)
    rep.update(d=d, h=h, n=n, n_params=P, prec=prec, param_names=layout.param_names(d, h))
    th_in = np.array([float(q) for q in thq])
    if max_move is None:
        max_move = 1e-4 * max(1.0, float(np.max(np.abs(th_in))))
    rep["max_move"] = max_move

    def fail(reason, detail):
        sat = saturated_units(xq, thq, d, h, activation) if reason == REASON_NOT_CRITICAL else None
        if sat:
            detail = (f"hidden units {sat} are saturated (activation slope < {SATURATION:g} of its "
                      f"maximum on every data point: a plateau; {reason}: {detail})")
            reason = REASON_SATURATED
        rep.update(reason=reason, detail=detail)
        rep["time_ms"] = 1e3 * (time.perf_counter() - t0)
        return rep

    with _prec(prec):
        model = BallModel(xq, yq, h, activation, prec)
        if refine:
            m, steps, ok, info = _newton(model, thq, max_move)
        else:
            m, steps, ok, info = [_arbq(q).mid() for q in thq], 0, True, ""
        rep["newton_steps"] = steps
        if not ok:
            return fail(REASON_NOT_CRITICAL, info)
        m_float = np.array([_flo(t) for t in m])
        m_exact = [arb_to_fraction(t) for t in m]
        rep["center"] = [t.str(25, radius=False) for t in m]
        rep["distance_from_input"] = float(np.max(np.abs(m_float - th_in)))
        _, g_m, H_m = model.evaluate(m, 2)
        rep["gradient_bound"] = max(_hi(abs(g_m[k, 0])) for k in range(P))
        Hf = np.array([[_flo(H_m[a, b]) for b in range(P)] for a in range(P)])
        ev = np.linalg.eigvalsh(0.5 * (Hf + Hf.T))
        rep["eigenvalues_float"] = [float(t) for t in ev]
        rep["eigenvalues_float_sum"] = [float(t) * n for t in ev]
        try:
            C = np.linalg.inv(Hf)
        except np.linalg.LinAlgError:
            return fail(REASON_NOT_CRITICAL, "singular Hessian at the refined point")
        unique_somewhere = False
        saddle = False
        proof = None
        for r in radii:
            kok, X, D, H_X = _krawczyk(model, m, r, C, g_m)
            if not kok:
                continue
            unique_somewhere = True
            HXf = np.array([[_flo(H_X[a, b]) for b in range(P)] for a in range(P)])
            lam, Q, _ = _prove_pd(H_X, HXf)
            if lam is None:
                if _prove_indefinite(H_X, Q):
                    saddle = True
                    rep["box_radius"] = r
                    break
                continue
            proof = (r, X, D, H_X, lam)
            break
        if proof is None:
            if saddle:
                rep["verdict"] = "saddle"
                return fail(REASON_NOT_PD, "unique critical point proven in the box, and u^T H u < 0 "
                            "proven on the box: a saddle (or maximum), not a minimum")
            if unique_somewhere:
                return fail(REASON_NOT_PD, f"unique critical point proven, but positive definiteness "
                            f"failed on every box (float eigenvalues {ev[0]:.3g} .. {ev[-1]:.3g})")
            return fail(REASON_NOT_CRITICAL, f"Krawczyk inclusion failed for radii {list(radii)} "
                        f"(float eigenvalues {ev[0]:.3g} .. {ev[-1]:.3g})")
        r, X, D, H_X, lam = proof
        L_m = model.evaluate(m, 0)[0]
        quad = (D.transpose() * H_X * D)[0, 0]
        L_star = L_m - quad / 2
        lo_star = L_star.lower()
        hi_star = L_m.upper()
        rep.update(local_minimum=True, verdict="strict_local_minimum", box_radius=r,
                   min_eig_lower_bound=lam, min_eig_lower_bound_sum=lam * n,
                   loss_enclosure=[_lo(lo_star), _hi(hi_star)],
                   loss_enclosure_sum=[_lo(lo_star * n), _hi(hi_star * n)],
                   loss_enclosure_str=_arb_str(L_star.union(L_m)))
        loss_lo = rep["loss_enclosure"][0]
        loss_hi = rep["loss_enclosure"][1]
        if wq is not None:
            Lw = _loss_point(model, wq)
            margin = lo_star - Lw.upper()
            rep["witness"] = {"theta": [str(q) for q in wq], "loss_upper": _hi(Lw.upper()),
                              "margin_lower": _lo(margin)}
            rep["not_global"] = bool(margin > 0)
        rep["quality"] = _quality(xq, yq, m_float, h, activation, loss_lo, loss_hi)
    if cross_check:
        cc = cross_check_iv(xq, yq, h, activation, m_exact, rep["box_radius"], wq,
                            lam=rep["min_eig_lower_bound"])
        rep["cross_check"] = cc
        if wq is not None and rep["not_global"] and not cc.get("witness_lower"):
            cc["ok"] = False
            cc["detail"] = "mpmath.iv does not confirm the witness margin"
        if not cc["ok"]:
            rep.update(local_minimum=False, not_global=None, verdict="not_certified")
            return fail(REASON_CROSS, cc["detail"])
    if wq is not None and not rep["not_global"]:
        rep["verdict"] = "strict_local_minimum"
        return fail(REASON_WITNESS, f"witness loss <= {rep['witness']['loss_upper']:.10g} is not below "
                    f"the minimum's lower bound {loss_lo:.10g}")
    if wq is not None:
        rep["verdict"] = "strict_local_minimum_not_global"
    rep["certified"] = True
    if rounding and _round_depth == 0:
        rep["rounding"] = _rounding_study(xq, yq, m_float, h, activation, wq, prec, radii, max_move)
    rep["time_ms"] = 1e3 * (time.perf_counter() - t0)
    return rep


def _rounding_study(xq, yq, m_float, h, activation, wq, prec, radii, max_move) -> dict:
    """Re-run the whole pipeline on x rounded to 0, 1, ... decimals (minimum followed by continuation)."""
    D = _data_decimals(xq)
    top = 6 if D is None else D
    X0 = np.array([[float(t) for t in row] for row in xq])
    y = np.array([float(t) for t in yq])
    by = {}
    coarsest = top if D is not None else None
    for k in range(top - 1, -1, -1):
        xk = round_data(xq, k)
        Xk = np.array([[float(t) for t in row] for row in xk])
        th = _track(X0, Xk, y, m_float, h, activation)
        if th is None:
            by[str(k)] = {"certified": False, "reason": "minimum lost while moving the data"}
            continue
        sub = certify_smooth(xk, yq, [repr(float(t)) for t in th], activation=activation, witness=wq,
                             prec=prec, radii=radii, max_move=max_move, _round_depth=1)
        by[str(k)] = {"certified": sub["certified"], "reason": sub["reason"],
                      "loss_enclosure": sub.get("loss_enclosure"),
                      "moved": float(np.max(np.abs(th - m_float)))}
        if sub["certified"]:
            coarsest = k
    return {"data_decimals": D, "coarsest_decimals": coarsest,
            "rule": "x rounded half-to-even to k decimals; minimum followed by continuation",
            "by_decimals": by}


# ----------------------------------------------------------------------------------------------------
# independent cross-check with mpmath.iv
# ----------------------------------------------------------------------------------------------------
def cross_check_iv(xq, yq, h: int, activation: str, center: Sequence[Fraction], r: float,
                   witness: Sequence[Fraction] | None = None, lam: float = 0.0, prec: int = 160) -> dict:
    """Re-prove uniqueness (Krawczyk), positive definiteness (interval Cholesky of H(X) - lam I) and the
    loss / witness bounds on the box center +/- r with mpmath's interval arithmetic, by separate code."""
    import mpmath
    from mpmath import iv, mp

    old_iv, old_mp = iv.prec, mp.prec
    iv.prec = prec
    mp.prec = 53
    try:
        n, d = len(xq), len(xq[0])
        P = h * (d + 2) + 1

        def I(q: Fraction):
            return iv.mpf(q.numerator) / iv.mpf(q.denominator)

        xs = [[I(t) for t in row] + [iv.mpf(1)] for row in xq]
        ys = [I(t) for t in yq]

        def act(a):
            if activation == "sigmoid":
                s = 1 / (1 + iv.exp(-a))
                ds = s * (1 - s)
                return s, ds, ds * (1 - 2 * s)
            t = 1 - 2 / (iv.exp(2 * a) + 1)
            dt = 1 - t ** 2
            return t, dt, -2 * t * dt

        def model(th, order):
            loss = iv.mpf(0)
            grad = [iv.mpf(0)] * P
            H = [[iv.mpf(0)] * P for _ in range(P)]
            for i in range(n):
                g = [iv.mpf(0)] * P
                sec = []   # (a, b, value) of d2 z / d a d b, a <= b
                z = th[P - 1]
                for j in range(h):
                    o = j * (d + 2)
                    a = th[o + 1 + d]
                    for k in range(d):
                        a = a + th[o + 1 + k] * xs[i][k]
                    p0, p1, p2 = act(a)
                    z = z + th[o] * p0
                    g[o] = p0
                    for k in range(d + 1):
                        g[o + 1 + k] = th[o] * p1 * xs[i][k]
                        sec.append((o, o + 1 + k, p1 * xs[i][k]))
                        for l in range(k, d + 1):
                            sec.append((o + 1 + k, o + 1 + l, th[o] * p2 * xs[i][k] * xs[i][l]))
                g[P - 1] = iv.mpf(1)
                loss = loss + iv.log(1 + iv.exp(z)) - ys[i] * z
                if order == 0:
                    continue
                s = 1 / (1 + iv.exp(-z))
                res = s - ys[i]
                q = s * (1 - s)
                for a_ in range(P):
                    grad[a_] = grad[a_] + res * g[a_]
                    for b_ in range(a_ + 1):
                        H[a_][b_] = H[a_][b_] + q * g[a_] * g[b_]
                for (a_, b_, val) in sec:
                    H[b_][a_] = H[b_][a_] + res * val      # store in lower triangle (b_ >= a_)
            loss = loss / n
            grad = [t / n for t in grad]
            for a_ in range(P):
                for b_ in range(a_ + 1):
                    H[a_][b_] = H[a_][b_] / n
                    H[b_][a_] = H[a_][b_]
            return loss, grad, H

        M = [I(t) for t in center]
        rq = Fraction(r)
        X = [iv.mpf([I(c - rq).a, I(c + rq).b]) for c in center]
        D = [X[k] - M[k] for k in range(P)]
        L_m, g_m, _ = model(M, 1)
        _, _, HX = model(X, 2)
        A = mp.matrix([[HX[a][b].mid for b in range(P)] for a in range(P)])
        try:
            Cm = mp.inverse(A)
        except ZeroDivisionError:
            return {"ok": False, "detail": "mpmath: singular midpoint Hessian"}
        C = [[iv.mpf(Cm[a, b]) for b in range(P)] for a in range(P)]
        ok_k = True
        for a in range(P):
            acc = M[a]
            for b in range(P):
                acc = acc - C[a][b] * g_m[b]
            for b in range(P):
                e = iv.mpf(1 if a == b else 0)
                for k in range(P):
                    e = e - C[a][k] * HX[k][b]
                acc = acc + e * D[b]
            if not (acc.a > X[a].a and acc.b < X[a].b):
                ok_k = False
                break

        def chol_pd(shift):
            Lm = [[None] * P for _ in range(P)]
            for k in range(P):
                piv = HX[k][k] - shift
                for j in range(k):
                    piv = piv - Lm[k][j] ** 2
                if not piv.a > 0:
                    return False
                Lm[k][k] = iv.sqrt(piv)
                for i in range(k + 1, P):
                    t = HX[i][k]
                    for j in range(k):
                        t = t - Lm[i][j] * Lm[k][j]
                    Lm[i][k] = t / Lm[k][k]
            return True

        lam_iv = None
        for shift in ([lam, 0.0] if lam > 0 else [0.0]):
            if chol_pd(iv.mpf(shift)):
                lam_iv = shift
                break
        quad = iv.mpf(0)
        for a in range(P):
            for b in range(P):
                quad = quad + D[a] * HX[a][b] * D[b]
        L_star = L_m - quad / 2
        out = {"krawczyk": ok_k, "positive_definite": lam_iv is not None, "min_eig_lower_bound": lam_iv,
               "loss_enclosure": [math.nextafter(float(mpmath.mpf(L_star.a)), -math.inf),
                                  math.nextafter(float(mpmath.mpf(L_m.b)), math.inf)],
               "prec": prec}
        ok = ok_k and lam_iv is not None
        detail = []
        if not ok_k:
            detail.append("mpmath.iv Krawczyk inclusion failed")
        if lam_iv is None:
            detail.append("mpmath.iv interval Cholesky failed")
        if witness is not None:
            Lw, _, _ = model([I(t) for t in witness], 0)
            margin = L_star.a - Lw.b
            out["witness_margin_lower"] = math.nextafter(float(mpmath.mpf(margin.a)), -math.inf)
            out["witness_lower"] = bool(margin > 0)
        out["ok"] = ok
        out["detail"] = "; ".join(detail) or "agrees"
        return out
    finally:
        iv.prec, mp.prec = old_iv, old_mp


# ----------------------------------------------------------------------------------------------------
# symmetries
# ----------------------------------------------------------------------------------------------------
def symmetric_copies(theta, d: int, activation: str = "sigmoid") -> list[tuple[str, list[Fraction]]]:
    """All images of theta under the network's symmetry group (exact): permutations of the hidden
    units and sign flips of units -- sigmoid: (w_j, b_j, v_j, c) -> (-w_j, -b_j, -v_j, c + v_j) since
    sigma(-a) = 1 - sigma(a); tanh: (w_j, b_j, v_j) -> -(...), c unchanged.  Returns (name, theta)
    pairs, the identity first; names like 'perm(1,0)+flip(0)'."""
    from itertools import permutations, product

    th = [to_fraction(t) for t in theta]
    h = layout.hidden_from_params(len(th), d)
    st = d + 2
    out = []
    for perm in permutations(range(h)):
        for flips in product((False, True), repeat=h):
            new = []
            c = th[-1]
            for j in perm:
                block = th[j * st:(j + 1) * st]
                if flips[len(new) // st]:
                    if activation == "sigmoid":
                        c = c + block[0]
                    block = [-t for t in block]
                new.extend(block)
            new.append(c)
            name = (f"perm{tuple(perm)}" if list(perm) != list(range(h)) else "id")
            fl = [k for k in range(h) if flips[k]]
            if fl:
                name += f"+flip{tuple(fl)}"
            out.append((name, new))
    return out
