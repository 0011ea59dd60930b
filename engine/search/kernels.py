"""Numba kernels of the deadlock search: data-space derivatives of the 2-h-1 sigmoid / cross-entropy
network and the per-candidate optimizers, batched over candidates in parallel threads.

Notation (one candidate; d = 2 inputs, h hidden units, theta in engine/core/layout.py order, P = 4h + 1):

    a_ij = w_j0 x_i0 + w_j1 x_i1 + b_j,   s_ij = sigma(a_ij),   z_i = sum_j v_j s_ij + c,
    L(theta; X) = sum_i omega_i l_i / sum_i omega_i,   l_i = log(1 + e^{z_i}) - y_i z_i,

with point weights omega_i >= 0 (all 1 for an ordinary dataset: L is the mean cross-entropy; the
deletion strategy fades one point's weight to 0).  With p = sigma(z), r = p - y, p1 = p(1-p),
p2 = p1(1-2p), s1 = s(1-s), s2 = s1(1-2s), s3 = s1 - 6 s1^2 and J_i = grad_theta z_i:

    g = grad_theta L = sum_i omega_i r_i J_i / W,       H = sum_i omega_i (p1_i J_i J_i^T + r_i D2z_i) / W,

where D2z_i has entries d2z/dv_j dw_jk = s1 x~_k and d2z/dw_jk dw_jm = v_j s2 x~_k x~_m (x~ = (x0, x1, 1)).
The *mixed* derivative of g with respect to the data point x_i is

    dg/dx_ik = omega_i / W * (p1_i (dz_i/dx_ik) J_i + r_i dJ_i/dx_ik),   dz/dx_k = sum_j v_j s1_j w_jk,

with dJ/dx_k: [v_j] s1 w_jk, [w_jm] v_j (s2 w_jk x_m + s1 delta_mk), [b_j] v_j s2 w_jk, [c] 0.
So d||g||^2/dx_ik = 2 g . dg/dx_ik (the paper's objective, ``gradnorm2_and_grad_x``).

For the eigenvalue margin, lambda(u) = u^T H u for a fixed unit vector u (the eigenvector of the smallest
eigenvalue: d lambda_min = u^T dH u, Hellmann-Feynman).  Per point f_i = p1 (J.u)^2 + r (u^T D2z u) with
q_j = u_wj0 x0 + u_wj1 x1 + u_bj:

    J.u      = u_c + sum_j (u_vj s_j + v_j s1_j q_j)
    u'D2z u  = sum_j (2 u_vj s1_j q_j + v_j s2_j q_j^2)

whose derivatives in x_i, v_j and c (``eig_margin_grad``) need sigma''' (s3).  Everything is closed form:
no automatic differentiation, no finite differences (the tests compare against finite differences).

Optimizers (one candidate, ``optimize_joint`` / ``optimize_paper``; ``optimize_batch`` runs many in
parallel threads, every candidate independent of the others and of the thread count):

* paper: theta fixed, Adam-normalised descent of ||g||^2 over the points (Section 3.1.1 of the paper).
* joint: variables (X, v, c) with the first layer held in the affine gauge it starts in.  Each step is
  a Gauss-Newton (minimum-norm, Levenberg-damped) step towards g = 0 plus the penalty gradient projected
  onto the tangent space of {g = 0}: the penalties keep the smallest Hessian eigenvalue above a margin,
  points apart, coordinates (= pre-activations in the gauge) bounded, and both |v_j| in a band; the
  badness penalties (``badness_grad``) push the decision margin delta* and the loss gap to the best
  constant predictor up, towards robustly bad minima.
"""
from __future__ import annotations

import math

import numpy as np
from numba import prange

from badminima.engine.core.atomic import stopped
from badminima.engine.core.eigen import sym_eig
from badminima.engine.core.fastexp import exp64
from badminima.engine.core.jit import njit
from badminima.engine.core.rng import uniform_at
from badminima.engine.search.blocks import LANES, each_block, each_range, pack, unpack

STREAM_SEARCH = 2          # Philox stream of search starts (0 = initial weights, 1 = SGD order)

# strategy codes
PAPER, JOINT = 0, 1
STRATEGIES = {"paper": PAPER, "joint": JOINT}

# hyper-parameter vector of the optimizers (index constants)
H_ITERS, H_LR, H_MU, H_KEIG, H_DELTA, H_KSEP, H_BOX, H_KBOX, H_VMIN, H_VMAX, H_KV, H_CMAX, H_STEP, \
    H_GTOL, H_KDSTAR, H_DTARGET, H_KCONST, H_CTARGET = range(18)
N_HYPER = 18


# ----------------------------------------------------------------------------------------------------
# per-point quantities
# ----------------------------------------------------------------------------------------------------
@njit(inline="always")
def _sigmoid(a):
    if a >= 0.0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


@njit(inline="always")
def _softplus(z):
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@njit(inline="always")
def _hidden(theta, x0, x1, h, s, s1, s2, s3):
    """Fill s, s', s'', s''' of every unit at point (x0, x1); return the logit z."""
    z = theta[4 * h]
    for j in range(h):
        b = 4 * j
        a = theta[b + 1] * x0 + theta[b + 2] * x1 + theta[b + 3]
        sj = _sigmoid(a)
        d1 = sj * (1.0 - sj)
        s[j] = sj
        s1[j] = d1
        s2[j] = d1 * (1.0 - 2.0 * sj)
        s3[j] = d1 - 6.0 * d1 * d1
        z += theta[b] * sj
    return z


