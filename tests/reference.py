"""An independent, slow, loop-based reference for ONE d-h-1 network (plain NumPy floats and mpmath).

Deliberately shares no code with badminima.engine: it re-derives everything by hand so the engine's
kernels can be checked against it.

Model:  z(x) = c + sum_j v_j act(b_j + sum_k w_jk x_k),  act in {sigmoid, relu, tanh}
        (relu'(a) = 1 iff a > 0, so the derivative at the kink is 0).
Losses: "xent": p = sigmoid(z), mean binary cross-entropy (natural log) over the points;
        "mse":  linear output, mean of (z - y)^2 over the points (sum = N * mean).
theta:  per hidden unit j: v_j, w_j0 .. w_j(d-1), b_j; then c.
"""
from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np

ACTS = ("sigmoid", "relu", "tanh")
LOSSES = ("xent", "mse")


# ---------------------------------------------------------------- layout, by hand

def _shape(theta, X) -> tuple[int, int]:
    """(h, d) of the network that theta parametrizes for inputs X."""
    d = len(X[0])
    h = (len(theta) - 1) // (d + 2)
    if h < 1 or h * (d + 2) + 1 != len(theta):
        raise ValueError(f"theta of length {len(theta)} is not a {d}-h-1 network")
    return h, d


def _iv(j, d):
    return j * (d + 2)


def _iw(j, k, d):
    return j * (d + 2) + 1 + k


def _ib(j, d):
    return j * (d + 2) + d + 1


def _check(act, loss):
    if act not in ACTS or loss not in LOSSES:
        raise ValueError(f"unknown activation {act!r} or loss {loss!r}")


# ---------------------------------------------------------------- float scalars

def _sigmoid(a):
    if a >= 0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


def _act(a, act):
    """(act(a), act'(a), act''(a)) in float."""
    if act == "sigmoid":
        s = _sigmoid(a)
        return s, s * (1 - s), s * (1 - s) * (1 - 2 * s)
    if act == "tanh":
        t = math.tanh(a)
        return t, 1 - t * t, -2 * t * (1 - t * t)
    return (a, 1.0, 0.0) if a > 0 else (0.0, 0.0, 0.0)


def _point_loss(z, y, loss):
    """(l, dl/dz, d2l/dz2) of one point: cross-entropy on sigmoid(z), or (z - y)^2."""
    if loss == "mse":
        return (z - y) ** 2, 2 * (z - y), 2.0
    softplus = max(z, 0.0) + math.log1p(math.exp(-abs(z)))
    p = _sigmoid(z)
    return softplus - y * z, p - y, p * (1 - p)


# ---------------------------------------------------------------- one point, float

def _forward(theta, x, act):
    """Output z and the per-unit (pre-activation, act, act', act'') of one input x."""
    h, d = _shape(theta, [x])
    z = theta[-1]
    units = []
    for j in range(h):
        a = theta[_ib(j, d)]
        for k in range(d):
            a += theta[_iw(j, k, d)] * x[k]
        s, ds, dds = _act(a, act)
        units.append((a, s, ds, dds))
        z += theta[_iv(j, d)] * s
    return z, units


def _dz(theta, x, act):
    """z and the gradient of z with respect to theta at one input x."""
    h, d = _shape(theta, [x])
    z, units = _forward(theta, x, act)
    g = np.zeros(len(theta))
    for j, (_, s, ds, _) in enumerate(units):
        v = theta[_iv(j, d)]
        g[_iv(j, d)] = s
        for k in range(d):
            g[_iw(j, k, d)] = v * ds * x[k]
        g[_ib(j, d)] = v * ds
    g[-1] = 1.0
    return z, g, units


def _d2z(theta, x, units):
    """The Hessian of z with respect to theta at one input x (zero across units and in c)."""
    h, d = _shape(theta, [x])
    H = np.zeros((len(theta), len(theta)))
    for j, (_, _, ds, dds) in enumerate(units):
        v = theta[_iv(j, d)]
        inner = [_iw(j, k, d) for k in range(d)] + [_ib(j, d)]
        feats = list(x) + [1.0]                        # d(pre-activation)/d(w_j., b_j)
        for p, fp in zip(inner, feats):
            H[_iv(j, d), p] = H[p, _iv(j, d)] = ds * fp
            for q, fq in zip(inner, feats):
                H[p, q] = (v * dds) * (fp * fq)          # exactly symmetric in p, q
    return H


