"""One d-h-1 network, exactly (libm math, float64): loss, gradient, Hessian, initialization.

These jitted per-network functions are the engine's ground truth for everything that is not the hot
training loop: outcome classification, loss reporting, Newton refinement, the paper checks.  The
training kernels (engine/train/codegen.py) compute the same gradient in SIMD form and are tested against them.
Layout of theta: engine/core/layout.py.  X is (N, d), y is (N,).
"""
from __future__ import annotations

import math

import numpy as np

from badminima.engine.core.jit import njit
from badminima.engine.core.names import GLOROT, NORMAL, SIGMOID, TANH, UNIFORM, XENT
from badminima.engine.core.rng import STREAM_INIT, normal_at, uniform_at


@njit(inline="always")
def act_d012(a, act):
    """Activation value, first and second derivative at pre-activation a."""
    if act == SIGMOID:
        s = 1.0 / (1.0 + math.exp(-a))
        return s, s * (1.0 - s), s * (1.0 - s) * (1.0 - 2.0 * s)
    if act == TANH:
        t = math.tanh(a)
        return t, 1.0 - t * t, -2.0 * t * (1.0 - t * t)
    if a > 0.0:
        return a, 1.0, 0.0
    return 0.0, 0.0, 0.0


@njit(inline="always")
def loss_d012(z, y, loss):
    """Per-point loss, dloss/dz and d2loss/dz2 at output pre-activation z."""
    if loss == XENT:
        # log(1 + e^z) - y z, computed without overflow
        sp = max(z, 0.0) + math.log1p(math.exp(-abs(z)))
        p = 1.0 / (1.0 + math.exp(-z))
        return sp - y * z, p - y, p * (1.0 - p)
    r = z - y
    return r * r, 2.0 * r, 2.0


@njit(inline="always")
def forward_point(theta, X, i, d, h, act, sv, dsv):
    """Output pre-activation z of point i; fills the hidden activations sv and derivatives dsv."""
    S = d + 2
    zi = theta[h * S]
    for j in range(h):
        a = theta[j * S + 1 + d]
        for k in range(d):
            a += theta[j * S + 1 + k] * X[i, k]
        sv[j], dsv[j], _ = act_d012(a, act)
        zi += theta[j * S] * sv[j]
    return zi


@njit
def logits(theta, X, d, h, act):
    """Output pre-activations z_i for every point."""
    z = np.empty(X.shape[0])
    sv = np.empty(h)
    dsv = np.empty(h)
    for i in range(X.shape[0]):
        z[i] = forward_point(theta, X, i, d, h, act, sv, dsv)
    return z


@njit
def logits_many(thetas, X, d, h, act):
    """Output pre-activations of each network (rows of thetas, (n, P)) at every point: (n, N), each row
    what logits gives for it."""
    z = np.empty((thetas.shape[0], X.shape[0]))
    sv = np.empty(h)
    dsv = np.empty(h)
    for r in range(thetas.shape[0]):
        for i in range(X.shape[0]):
            z[r, i] = forward_point(thetas[r], X, i, d, h, act, sv, dsv)
    return z


@njit
def loss_acc_grad_sum(theta, X, y, d, h, act, loss, g, sv, dsv):
    """(summed loss, correct count) and the summed gradient into g, in caller-owned scratch (sv, dsv:
    length h): no allocation, so the same code serves a CPU loop over networks and a CUDA thread."""
    N = X.shape[0]
    S = d + 2
    for p in range(g.shape[0]):
        g[p] = 0.0
    total = 0.0
    correct = 0
    for i in range(N):
        zi = forward_point(theta, X, i, d, h, act, sv, dsv)
        li, ri, _ = loss_d012(zi, y[i], loss)
        total += li
        if (zi > 0.0) == (y[i] > 0.5):
            correct += 1
        g[h * S] += ri
        for j in range(h):
            g[j * S] += ri * sv[j]
            dj = ri * theta[j * S] * dsv[j]
            for k in range(d):
                g[j * S + 1 + k] += dj * X[i, k]
            g[j * S + 1 + d] += dj
    return total, correct