@njit(inline="always")
def _jac_row(theta, x0, x1, h, s, s1, J):
    """J = grad_theta z at one point."""
    for j in range(h):
        b = 4 * j
        t = theta[b] * s1[j]
        J[b] = s[j]
        J[b + 1] = t * x0
        J[b + 2] = t * x1
        J[b + 3] = t
    J[4 * h] = 1.0


@njit
def loss_grad_hess(theta, X, y, w, h, g, H):
    """Weighted mean loss; fills g (P,) and H (P, P) (exact, same as engine.core.model for unit weights)."""
    N = X.shape[0]
    P = 4 * h + 1
    s = np.empty(h)
    s1 = np.empty(h)
    s2 = np.empty(h)
    s3 = np.empty(h)
    J = np.empty(P)
    for p in range(P):
        g[p] = 0.0
        for q in range(P):
            H[p, q] = 0.0
    W = 0.0
    L = 0.0
    for i in range(N):
        wi = w[i]
        if wi == 0.0:
            continue
        W += wi
        x0 = X[i, 0]
        x1 = X[i, 1]
        z = _hidden(theta, x0, x1, h, s, s1, s2, s3)
        p_ = _sigmoid(z)
        r = p_ - y[i]
        p1 = p_ * (1.0 - p_)
        L += wi * (_softplus(z) - y[i] * z)
        _jac_row(theta, x0, x1, h, s, s1, J)
        wr = wi * r
        wp = wi * p1
        for p in range(P):
            g[p] += wr * J[p]
            t = wp * J[p]
            for q in range(p + 1):
                H[p, q] += t * J[q]
        for j in range(h):
            b = 4 * j
            t1 = wr * s1[j]
            H[b + 1, b] += t1 * x0
            H[b + 2, b] += t1 * x1
            H[b + 3, b] += t1
            t2 = wr * theta[b] * s2[j]
            H[b + 1, b + 1] += t2 * x0 * x0
            H[b + 2, b + 1] += t2 * x1 * x0
            H[b + 2, b + 2] += t2 * x1 * x1
            H[b + 3, b + 1] += t2 * x0
            H[b + 3, b + 2] += t2 * x1
            H[b + 3, b + 3] += t2
    inv = 1.0 / W
    for p in range(P):
        g[p] *= inv
        for q in range(p + 1):
            H[p, q] *= inv
            H[q, p] = H[p, q]
    return L * inv


@njit(inline="always")
def _mixed(theta, x0, x1, h, s, s1, s2, p1, r, scale, J, k, col):
    """col = scale * d(r J)/dx_k at one point (the mixed derivative d(grad_theta l)/dx_k)."""
    zx = 0.0
    for j in range(h):
        zx += theta[4 * j] * s1[j] * theta[4 * j + 1 + k]
    a = scale * p1 * zx
    br = scale * r
    for j in range(h):
        b = 4 * j
        v = theta[b]
        wk = theta[b + 1 + k]
        col[b] = a * J[b] + br * s1[j] * wk
        t = v * s2[j] * wk
        col[b + 1] = a * J[b + 1] + br * (t * x0 + (v * s1[j] if k == 0 else 0.0))
        col[b + 2] = a * J[b + 2] + br * (t * x1 + (v * s1[j] if k == 1 else 0.0))
        col[b + 3] = a * J[b + 3] + br * t
    col[4 * h] = a


@njit
def grad_jacobian_x(theta, X, y, w, h, A):
    """A (P, 2N): A[:, 2i + k] = d grad_theta L / d x_ik (analytic mixed derivatives)."""
    N = X.shape[0]
    P = 4 * h + 1
    s = np.empty(h)
    s1 = np.empty(h)
    s2 = np.empty(h)
    s3 = np.empty(h)
    J = np.empty(P)
    col = np.empty(P)
    W = 0.0
    for i in range(N):
        W += w[i]
    for i in range(N):
        x0 = X[i, 0]
        x1 = X[i, 1]
        if w[i] == 0.0:
            for k in range(2):
                for p in range(P):
                    A[p, 2 * i + k] = 0.0
            continue
        z = _hidden(theta, x0, x1, h, s, s1, s2, s3)
        p_ = _sigmoid(z)
        r = p_ - y[i]
        p1 = p_ * (1.0 - p_)
        _jac_row(theta, x0, x1, h, s, s1, J)
        for k in range(2):
            _mixed(theta, x0, x1, h, s, s1, s2, p1, r, w[i] / W, J, k, col)
            for p in range(P):
                A[p, 2 * i + k] = col[p]