# ---------------------------------------------------------------- public float API

def ref_loss(theta, X, y, act, loss):
    """Mean loss over the points."""
    _check(act, loss)
    total = 0.0
    for x, t in zip(X, y):
        z, _ = _forward(theta, x, act)
        total += _point_loss(z, t, loss)[0]
    return total / len(X)


def ref_grad(theta, X, y, act, loss):
    """Analytic gradient of the mean loss."""
    _check(act, loss)
    G = np.zeros(len(theta))
    for x, t in zip(X, y):
        z, g, _ = _dz(theta, x, act)
        G += _point_loss(z, t, loss)[1] * g
    return G / len(X)


def ref_grad_fd(theta, X, y, act, loss, step=1e-6):
    """Central finite-difference gradient of the mean loss."""
    theta = np.array(theta, dtype=float)
    G = np.zeros(len(theta))
    for i in range(len(theta)):
        e = np.zeros(len(theta))
        e[i] = step
        G[i] = (ref_loss(theta + e, X, y, act, loss) - ref_loss(theta - e, X, y, act, loss)) / (2 * step)
    return G


def ref_hessian(theta, X, y, act, loss):
    """Analytic Hessian of the mean loss: sum over points of l'' dz dz^T + l' d2z, divided by N."""
    _check(act, loss)
    P = len(theta)
    H = np.zeros((P, P))
    for x, t in zip(X, y):
        z, g, units = _dz(theta, x, act)
        _, dl, ddl = _point_loss(z, t, loss)
        H += ddl * np.outer(g, g) + dl * _d2z(theta, x, units)
    return H / len(X)


def ref_hessian_fd(theta, X, y, act, loss, step=1e-5):
    """Central finite differences of the analytic gradient (a check on ref_hessian)."""
    theta = np.array(theta, dtype=float)
    P = len(theta)
    H = np.zeros((P, P))
    for i in range(P):
        e = np.zeros(P)
        e[i] = step
        H[:, i] = (ref_grad(theta + e, X, y, act, loss) - ref_grad(theta - e, X, y, act, loss)) / (2 * step)
    return H


def ref_accuracy(theta, X, y, act):
    """Fraction of points with (z > 0) == (label == 1), i.e. threshold p > 0.5."""
    hits = 0
    for x, t in zip(X, y):
        z, _ = _forward(theta, x, act)
        hits += int((z > 0) == (t == 1))
    return hits / len(X)


# ---------------------------------------------------------------- trajectories

def ref_gd(theta0, X, y, act, loss, lr, steps, record=False):
    """Full-batch gradient descent theta <- theta - lr * grad(mean loss); final theta, or all iterates."""
    theta = np.array(theta0, dtype=float)
    path = [theta.copy()]
    for _ in range(steps):
        theta = theta - lr * ref_grad(theta, X, y, act, loss)
        path.append(theta.copy())
    return np.array(path) if record else theta


def ref_adam(theta0, X, y, act, loss, lr, steps, beta1=0.9, beta2=0.999, eps=1e-8, record=False):
    """Full-batch Adam with bias correction (t from 1); final theta, or all iterates."""
    theta = np.array(theta0, dtype=float)
    m = np.zeros(len(theta))
    v = np.zeros(len(theta))
    path = [theta.copy()]
    for t in range(1, steps + 1):
        g = ref_grad(theta, X, y, act, loss)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        path.append(theta.copy())
    return np.array(path) if record else theta


def ref_sgd(theta0, X, y, act, loss, lr, steps, order, record=False):
    """SGD, one point per step: step t uses point order[t] and the gradient of that point's loss alone."""
    if len(order) < steps:
        raise ValueError(f"order has {len(order)} indices for {steps} steps")
    theta = np.array(theta0, dtype=float)
    path = [theta.copy()]
    for t in range(steps):
        i = order[t]
        theta = theta - lr * ref_grad(theta, [X[i]], [y[i]], act, loss)
        path.append(theta.copy())
    return np.array(path) if record else theta


# ---------------------------------------------------------------- mpmath (sigmoid / tanh; relu off its kinks)

def _mpf(value):
    """An mpf from a float, int, Fraction, decimal string or 'p/q' string (exact up to precision)."""
    if isinstance(value, str) and "/" in value:
        value = Fraction(value.strip())
    if isinstance(value, Fraction):
        return mpmath.mpf(value.numerator) / value.denominator
    return mpmath.mpf(value.strip() if isinstance(value, str) else value)