@njit
def evaluate(theta, X, y, d, h, act, loss):
    """(mean loss, accuracy, gradient of the mean loss); accuracy is NaN for regression."""
    N = X.shape[0]
    g = np.empty(h * (d + 2) + 1)
    total, correct = loss_acc_grad_sum(theta, X, y, d, h, act, loss, g, np.empty(h), np.empty(h))
    acc = correct / N if loss == XENT else np.nan
    return total / N, acc, g / N


@njit
def hessian_sum(theta, X, y, d, h, act, loss, H, J, xa, sv, dsv, d2sv):
    """N times the exact Hessian of the mean loss into H (P x P): sum_i l''_i J_i J_i^T + l'_i d2z_i
    (ReLU'' taken as 0), in caller-owned scratch (J: P, xa: d + 1, sv, dsv, d2sv: h)."""
    N = X.shape[0]
    S = d + 2
    P = h * S + 1
    for p in range(P):
        for q in range(P):
            H[p, q] = 0.0
    xa[d] = 1.0                    # the point with a trailing 1, so the bias is weight index d
    for i in range(N):
        for k in range(d):
            xa[k] = X[i, k]
        zi = theta[h * S]
        J[h * S] = 1.0
        for j in range(h):
            a = theta[j * S + 1 + d]
            for k in range(d):
                a += theta[j * S + 1 + k] * xa[k]
            s, ds, d2s = act_d012(a, act)
            sv[j], dsv[j], d2sv[j] = s, ds, d2s
            zi += theta[j * S] * s
            J[j * S] = s
            for k in range(d + 1):
                J[j * S + 1 + k] = theta[j * S] * ds * xa[k]
        _, r, dd = loss_d012(zi, y[i], loss)
        for p in range(P):
            for q in range(P):
                H[p, q] += dd * J[p] * J[q]
        # second derivatives of z: within one unit only
        for j in range(h):
            base = j * S
            for k in range(d + 1):
                # d2z / dv_j dw_jk = s'_j x_k
                t = r * dsv[j] * xa[k]
                H[base, base + 1 + k] += t
                H[base + 1 + k, base] += t
                for m in range(d + 1):
                    # d2z / dw_jk dw_jm = v_j s''_j x_k x_m
                    H[base + 1 + k, base + 1 + m] += r * theta[base] * d2sv[j] * xa[k] * xa[m]


@njit
def hessian(theta, X, y, d, h, act, loss):
    """Exact Hessian of the mean loss (P x P)."""
    P = h * (d + 2) + 1
    H = np.empty((P, P))
    hessian_sum(theta, X, y, d, h, act, loss, H, np.empty(P), np.empty(d + 1), np.empty(h), np.empty(h), np.empty(h))
    return H / X.shape[0]


@njit
def init_theta(seed, index, d, h, law, scale, zero_bias, out):
    """Write network `index`'s random start into out (length P); pure function of (seed, index).

    Parameter p of the layout takes the p-th draw of stream STREAM_INIT, so each value depends
    only on (seed, index, p).  Laws: normal(scale), uniform(-scale, scale), Glorot-uniform, He-normal
    (fan-in d for the first layer, h for the output layer).
    """
    S = d + 2
    P = h * S + 1
    for p in range(P):
        is_out = (p == h * S) or (p % S == 0)          # v_j or c
        is_bias = (p == h * S) or (p % S == d + 1)     # b_j or c
        if zero_bias and is_bias:
            out[p] = 0.0
            continue
        fan_in = h if is_out else d
        fan_out = 1 if is_out else h
        if law == NORMAL:
            out[p] = scale * normal_at(seed, index, STREAM_INIT, p)
        elif law == UNIFORM:
            out[p] = scale * (2.0 * uniform_at(seed, index, STREAM_INIT, p) - 1.0)
        elif law == GLOROT:
            lim = math.sqrt(6.0 / (fan_in + fan_out))
            out[p] = lim * (2.0 * uniform_at(seed, index, STREAM_INIT, p) - 1.0)
        else:
            out[p] = math.sqrt(2.0 / fan_in) * normal_at(seed, index, STREAM_INIT, p)


@njit
def init_many(seed, start, stop, d, h, law, scale, zero_bias):
    """Random starts of networks start..stop-1 as an (n, P) array."""
    P = h * (d + 2) + 1
    out = np.empty((stop - start, P))
    for n in range(start, stop):
        init_theta(seed, n, d, h, law, scale, zero_bias, out[n - start])
    return out