@njit
def gradnorm2_and_grad_x(theta, X, y, w, h, gx):
    """The paper's objective ||grad_theta L(theta; X)||^2 and its gradient over the points, gx (N, 2)."""
    N = X.shape[0]
    P = 4 * h + 1
    s = np.empty(h)
    s1 = np.empty(h)
    s2 = np.empty(h)
    s3 = np.empty(h)
    J = np.empty(P)
    col = np.empty(P)
    g = np.zeros(P)
    W = 0.0
    for i in range(N):
        if w[i] == 0.0:
            continue
        W += w[i]
        z = _hidden(theta, X[i, 0], X[i, 1], h, s, s1, s2, s3)
        r = _sigmoid(z) - y[i]
        _jac_row(theta, X[i, 0], X[i, 1], h, s, s1, J)
        for p in range(P):
            g[p] += w[i] * r * J[p]
    gn2 = 0.0
    for p in range(P):
        g[p] /= W
        gn2 += g[p] * g[p]
    for i in range(N):
        gx[i, 0] = 0.0
        gx[i, 1] = 0.0
        if w[i] == 0.0:
            continue
        x0 = X[i, 0]
        x1 = X[i, 1]
        z = _hidden(theta, x0, x1, h, s, s1, s2, s3)
        p_ = _sigmoid(z)
        _jac_row(theta, x0, x1, h, s, s1, J)
        for k in range(2):
            _mixed(theta, x0, x1, h, s, s1, s2, p_ * (1.0 - p_), p_ - y[i], 2.0 * w[i] / W, J, k, col)
            acc = 0.0
            for p in range(P):
                acc += g[p] * col[p]
            gx[i, k] = acc
    return gn2


@njit
def eig_margin_grad(theta, X, y, w, h, u, gx, gv):
    """lambda = u^T H u for a fixed u; gx (N, 2) = d lambda / dX, gv (h + 1,) = d lambda / d(v_0.., c)."""
    N = X.shape[0]
    s = np.empty(h)
    s1 = np.empty(h)
    s2 = np.empty(h)
    s3 = np.empty(h)
    q = np.empty(h)
    for j in range(h + 1):
        gv[j] = 0.0
    W = 0.0
    for i in range(N):
        W += w[i]
    lam = 0.0
    uc = u[4 * h]
    for i in range(N):
        gx[i, 0] = 0.0
        gx[i, 1] = 0.0
        wi = w[i]
        if wi == 0.0:
            continue
        x0 = X[i, 0]
        x1 = X[i, 1]
        z = _hidden(theta, x0, x1, h, s, s1, s2, s3)
        p_ = _sigmoid(z)
        r = p_ - y[i]
        p1 = p_ * (1.0 - p_)
        p2 = p1 * (1.0 - 2.0 * p_)
        Ju = uc
        Qu = 0.0
        for j in range(h):
            b = 4 * j
            q[j] = u[b + 1] * x0 + u[b + 2] * x1 + u[b + 3]
            Ju += u[b] * s[j] + theta[b] * s1[j] * q[j]
            Qu += 2.0 * u[b] * s1[j] * q[j] + theta[b] * s2[j] * q[j] * q[j]
        sc = wi / W
        lam += sc * (p1 * Ju * Ju + r * Qu)
        for k in range(2):
            zx = 0.0
            dJu = 0.0
            dQu = 0.0
            for j in range(h):
                b = 4 * j
                v = theta[b]
                wk = theta[b + 1 + k]
                uwk = u[b + 1 + k]
                zx += v * s1[j] * wk
                dJu += u[b] * s1[j] * wk + v * (s2[j] * wk * q[j] + s1[j] * uwk)
                dQu += 2.0 * u[b] * (s2[j] * wk * q[j] + s1[j] * uwk) \
                    + v * (s3[j] * wk * q[j] * q[j] + 2.0 * s2[j] * q[j] * uwk)
            gx[i, k] = sc * (p2 * zx * Ju * Ju + 2.0 * p1 * Ju * dJu + p1 * zx * Qu + r * dQu)
        for j in range(h):
            gv[j] += sc * (p2 * s[j] * Ju * Ju + 2.0 * p1 * Ju * s1[j] * q[j] + p1 * s[j] * Qu
                           + r * s2[j] * q[j] * q[j])
        gv[h] += sc * (p2 * Ju * Ju + p1 * Qu)
    return lam


# ----------------------------------------------------------------------------------------------------
# small dense linear algebra (no LAPACK calls in the hot loop)
# ----------------------------------------------------------------------------------------------------
@njit
def eig_of(A, d, e, V):
    """Eigen-decomposition of a small symmetric A (n, n), left unchanged: eigenvalues ascending in d,
    eigenvectors in the columns of V, e scratch (n,) (engine/core/eigen.sym_eig, no LAPACK call
    overhead); NaN eigenvalues where A is not finite."""
    n = A.shape[0]
    for i in range(n):
        for j in range(n):
            V[i, j] = A[i, j]
    if not sym_eig(V, d, e):
        for j in range(n):
            d[j] = np.nan


@njit
def min_eig(H):
    """Smallest eigenvalue of a small symmetric matrix."""
    n = H.shape[0]
    ev = np.empty(n)
    V = np.empty((n, n))
    e = np.empty(n)
    eig_of(H, ev, e, V)
    return ev[0]


@njit
def cholesky_solve(M, b, L, out):
    """Solve M out = b for symmetric positive definite M via Cholesky (L scratch); False if not PD."""
    n = M.shape[0]
    for i in range(n):
        for j in range(i + 1):
            acc = M[i, j]
            for k in range(j):
                acc -= L[i, k] * L[j, k]
            if i == j:
                if acc <= 0.0:
                    return False
                L[i, i] = math.sqrt(acc)
            else:
                L[i, j] = acc / L[j, j]
    for i in range(n):
        acc = b[i]
        for k in range(i):
            acc -= L[i, k] * out[k]
        out[i] = acc / L[i, i]
    for i in range(n - 1, -1, -1):
        acc = out[i]
        for k in range(i + 1, n):
            acc -= L[k, i] * out[k]
        out[i] = acc / L[i, i]
    return True