def _mp_inputs(theta, X, y, act, loss):
    if act not in ("sigmoid", "tanh", "relu"):
        raise ValueError(f"mpmath reference supports sigmoid, tanh and relu, not {act!r}")
    _check(act, loss)
    return ([_mpf(t) for t in theta], [[_mpf(c) for c in x] for x in X], [_mpf(t) for t in y])


def _mp_act(a, act):
    if act == "relu":           # its derivatives away from the kink a = 0, where none exists
        if a == 0:
            raise ValueError("a ReLU pre-activation is exactly 0: no derivative")
        return (a, mpmath.mpf(1), mpmath.mpf(0)) if a > 0 else (mpmath.mpf(0), mpmath.mpf(0), mpmath.mpf(0))
    if act == "sigmoid":
        s = 1 / (1 + mpmath.exp(-a))
        return s, s * (1 - s), s * (1 - s) * (1 - 2 * s)
    t = mpmath.tanh(a)
    return t, 1 - t * t, -2 * t * (1 - t * t)


def _mp_point_loss(z, y, loss):
    if loss == "mse":
        return (z - y) ** 2, 2 * (z - y), mpmath.mpf(2)
    p = 1 / (1 + mpmath.exp(-z))
    return mpmath.log(1 + mpmath.exp(z)) - y * z, p - y, p * (1 - p)


def _mp_point(theta, x, act):
    """z, dz/dtheta (list) and d2z/dtheta2 (list of lists) at one input, in mpmath."""
    h, d = _shape(theta, [x])
    P = len(theta)
    z, g = theta[-1], [mpmath.mpf(0)] * P
    H = [[mpmath.mpf(0)] * P for _ in range(P)]
    g[-1] = mpmath.mpf(1)
    for j in range(h):
        a = theta[_ib(j, d)] + mpmath.fsum(theta[_iw(j, k, d)] * x[k] for k in range(d))
        s, ds, dds = _mp_act(a, act)
        v = theta[_iv(j, d)]
        z += v * s
        inner = [_iw(j, k, d) for k in range(d)] + [_ib(j, d)]
        feats = list(x) + [mpmath.mpf(1)]
        g[_iv(j, d)] = s
        for p, fp in zip(inner, feats):
            g[p] = v * ds * fp
            H[_iv(j, d)][p] = H[p][_iv(j, d)] = ds * fp
            for q, fq in zip(inner, feats):
                H[p][q] = v * dds * fp * fq
    return z, g, H


def _mp_totals(theta, X, y, act, loss, dps):
    """Mean loss, gradient and Hessian at `dps` digits (lists of mpf)."""
    with mpmath.workdps(dps):
        th, XX, yy = _mp_inputs(theta, X, y, act, loss)
        P, N = len(th), len(XX)
        L, G = mpmath.mpf(0), [mpmath.mpf(0)] * P
        H = [[mpmath.mpf(0)] * P for _ in range(P)]
        for x, t in zip(XX, yy):
            z, g, hz = _mp_point(th, x, act)
            l, dl, ddl = _mp_point_loss(z, t, loss)
            L += l
            G = [G[i] + dl * g[i] for i in range(P)]
            H = [[H[i][k] + ddl * g[i] * g[k] + dl * hz[i][k] for k in range(P)] for i in range(P)]
        return L / N, [gi / N for gi in G], [[hik / N for hik in row] for row in H]


def mp_loss(theta, X, y, act, loss, dps=50):
    """Mean loss in mpmath at `dps` digits; theta / X / y may be floats or exact strings."""
    with mpmath.workdps(dps):
        th, XX, yy = _mp_inputs(theta, X, y, act, loss)
        total = mpmath.mpf(0)
        for x, t in zip(XX, yy):
            z = th[-1]
            h, d = _shape(th, [x])
            for j in range(h):
                a = th[_ib(j, d)] + mpmath.fsum(th[_iw(j, k, d)] * x[k] for k in range(d))
                z += th[_iv(j, d)] * _mp_act(a, act)[0]
            total += _mp_point_loss(z, t, loss)[0]
        return total / len(XX)


def mp_grad(theta, X, y, act, loss, dps=50):
    """Analytic gradient of the mean loss in mpmath (list of mpf)."""
    return _mp_totals(theta, X, y, act, loss, dps)[1]