@njit
def gauss_solve(M, b, T, out):
    """Solve M out = b by Gaussian elimination with partial pivoting (T scratch (n, n + 1)); False if
    M is numerically singular."""
    n = M.shape[0]
    scale = 0.0
    for i in range(n):
        for j in range(n):
            T[i, j] = M[i, j]
            scale = max(scale, abs(M[i, j]))
        T[i, n] = b[i]
    for k in range(n):
        piv = k
        for i in range(k + 1, n):
            if abs(T[i, k]) > abs(T[piv, k]):
                piv = i
        if not abs(T[piv, k]) > 1e-14 * scale:
            return False
        if piv != k:
            for j in range(k, n + 1):
                T[k, j], T[piv, j] = T[piv, j], T[k, j]
        for i in range(k + 1, n):
            f = T[i, k] / T[k, k]
            for j in range(k, n + 1):
                T[i, j] -= f * T[k, j]
    for i in range(n - 1, -1, -1):
        acc = T[i, n]
        for j in range(i + 1, n):
            acc -= T[i, j] * out[j]
        out[i] = acc / T[i, i]
    return True


# ----------------------------------------------------------------------------------------------------
# candidate starts
# ----------------------------------------------------------------------------------------------------
@njit
def search_start(seed, index, N, h, n_ones, box, vlo, vhi, X, y, theta):
    """Random start of candidate `index`, a pure function of (seed, index): points uniform in
    [-box, box]^2, the first n_ones labelled 1, theta in the gauge (first layer identity, zero hidden
    biases; for h > 2 unit j reads coordinate j % 2), |v_j| uniform in [vlo, vhi] with random signs,
    c uniform in [-1, 1]."""
    k = 0
    for i in range(N):
        for m in range(2):
            X[i, m] = box * (2.0 * uniform_at(seed, index, STREAM_SEARCH, k) - 1.0)
            k += 1
        y[i] = 1.0 if i < n_ones else 0.0
    for j in range(h):
        b = 4 * j
        mag = vlo + (vhi - vlo) * uniform_at(seed, index, STREAM_SEARCH, k)
        sgn = 1.0 if uniform_at(seed, index, STREAM_SEARCH, k + 1) < 0.5 else -1.0
        k += 2
        theta[b] = sgn * mag
        theta[b + 1] = 1.0 if j % 2 == 0 else 0.0
        theta[b + 2] = 0.0 if j % 2 == 0 else 1.0
        theta[b + 3] = 0.0
    theta[4 * h] = 2.0 * uniform_at(seed, index, STREAM_SEARCH, k) - 1.0


@njit(parallel=True)
def search_starts(seed, indices, N, h, ones, box, vlo, vhi):
    """Starts of the given candidate indices: X (C, N, 2), y (C, N), theta (C, P).
    Candidate n uses the label split ones[n % len(ones)] (number of points labelled 1)."""
    C = indices.shape[0]
    P = 4 * h + 1
    X = np.empty((C, N, 2))
    y = np.empty((C, N))
    th = np.empty((C, P))
    for c in prange(C):
        n = indices[c]
        search_start(seed, n, N, h, ones[n % ones.shape[0]], box, vlo, vhi, X[c], y[c], th[c])
    return X, y, th


# ----------------------------------------------------------------------------------------------------
# optimizers
# ----------------------------------------------------------------------------------------------------
@njit
def _penalty_grad(X, y, w, theta, h, hp, gx, gv, phiX, phiV):
    """Add the separation / box / output-weight penalty gradients to phiX (N, 2), phiV (h + 1)."""
    N = X.shape[0]
    delta, ksep, box, kbox = hp[H_DELTA], hp[H_KSEP], hp[H_BOX], hp[H_KBOX]
    vmin, vmax, kv, cmax = hp[H_VMIN], hp[H_VMAX], hp[H_KV], hp[H_CMAX]
    pen = 0.0
    for i in range(N):
        if w[i] == 0.0:
            continue
        for m in range(2):
            ax = abs(X[i, m])
            if ax > box:
                pen += kbox * (ax - box) ** 2
                phiX[i, m] += 2.0 * kbox * (ax - box) * (1.0 if X[i, m] > 0 else -1.0)
        for k in range(i + 1, N):
            if w[k] == 0.0:
                continue
            d0 = X[i, 0] - X[k, 0]
            d1 = X[i, 1] - X[k, 1]
            dist = math.sqrt(d0 * d0 + d1 * d1)
            if dist < delta:
                pen += ksep * (delta - dist) ** 2
                f = -2.0 * ksep * (delta - dist) / max(dist, 1e-12)
                phiX[i, 0] += f * d0
                phiX[i, 1] += f * d1
                phiX[k, 0] -= f * d0
                phiX[k, 1] -= f * d1
    for j in range(h):
        v = theta[4 * j]
        av = abs(v)
        sg = 1.0 if v >= 0 else -1.0
        if av < vmin:
            pen += kv * (vmin - av) ** 2
            phiV[j] += -2.0 * kv * (vmin - av) * sg
        elif av > vmax:
            pen += kv * (av - vmax) ** 2
            phiV[j] += 2.0 * kv * (av - vmax) * sg
    c = theta[4 * h]
    if abs(c) > cmax:
        pen += kv * (abs(c) - cmax) ** 2
        phiV[h] += 2.0 * kv * (abs(c) - cmax) * (1.0 if c > 0 else -1.0)
    return pen


@njit
def badness_grad(X, y, w, theta, h, hp, gate, g, L, phiX, phiV, m, e, s, s1, s2, s3):
    """Add the robust-badness penalties and their gradients (in X, v_j, c) to phiX (N, 2), phiV (h + 1);
    return the penalty.  Both weights are scaled by gate (in [0, 1]).  Scratch: m, e (N,), s..s3 (h,);
    g = grad_theta L and L the weighted mean loss.

    * decision margin (engine/certify/quality.py): with m_i = (2 y_i - 1)(sigma(z_i) - 1/2) and K = n - n_major + 1
      over the n full-weight points (w_i = 1; a point being faded out does not count), delta* >= target
      holds when the K smallest m_i are <= -target; each of those above it adds kd (m_i + target)^2.
    * constant predictor: kc (target - (L - L_const))^2 while L - L_const < target, L_const the mean
      cross-entropy of the best constant predictor (weighted label mean)."""
    N = X.shape[0]
    kd, dt, kc, ct = gate * hp[H_KDSTAR], hp[H_DTARGET], gate * hp[H_KCONST], hp[H_CTARGET]
    pen = 0.0
    if kd <= 0.0 and kc <= 0.0:
        return pen
    W = 0.0
    Wy = 0.0
    n = 0
    ones = 0
    for i in range(N):
        W += w[i]
        Wy += w[i] * y[i]
        e[i] = 0.0
        if w[i] == 1.0:
            n += 1
            if y[i] > 0.5:
                ones += 1
    fc = 0.0                                    # d pen / d L
    if kc > 0.0 and 0.0 < Wy < W:
        q = Wy / W
        short = ct - (L + q * math.log(q) + (1.0 - q) * math.log(1.0 - q))
        if short > 0.0:
            pen += kc * short * short
            fc = -2.0 * kc * short
            for j in range(h):
                phiV[j] += fc * g[4 * j]
            phiV[h] += fc * g[4 * h]
    if kd > 0.0 and n > 0:
        for i in range(N):
            if w[i] == 1.0:
                z = _hidden(theta, X[i, 0], X[i, 1], h, s, s1, s2, s3)
                m[i] = (2.0 * y[i] - 1.0) * (_sigmoid(z) - 0.5)
            else:
                m[i] = np.inf
        for k in range(n - max(ones, n - ones) + 1):     # the K smallest margins, ties to the lower index
            best = 0
            for i in range(1, N):
                if m[i] < m[best]:
                    best = i
            if m[best] + dt > 0.0:
                e[best] = m[best] + dt
                pen += kd * e[best] * e[best]
            m[best] = np.inf
    for i in range(N):
        if e[i] == 0.0 and fc == 0.0:
            continue
        z = _hidden(theta, X[i, 0], X[i, 1], h, s, s1, s2, s3)
        p_ = _sigmoid(z)
        fm = 2.0 * kd * e[i] * (2.0 * y[i] - 1.0) * p_ * (1.0 - p_)   # margin term: d pen / d z_i
        f = fm + fc * w[i] * (p_ - y[i]) / W                          # + constant term (via L)
        for j in range(h):
            b = 4 * j
            t = f * theta[b] * s1[j]
            phiX[i, 0] += t * theta[b + 1]
            phiX[i, 1] += t * theta[b + 2]
            phiV[j] += fm * s[j]
        phiV[h] += fm
    return pen