def mp_hessian(theta, X, y, act, loss, dps=50):
    """Analytic Hessian of the mean loss in mpmath (mpmath.matrix, built at `dps` digits)."""
    H = _mp_totals(theta, X, y, act, loss, dps)[2]
    with mpmath.workdps(dps):
        return mpmath.matrix(H)


def mp_hessian_fd(theta, X, y, act, loss, dps=50, step="1e-20"):
    """Central differences of mp_grad at `dps` digits (error ~ step^2): an independent Hessian check."""
    with mpmath.workdps(dps):
        th = [_mpf(t) for t in theta]
        hstep = mpmath.mpf(step)
        cols = []
        for i in range(len(th)):
            plus = [t + hstep if k == i else t for k, t in enumerate(th)]
            minus = [t - hstep if k == i else t for k, t in enumerate(th)]
            gp, gm = mp_grad(plus, X, y, act, loss, dps), mp_grad(minus, X, y, act, loss, dps)
            cols.append([(a - b) / (2 * hstep) for a, b in zip(gp, gm)])
        return mpmath.matrix([[cols[k][i] for k in range(len(th))] for i in range(len(th))])


def mp_eigenvalues(H, dps=50):
    """Ascending eigenvalues of a symmetric mpmath matrix."""
    with mpmath.workdps(dps):
        E = mpmath.eigsy(mpmath.matrix(H), eigvals_only=True)
        return sorted(E[i] for i in range(len(E)))


# ---------------------------------------------------------------- how bad a classifier's outputs are

def mp_outputs(theta, X, act, dps=50):
    """sigmoid(z) at every input, in mpmath at `dps` digits (list of mpf)."""
    with mpmath.workdps(dps):
        th, XX, _ = _mp_inputs(theta, X, [0] * len(X), act, "xent")
        return [1 / (1 + mpmath.exp(-_mp_point(th, x, act)[0])) for x in XX]


def ref_decision_margin(p, y):
    """delta* straight from its definition: the largest delta such that counting every point with
    |p - 1/2| < delta as correct still leaves the accuracy below the majority rate (0 if none).  The
    count only changes just above some |p_i - 1/2|, so the largest such delta is one of those (or 0)."""
    n, ones = len(y), sum(1 for t in y if t > 0.5)
    majority = max(ones, n - ones) / n

    def below(delta):
        ok = sum(1 for pi, t in zip(p, y) if ((pi > 0.5) == (t > 0.5) and pi != 0.5) or abs(pi - 0.5) < delta)
        return ok / n < majority
    cands = [abs(pi - 0.5) for pi in p] + [0]
    good = [c for c in cands if below(c)]
    return float(max(good)) if good else 0.0


def ref_auc(p, y):
    """Fraction of (positive, negative) pairs ranked the right way round, ties 1/2."""
    pos = [pi for pi, t in zip(p, y) if t > 0.5]
    neg = [pi for pi, t in zip(p, y) if t <= 0.5]
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg) / (len(pos) * len(neg))


def ref_badness_penalty(theta, X, y, w, kd, target, kc, const_target):
    """The search's robust-badness penalty (engine/search_kernels.badness_grad), by hand in floats:
    kd * sum over the K smallest signed margins m_i (full-weight points) of max(0, m_i + target)^2 plus
    kc * max(0, const_target - (L - L_const))^2, L the w-weighted mean cross-entropy."""
    full = [i for i in range(len(y)) if w[i] == 1.0]
    p = [1 / (1 + math.exp(-_forward(list(theta), list(X[i]), "sigmoid")[0])) for i in range(len(y))]
    m = sorted((2 * y[i] - 1) * (p[i] - 0.5) for i in full)
    ones = sum(1 for i in full if y[i] > 0.5)
    K = len(full) - max(ones, len(full) - ones) + 1
    pen = kd * sum(max(0.0, mi + target) ** 2 for mi in m[:K])
    W = sum(w)
    L = sum(w[i] * -(y[i] * math.log(p[i]) + (1 - y[i]) * math.log(1 - p[i])) for i in range(len(y))) / W
    q = sum(w[i] * y[i] for i in range(len(y))) / W
    const = -(q * math.log(q) + (1 - q) * math.log(1 - q))
    return pen + kc * max(0.0, const_target - (L - const)) ** 2