@njit
def optimize_joint(X, y, w, theta, h, hp, diag, work):
    """Joint data + output-weight search from (X, theta), in place (see module docstring).

    diag (8,): [||g||, lambda_min, min separation, max |x|, iterations, penalty, loss, converged]; work:
    the caller's stop flag, polled every iteration (engine/core/atomic.stopped)."""
    N = X.shape[0]
    P = 4 * h + 1
    nv = h + 1
    n = 2 * N + nv
    iters = int(hp[H_ITERS])
    mu, keig, step_max, lr, gtol = hp[H_MU], hp[H_KEIG], hp[H_STEP], hp[H_LR], hp[H_GTOL]
    g = np.empty(P)
    H = np.empty((P, P))
    A = np.empty((P, n))
    AX = np.empty((P, 2 * N))
    M = np.empty((P, P))
    Lc = np.empty((P, P))
    alpha = np.empty(P)
    beta = np.empty(P)
    Aphi = np.empty(P)
    ev = np.empty(P)
    V = np.empty((P, P))
    Ms = np.empty((P, P))
    u = np.empty(P)
    gx = np.empty((N, 2))
    gvv = np.empty(nv)
    phiX = np.empty((N, 2))
    phiV = np.empty(nv)
    phi = np.empty(n)
    delta = np.empty(n)
    mb = np.empty(N)
    eb = np.empty(N)
    sb = np.empty((4, h))
    lam = 0.0
    gn = 0.0
    pen = 0.0
    L = 0.0
    it = 0
    for it in range(iters + 1):
        if stopped(work):          # the work was abandoned: the caller discards this block
            return
        L = loss_grad_hess(theta, X, y, w, h, g, H)
        gn = 0.0
        for p in range(P):
            gn += g[p] * g[p]
        gn = math.sqrt(gn)
        eig_of(H, ev, Ms[0], V)
        lam = ev[0]
        if not (math.isfinite(gn) and math.isfinite(lam)):
            break
        for i in range(N):
            phiX[i, 0] = 0.0
            phiX[i, 1] = 0.0
        for j in range(nv):
            phiV[j] = 0.0
        pen = _penalty_grad(X, y, w, theta, h, hp, gx, gvv, phiX, phiV)
        # badness pushes only while the smallest eigenvalue clears the margin (fading out below it), so
        # that it never trades the minimum's strictness for a larger delta*
        gate = min(1.0, max(0.0, lam / mu))
        pen += badness_grad(X, y, w, theta, h, hp, gate, g, L, phiX, phiV, mb, eb, sb[0], sb[1], sb[2], sb[3])
        for k in range(P):
            if ev[k] < mu:
                pen += keig * (mu - ev[k]) ** 2
        if it == iters or (gn < gtol and pen == 0.0):
            break
        for k in range(P):          # every eigenvalue below the margin pushes (Hellmann-Feynman)
            if ev[k] >= mu:
                break
            for p in range(P):
                u[p] = V[p, k]
            eig_margin_grad(theta, X, y, w, h, u, gx, gvv)
            f = -2.0 * keig * (mu - ev[k])
            for i in range(N):
                phiX[i, 0] += f * gx[i, 0]
                phiX[i, 1] += f * gx[i, 1]
            for j in range(nv):
                phiV[j] += f * gvv[j]
        # constraint Jacobian A = dg / d(X, v, c)
        grad_jacobian_x(theta, X, y, w, h, AX)
        for p in range(P):
            for m in range(2 * N):
                A[p, m] = AX[p, m]
            for j in range(h):
                A[p, 2 * N + j] = H[p, 4 * j]
            A[p, 2 * N + h] = H[p, 4 * h]
        tr = 0.0
        for p in range(P):
            for q in range(p + 1):
                acc = 0.0
                for m in range(n):
                    acc += A[p, m] * A[q, m]
                M[p, q] = acc
                M[q, p] = acc
            tr += M[p, p]
        damp = 1e-10 * tr / P + 1e-300
        for p in range(P):
            M[p, p] += damp
        for i in range(N):
            phi[2 * i] = phiX[i, 0]
            phi[2 * i + 1] = phiX[i, 1]
        for j in range(nv):
            phi[2 * N + j] = phiV[j]
        for p in range(P):
            acc = 0.0
            for m in range(n):
                acc += A[p, m] * phi[m]
            Aphi[p] = acc
        ok = cholesky_solve(M, g, Lc, alpha)
        ok = ok and cholesky_solve(M, Aphi, Lc, beta)
        if not ok:
            break
        # Gauss-Newton part (clipped to 2 step_max) + projected penalty part (clipped to step_max)
        big1 = 0.0
        big2 = 0.0
        for m in range(n):
            a1 = 0.0
            a2 = 0.0
            for p in range(P):
                a1 += A[p, m] * alpha[p]
                a2 += A[p, m] * beta[p]
            delta[m] = -a1
            phi[m] = -lr * (phi[m] - a2)
            big1 = max(big1, abs(delta[m]))
            big2 = max(big2, abs(phi[m]))
        sc1 = 1.0 if big1 <= 2.0 * step_max else 2.0 * step_max / big1
        sc2 = 1.0 if big2 <= step_max else step_max / big2
        for m in range(n):
            delta[m] = sc1 * delta[m] + sc2 * phi[m]
        sc = 1.0
        for i in range(N):
            X[i, 0] += sc * delta[2 * i]
            X[i, 1] += sc * delta[2 * i + 1]
        for j in range(h):
            theta[4 * j] += sc * delta[2 * N + j]
        theta[4 * h] += sc * delta[2 * N + h]
    _diagnose(X, w, gn, lam, it, pen, L, diag)
    diag[7] = 1.0 if (gn < gtol and math.isfinite(lam)) else 0.0


@njit
def _diagnose(X, w, gn, lam, it, pen, L, diag):
    N = X.shape[0]
    sep = np.inf
    xm = 0.0
    for i in range(N):
        if w[i] == 0.0:
            continue
        xm = max(xm, abs(X[i, 0]), abs(X[i, 1]))
        for k in range(i + 1, N):
            if w[k] == 0.0:
                continue
            sep = min(sep, math.sqrt((X[i, 0] - X[k, 0]) ** 2 + (X[i, 1] - X[k, 1]) ** 2))
    diag[0] = gn
    diag[1] = lam
    diag[2] = sep
    diag[3] = xm
    diag[4] = it
    diag[5] = pen
    diag[6] = L


@njit
def optimize_paper(X, y, w, theta, h, hp, diag, work):
    """The paper's method: theta fixed, Adam-normalised descent of ||g||^2 over the points, in place
    (work as optimize_joint's)."""
    N = X.shape[0]
    P = 4 * h + 1
    iters = int(hp[H_ITERS])
    lr, gtol = hp[H_LR], hp[H_GTOL]
    gx = np.empty((N, 2))
    m1 = np.zeros((N, 2))
    m2 = np.zeros((N, 2))
    b1, b2 = 0.9, 0.999
    gn2 = 0.0
    it = 0
    for it in range(iters + 1):
        if stopped(work):          # the work was abandoned: the caller discards this block
            return
        gn2 = gradnorm2_and_grad_x(theta, X, y, w, h, gx)
        if not math.isfinite(gn2) or math.sqrt(gn2) < gtol or it == iters:
            break
        c1 = 1.0 - b1 ** (it + 1)
        c2 = 1.0 - b2 ** (it + 1)
        for i in range(N):
            for k in range(2):
                m1[i, k] = b1 * m1[i, k] + (1 - b1) * gx[i, k]
                m2[i, k] = b2 * m2[i, k] + (1 - b2) * gx[i, k] * gx[i, k]
                X[i, k] -= lr * (m1[i, k] / c1) / (math.sqrt(m2[i, k] / c2) + 1e-30)
    g = np.empty(P)
    H = np.empty((P, P))
    L = loss_grad_hess(theta, X, y, w, h, g, H)
    lam = min_eig(H)
    _diagnose(X, w, math.sqrt(gn2), lam, it, 0.0, L, diag)
    diag[7] = 1.0 if math.sqrt(gn2) < gtol else 0.0


@njit(inline="always")
def _sig_fast(a):
    return 1.0 / (1.0 + exp64(-a))


@njit
def paper_block(X, y, w, th, lr, iters, gtol, out, work):
    """The paper's method for a block of B candidates in structure-of-arrays layout, in place.

    X (N, 2, B), y (N, B), w (N, B) point weights, th (9, B) fixed 2-2-1 weights; every loop over
    candidates is innermost and branch-free, so LLVM vectorizes it (exp by fastexp.exp64).  Adam-
    normalised descent of ||grad_theta L||^2 over the points; a lane freezes once ||g|| < gtol.
    out (4, B): ||g||, iterations, 0 (unused), converged; work as optimize_joint's.  B should be a multiple of LANES so that every lane
    runs the same vector code (results then do not depend on how candidates are blocked)."""
    N = X.shape[0]
    B = X.shape[2]
    g = np.zeros((9, B))
    m1 = np.zeros((N, 2, B))
    m2 = np.zeros((N, 2, B))
    S0 = np.empty((N, B))
    S1 = np.empty((N, B))
    R = np.empty((N, B))
    Pp = np.empty((N, B))
    W = np.zeros(B)
    act = np.ones(B)
    its = np.zeros(B)
    gn = np.empty(B)
    for i in range(N):
        for l in range(B):
            W[l] += w[i, l]
    b1, b2 = 0.9, 0.999
    for it in range(iters + 1):
        if stopped(work):          # the work was abandoned: the caller discards this block
            return
        for q in range(9):
            for l in range(B):
                g[q, l] = 0.0
        for i in range(N):
            for l in range(B):
                x0 = X[i, 0, l]
                x1 = X[i, 1, l]
                s0 = _sig_fast(th[1, l] * x0 + th[2, l] * x1 + th[3, l])
                s1 = _sig_fast(th[5, l] * x0 + th[6, l] * x1 + th[7, l])
                z = th[0, l] * s0 + th[4, l] * s1 + th[8, l]
                p = _sig_fast(z)
                wi = w[i, l] / W[l]
                r = wi * (p - y[i, l])
                S0[i, l] = s0
                S1[i, l] = s1
                R[i, l] = p - y[i, l]
                Pp[i, l] = p
                d0 = th[0, l] * s0 * (1.0 - s0) * r
                d1 = th[4, l] * s1 * (1.0 - s1) * r
                g[0, l] += r * s0
                g[1, l] += d0 * x0
                g[2, l] += d0 * x1
                g[3, l] += d0
                g[4, l] += r * s1
                g[5, l] += d1 * x0
                g[6, l] += d1 * x1
                g[7, l] += d1
                g[8, l] += r
        for l in range(B):
            acc = 0.0
            for q in range(9):
                acc += g[q, l] * g[q, l]
            gn[l] = math.sqrt(acc)
            stop = 1.0 if (gn[l] < gtol or not math.isfinite(gn[l])) else 0.0
            act[l] = act[l] * (1.0 - stop)
            its[l] += act[l]
        if it == iters:
            break
        c1 = 1.0 - b1 ** (it + 1)
        c2 = 1.0 - b2 ** (it + 1)
        for i in range(N):
            for l in range(B):
                x0 = X[i, 0, l]
                x1 = X[i, 1, l]
                v0 = th[0, l]
                v1 = th[4, l]
                s0 = S0[i, l]
                s1 = S1[i, l]
                d0 = s0 * (1.0 - s0)
                d1 = s1 * (1.0 - s1)
                e0 = d0 * (1.0 - 2.0 * s0)
                e1 = d1 * (1.0 - 2.0 * s1)
                p = Pp[i, l]
                p1 = p * (1.0 - p)
                r = R[i, l]
                sc = 2.0 * w[i, l] / W[l]
                q0 = x0 * g[1, l] + x1 * g[2, l] + g[3, l]
                q1 = x0 * g[5, l] + x1 * g[6, l] + g[7, l]
                Jg = s0 * g[0, l] + v0 * d0 * q0 + s1 * g[4, l] + v1 * d1 * q1 + g[8, l]
                for k in range(2):
                    w0k = th[1 + k, l]
                    w1k = th[5 + k, l]
                    zx = v0 * d0 * w0k + v1 * d1 * w1k
                    dJg = d0 * w0k * g[0, l] + v0 * (e0 * w0k * q0 + d0 * g[1 + k, l]) \
                        + d1 * w1k * g[4, l] + v1 * (e1 * w1k * q1 + d1 * g[5 + k, l])
                    gxk = sc * (p1 * zx * Jg + r * dJg)
                    m1[i, k, l] = b1 * m1[i, k, l] + (1.0 - b1) * gxk
                    m2[i, k, l] = b2 * m2[i, k, l] + (1.0 - b2) * gxk * gxk
                    X[i, k, l] -= act[l] * lr * (m1[i, k, l] / c1) / (math.sqrt(m2[i, k, l] / c2) + 1e-30)
    for l in range(B):
        out[0, l] = gn[l]
        out[1, l] = its[l]
        out[2, l] = 0.0
        out[3, l] = 1.0 if gn[l] < gtol else 0.0


@njit
def _paper_diag(X, y, w, theta, ob, diag, lo):
    """diag rows lo.. of the candidates of a paper block (ob its out array), as optimize_joint's diag."""
    g = np.empty(9)
    H = np.empty((9, 9))
    for l in range(min(LANES, X.shape[0] - lo)):
        c = lo + l
        L = loss_grad_hess(theta[c], X[c], y[c], w[c], 2, g, H)
        gn = 0.0
        for q in range(9):
            gn += g[q] * g[q]
        _diagnose(X[c], w[c], math.sqrt(gn), min_eig(H), ob[1, l], 0.0, L, diag[c])
        diag[c, 7] = ob[3, l]


def paper_batch(X, y, w, theta, hp, diag):
    """The paper's method for candidates (C, N, 2) etc. via paper_block on padded SoA blocks of LANES
    candidates in parallel threads; fills diag (C, 8) like optimize_joint (lambda_min of the final point)."""
    C = X.shape[0]
    iters = int(hp[H_ITERS])

    def block(lo, work):
        Xb = pack(X, lo, C)
        ob = np.empty((4, LANES))
        paper_block(Xb, pack(y, lo, C), pack(w, lo, C), pack(theta, lo, C), hp[H_LR], iters, hp[H_GTOL], ob, work)
        unpack(Xb, X, lo)
        _paper_diag(X, y, w, theta, ob, diag, lo)
    each_block(block, C)


@njit
def _optimize_range(strategy, X, y, w, theta, h, hp, diag, lo, hi, work):
    for c in range(lo, hi):
        if strategy == PAPER:
            optimize_paper(X[c], y[c], w[c], theta[c], h, hp, diag[c], work)
        else:
            optimize_joint(X[c], y[c], w[c], theta[c], h, hp, diag[c], work)


def optimize_batch(strategy, X, y, w, theta, h, hp, diag):
    """Optimise every candidate c (X[c], y[c], w[c], theta[c]) in place, in parallel threads; diag (C, 8).
    The paper strategy runs the SoA kernel (h = 2 only)."""
    if strategy == PAPER and h == 2:
        paper_batch(X, y, w, theta, hp, diag)
        return
    each_range(lambda lo, hi, work: _optimize_range(strategy, X, y, w, theta, h, hp, diag, lo, hi, work), X.shape[0])


@njit
def newton_polish(X, y, w, theta, h, iters, tol):
    """Newton's method on grad_theta L = 0 in all P weights, data fixed; in place.

    Returns (||g||, lambda_min, max step taken); ||g|| = inf if a solve fails or theta blows up."""
    P = 4 * h + 1
    g = np.empty(P)
    H = np.empty((P, P))
    step = np.empty(P)
    LU = np.empty((P, P + 1))
    moved = 0.0
    for _ in range(iters):
        loss_grad_hess(theta, X, y, w, h, g, H)
        gn = 0.0
        for p in range(P):
            gn += g[p] * g[p]
        if math.sqrt(gn) < tol:
            break
        if not gauss_solve(H, g, LU, step):
            return np.inf, np.nan, moved
        for p in range(P):
            theta[p] -= step[p]
            moved = max(moved, abs(step[p]))
        if not np.all(np.isfinite(theta)) or np.max(np.abs(theta)) > 1e4:
            return np.inf, np.nan, moved
    loss_grad_hess(theta, X, y, w, h, g, H)
    gn = 0.0
    for p in range(P):
        gn += g[p] * g[p]
    return math.sqrt(gn), min_eig(H), moved


@njit
def _polish_range(X, y, w, theta, h, iters, tol, out, lo, hi):
    for c in range(lo, hi):
        a, b, m = newton_polish(X[c], y[c], w[c], theta[c], h, iters, tol)
        out[c, 0] = a
        out[c, 1] = b
        out[c, 2] = m


def polish_batch(X, y, w, theta, h, iters, tol, out):
    """newton_polish for every candidate in parallel threads; out (C, 3) = (||g||, lambda_min, moved)."""
    each_range(lambda lo, hi, work: _polish_range(X, y, w, theta, h, iters, tol, out, lo, hi), X.shape[0])
