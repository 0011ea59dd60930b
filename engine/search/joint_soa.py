"""The joint optimizer of the deadlock search vectorized across candidates (Numba, jitted).

Same iteration as ``kernels.optimize_joint`` (see that module's docstring for the mathematics), for a
block of LANES candidates of the 2-2-1 network in structure-of-arrays layout: every per-candidate
quantity carries a trailing lane axis and every loop over lanes is innermost and branch-free, so LLVM
turns it into SIMD code (exp by ``fastexp.exp64``).  Layout of a block (B = LANES, N points):

    X (N, 2, B) points, y (N, B) labels, w (N, B) point weights, th (9, B) weights in layout order,
    out (8, B) = [||g||, lambda_min, min separation, max |x|, iterations, penalty, loss, converged].

What differs from the scalar optimizer, all of it exact in real arithmetic:

* the eigen-decomposition of the 9x9 Hessian is a cyclic Jacobi method, batched over lanes and warm
  started from the previous iteration's eigenvectors (H changes little per step, so one or two sweeps
  usually finish it); each lane stops rotating once its own off-diagonal mass is below
  ``JACOBI_TOL`` times its Frobenius norm, so a lane's result never depends on its block mates;
* the eigenvalue-margin push sum_k f_k grad(u_k' H u_k) over the eigenvalues below the margin
  (f_k = -2 keig (mu - lambda_k)) is one pass with the matrix G = sum_k f_k u_k u_k' instead of one
  pass per eigenvector: grad tr(G H) (``_eig_push``);
* sigmoids use the vectorizable exp (``exp64``, ~2 ulp) instead of libm's, and sums run in other
  orders in places.

So a lane follows the scalar trajectory to rounding, and the two can part where the trajectory is
sensitive (tests/test_search_vec.py measures how often that changes a verdict).  A lane that stops
(converged, diverged, a failed solve, or the iteration budget) freezes: its state is no longer
updated, exactly as the scalar loop's ``break``; a block ends when all its lanes have stopped.
"""
from __future__ import annotations

import math

import numpy as np

import llvmlite.binding as _llvm

from badminima.engine.core.atomic import stopped
from badminima.engine.core.jit import data_ptr, njit
from badminima.engine.search import jacobi9 as J9
from badminima.engine.search.blocks import LANES, each_block, pack, unpack
from badminima.engine.search.kernels import (H_BOX, H_CMAX, H_CTARGET, H_DELTA, H_DTARGET, H_GTOL, H_ITERS,
                                             H_KBOX, H_KCONST, H_KDSTAR, H_KEIG, H_KSEP, H_KV, H_LR, H_MU,
                                             H_STEP, H_VMAX, H_VMIN, JOINT, _sig_fast as _sig,
                                             optimize_batch as _scalar_batch)


# The lane loops here touch several arrays, so LLVM vectorizes them only behind runtime overlap checks,
# and gives up beyond 8 of them by default; allow more (a code-generation choice, never a result one:
# without fast-math a vectorized loop rounds exactly like the scalar one).
_llvm.set_option("", "--runtime-memory-check-threshold=256")
assert J9.LANES == LANES, "regenerate jacobi9.py (python -m badminima.engine.search.make_jacobi9)"
P = 9                      # parameters of the 2-2-1 network (layout: v0 w00 w01 b0 v1 w10 w11 b1 c)
JACOBI_TOL = 1e-15         # a lane's Jacobi stops when ||offdiag||_F <= JACOBI_TOL ||H||_F
JACOBI_MAX_SWEEPS = 30
REORTHO_EVERY = 64         # re-orthonormalise the carried eigenvectors (Gram-Schmidt) this often


@njit
def _jacobi(Hm, V, Bm, conv, skip, sweep_c):
    """Eigen-decomposition of the symmetric Hm (9, 9, B) warm started from the orthogonal V (9, 9, B):
    Bm = V' Hm V, then cyclic Jacobi sweeps on Bm accumulating the rotations into V, per lane until
    ||offdiag(Bm)||_F <= JACOBI_TOL ||Bm||_F.  On return the eigenvalues are diag(Bm) (unsorted) and the
    eigenvectors the columns of V.  Lanes with skip[l] = 1 (non-finite input) are not rotated.
    conv (B,) is scratch; sweep_c is jacobi9.sweep_c() (one sweep, called through its address).
    Returns the number of sweeps run."""
    B = Hm.shape[2]
    T = np.empty((P, P, B))
    # each sum runs over k inside the lane loop (a constant trip count, unrolled): the partial sums stay in
    # registers instead of going to memory and back once per term; the same terms in the same order
    for p in range(P):                      # T = Hm V
        for q in range(P):
            for l in range(B):
                t = 0.0
                for k in range(P):
                    t += Hm[p, k, l] * V[k, q, l]
                T[p, q, l] = t
    for p in range(P):                      # Bm = V' T (symmetrised)
        for q in range(p + 1):
            for l in range(B):
                t = 0.0
                for k in range(P):
                    t += V[k, p, l] * T[k, q, l]
                Bm[p, q, l] = t
    for p in range(P):
        for q in range(p):
            for l in range(B):
                Bm[q, p, l] = Bm[p, q, l]
    nrm = np.zeros(B)
    for p in range(P):
        for q in range(P):
            for l in range(B):
                nrm[l] += Bm[p, q, l] * Bm[p, q, l]
    st = np.empty(J9.ROWS * LANES)                  # the sweep's flat state (jacobi9.py's layout)
    for p in range(P):
        for q in range(p + 1):
            o = (p * (p + 1) // 2 + q) * LANES
            for l in range(LANES):
                st[o + l] = Bm[p, q, l]
        for k in range(P):
            o = (J9.V0 + P * p + k) * LANES
            for l in range(LANES):
                st[o + l] = V[p, k, l]
    tol2 = JACOBI_TOL * JACOBI_TOL
    sweeps = 0
    off = np.empty(B)
    for sweep in range(JACOBI_MAX_SWEEPS + 1):
        for l in range(B):
            off[l] = 0.0
        for p in range(1, P):
            for q in range(p):
                o = (p * (p + 1) // 2 + q) * LANES
                for l in range(LANES):
                    off[l] += 2.0 * st[o + l] * st[o + l]
        left = 0
        for l in range(B):
            c = 1.0 if (skip[l] > 0.0 or off[l] <= tol2 * nrm[l]) else 0.0
            conv[l] = c
            st[J9.CONV * LANES + l] = c
            left += 1 if c == 0.0 else 0
        if left == 0 or sweep == JACOBI_MAX_SWEEPS:
            break
        sweeps += 1
        sweep_c(data_ptr(st))
    for p in range(P):
        for q in range(p + 1):
            o = (p * (p + 1) // 2 + q) * LANES
            for l in range(LANES):
                Bm[p, q, l] = st[o + l]
                Bm[q, p, l] = st[o + l]
        for k in range(P):
            o = (J9.V0 + P * p + k) * LANES
            for l in range(LANES):
                V[p, k, l] = st[o + l]
    return sweeps


@njit
def _reortho(V, skip):
    """Modified Gram-Schmidt on the columns of V (9, 9, B), lanes with skip[l] = 1 untouched."""
    B = V.shape[2]
    d = np.empty(B)
    nn = np.empty(B)
    for q in range(P):
        for k in range(q):
            for l in range(B):
                d[l] = 0.0
            for r in range(P):
                for l in range(B):
                    d[l] += V[r, k, l] * V[r, q, l]
            for r in range(P):
                for l in range(B):
                    V[r, q, l] = V[r, q, l] - (0.0 if skip[l] > 0.0 else d[l]) * V[r, k, l]
        for l in range(B):
            nn[l] = 0.0
        for r in range(P):
            for l in range(B):
                nn[l] += V[r, q, l] * V[r, q, l]
        for l in range(B):
            nn[l] = 1.0 if skip[l] > 0.0 else 1.0 / math.sqrt(nn[l])
        for r in range(P):
            for l in range(B):
                V[r, q, l] *= nn[l]


@njit
def _cholesky_solve2(M, b1, b2, Lc, o1, o2, ok):
    """Solve M o1 = b1 and M o2 = b2 per lane by Cholesky (M (9, 9, B) symmetric, Lc scratch);
    ok[l] = 0 where a pivot is <= 0 (not positive definite), as ``kernels.cholesky_solve``."""
    B = M.shape[2]
    acc = np.empty(B)
    a2 = np.empty(B)
    for l in range(B):
        ok[l] = 1.0
    for i in range(P):
        for j in range(i + 1):
            for l in range(B):
                acc[l] = M[i, j, l]
            for k in range(j):
                for l in range(B):
                    acc[l] -= Lc[i, k, l] * Lc[j, k, l]
            if i == j:
                for l in range(B):
                    ok[l] = 0.0 if acc[l] <= 0.0 else ok[l]
                    Lc[i, i, l] = math.sqrt(acc[l] if acc[l] > 0.0 else 1.0)
            else:
                for l in range(B):
                    Lc[i, j, l] = acc[l] / Lc[j, j, l]
    for i in range(P):
        for l in range(B):
            acc[l] = b1[i, l]
            a2[l] = b2[i, l]
        for k in range(i):
            for l in range(B):
                acc[l] -= Lc[i, k, l] * o1[k, l]
                a2[l] -= Lc[i, k, l] * o2[k, l]
        for l in range(B):
            o1[i, l] = acc[l] / Lc[i, i, l]
            o2[i, l] = a2[l] / Lc[i, i, l]
    for i in range(P - 1, -1, -1):
        for l in range(B):
            acc[l] = o1[i, l]
            a2[l] = o2[i, l]
        for k in range(i + 1, P):
            for l in range(B):
                acc[l] -= Lc[k, i, l] * o1[k, l]
                a2[l] -= Lc[k, i, l] * o2[k, l]
        for l in range(B):
            o1[i, l] = acc[l] / Lc[i, i, l]
            o2[i, l] = a2[l] / Lc[i, i, l]


@njit
def _forward(X, y, w, th, invW, S, S1, S2, S3, Pp, R, Jm, g, H):
    """Per point and lane: s, s', s'', s''' of both units (S.. (2, N, B)), p, r = p - y, the logit's
    gradient Jm (N, 9, B); g (9, B) and H (9, 9, B) of the weighted mean loss (full symmetric)."""
    N = X.shape[0]
    B = X.shape[2]
    wr_ = np.empty(B)
    wp_ = np.empty(B)
    for p in range(P):
        for l in range(B):
            g[p, l] = 0.0
        for q in range(P):
            for l in range(B):
                H[p, q, l] = 0.0
    for i in range(N):
        for l in range(B):
            x0 = X[i, 0, l]
            x1 = X[i, 1, l]
            s0 = _sig(th[1, l] * x0 + th[2, l] * x1 + th[3, l])
            s1 = _sig(th[5, l] * x0 + th[6, l] * x1 + th[7, l])
            d0 = s0 * (1.0 - s0)
            d1 = s1 * (1.0 - s1)
            S[0, i, l] = s0
            S[1, i, l] = s1
            S1[0, i, l] = d0
            S1[1, i, l] = d1
            S2[0, i, l] = d0 * (1.0 - 2.0 * s0)
            S2[1, i, l] = d1 * (1.0 - 2.0 * s1)
            S3[0, i, l] = d0 - 6.0 * d0 * d0
            S3[1, i, l] = d1 - 6.0 * d1 * d1
            z = th[8, l] + th[0, l] * s0 + th[4, l] * s1
            pz = _sig(z)
            Pp[i, l] = pz
            R[i, l] = pz - y[i, l]
            t0 = th[0, l] * d0
            t1 = th[4, l] * d1
            Jm[i, 0, l] = s0
            Jm[i, 1, l] = t0 * x0
            Jm[i, 2, l] = t0 * x1
            Jm[i, 3, l] = t0
            Jm[i, 4, l] = s1
            Jm[i, 5, l] = t1 * x0
            Jm[i, 6, l] = t1 * x1
            Jm[i, 7, l] = t1
            Jm[i, 8, l] = 1.0
        for l in range(B):              # the point's factors, hoisted out of the 9 + 45 loops below
            wr_[l] = w[i, l] * R[i, l]
            wp_[l] = w[i, l] * Pp[i, l] * (1.0 - Pp[i, l])
        for p in range(P):
            for l in range(B):
                g[p, l] += wr_[l] * Jm[i, p, l]
        for p in range(P):
            for q in range(p + 1):
                for l in range(B):
                    H[p, q, l] += wp_[l] * Jm[i, p, l] * Jm[i, q, l]
        for j in range(2):
            b = 4 * j
            for l in range(B):
                wr = w[i, l] * R[i, l]
                x0 = X[i, 0, l]
                x1 = X[i, 1, l]
                t1 = wr * S1[j, i, l]
                H[b + 1, b, l] += t1 * x0
                H[b + 2, b, l] += t1 * x1
                H[b + 3, b, l] += t1
                t2 = wr * th[b, l] * S2[j, i, l]
                H[b + 1, b + 1, l] += t2 * x0 * x0
                H[b + 2, b + 1, l] += t2 * x1 * x0
                H[b + 2, b + 2, l] += t2 * x1 * x1
                H[b + 3, b + 1, l] += t2 * x0
                H[b + 3, b + 2, l] += t2 * x1
                H[b + 3, b + 3, l] += t2
    for p in range(P):
        for l in range(B):
            g[p, l] *= invW[l]
        for q in range(p + 1):
            for l in range(B):
                H[p, q, l] *= invW[l]
                H[q, p, l] = H[p, q, l]


@njit
def _penalties(X, w, th, hp, phiX, phiV, pen):
    """Separation, box and output-weight band penalties (``kernels._penalty_grad``), branch-free:
    pen (B,) and the gradients phiX (N, 2, B), phiV (3, B) are overwritten."""
    N = X.shape[0]
    B = X.shape[2]
    delta, ksep, box, kbox = hp[H_DELTA], hp[H_KSEP], hp[H_BOX], hp[H_KBOX]
    vmin, vmax, kv, cmax = hp[H_VMIN], hp[H_VMAX], hp[H_KV], hp[H_CMAX]
    for l in range(B):
        pen[l] = 0.0
    for i in range(N):
        for m in range(2):
            for l in range(B):
                phiX[i, m, l] = 0.0
    for i in range(N):
        for m in range(2):
            for l in range(B):
                x = X[i, m, l]
                e = abs(x) - box
                e = e if (e > 0.0 and w[i, l] != 0.0) else 0.0
                pen[l] += kbox * e * e
                phiX[i, m, l] += 2.0 * kbox * e * (1.0 if x > 0 else -1.0)
        for k in range(i + 1, N):
            for l in range(B):
                d0 = X[i, 0, l] - X[k, 0, l]
                d1 = X[i, 1, l] - X[k, 1, l]
                dist = math.sqrt(d0 * d0 + d1 * d1)
                e = delta - dist
                e = e if (e > 0.0 and w[i, l] != 0.0 and w[k, l] != 0.0) else 0.0
                pen[l] += ksep * e * e
                f = -2.0 * ksep * e / max(dist, 1e-12)
                phiX[i, 0, l] += f * d0
                phiX[i, 1, l] += f * d1
                phiX[k, 0, l] -= f * d0
                phiX[k, 1, l] -= f * d1
    for j in range(3):
        for l in range(B):
            v = th[4 * j, l]
            av = abs(v)
            sg = 1.0 if v >= 0 else -1.0
            if j < 2:
                lo = vmin - av
                lo = lo if lo > 0.0 else 0.0
                hi = av - vmax
                hi = hi if (hi > 0.0 and lo == 0.0) else 0.0
            else:
                lo = 0.0
                hi = av - cmax
                hi = hi if hi > 0.0 else 0.0
                sg = 1.0 if v > 0 else -1.0
            pen[l] += kv * lo * lo + kv * hi * hi
            phiV[j, l] = -2.0 * kv * lo * sg + 2.0 * kv * hi * sg


@njit
def _badness(X, y, w, th, hp, gate, S, S1, Pp, g, Lc_, Wl, Kl, Lq, margins, e, phiX, phiV, pen):
    """The robust-badness penalties of ``kernels.badness_grad`` per lane: the K smallest signed margins
    (K = Kl[l], ties to the lower index) pushed towards -target, and (kconst > 0) L - L_const pushed up
    (Lq[l] = -L_const, NaN when one class has all the weight; Lc_ (B,) the loss).  Adds to pen, phiX,
    phiV; margins, e (N, B) scratch."""
    N = X.shape[0]
    B = X.shape[2]
    kd0, dt, kc0, ct = hp[H_KDSTAR], hp[H_DTARGET], hp[H_KCONST], hp[H_CTARGET]
    if kd0 <= 0.0 and kc0 <= 0.0:
        return
    kmax = 0
    for l in range(B):
        kmax = max(kmax, Kl[l])
    fc = np.zeros(B)
    if kc0 > 0.0:
        for l in range(B):
            kc = gate[l] * kc0
            short = ct - (Lc_[l] - Lq[l])
            on = kc > 0.0 and Lq[l] == Lq[l] and short > 0.0
            pen[l] += kc * short * short if on else 0.0
            fc[l] = -2.0 * kc * short if on else 0.0
        for j in range(3):
            for l in range(B):
                phiV[j, l] += fc[l] * g[4 * j, l]
    for i in range(N):
        for l in range(B):
            e[i, l] = 0.0
            full = w[i, l] == 1.0
            margins[i, l] = (2.0 * y[i, l] - 1.0) * (Pp[i, l] - 0.5) if full else np.inf
    if kd0 > 0.0:
        bv = np.empty(B)
        bi = np.zeros(B, np.int64)
        for k in range(kmax):
            for l in range(B):
                bv[l] = margins[0, l]
                bi[l] = 0
            for i in range(1, N):
                for l in range(B):
                    lt = margins[i, l] < bv[l]
                    bv[l] = margins[i, l] if lt else bv[l]
                    bi[l] = i if lt else bi[l]
            for i in range(N):
                for l in range(B):
                    kd = gate[l] * kd0
                    hit = i == bi[l] and k < Kl[l] and kd > 0.0
                    ee = margins[i, l] + dt
                    on = hit and ee > 0.0
                    e[i, l] = ee if on else e[i, l]
                    pen[l] += kd * ee * ee if on else 0.0
                    margins[i, l] = np.inf if hit else margins[i, l]
    for i in range(N):
        for l in range(B):
            kd = gate[l] * kd0
            pz = Pp[i, l]
            fm = 2.0 * kd * e[i, l] * (2.0 * y[i, l] - 1.0) * pz * (1.0 - pz)
            f = fm + fc[l] * w[i, l] * (pz - y[i, l]) / Wl[l]
            t0 = f * th[0, l] * S1[0, i, l]
            t1 = f * th[4, l] * S1[1, i, l]
            phiX[i, 0, l] += t0 * th[1, l] + t1 * th[5, l]
            phiX[i, 1, l] += t0 * th[2, l] + t1 * th[6, l]
            phiV[0, l] += fm * S[0, i, l]
            phiV[1, l] += fm * S[1, i, l]
            phiV[2, l] += fm


@njit
def _eig_push(X, w, th, invW, G, S, S1, S2, S3, Pp, R, Jm, phiX, phiV):
    """Add grad over (X, v0, v1, c) of tr(G H) to phiX (N, 2, B), phiV (3, B); G (9, 9, B) symmetric.
    With G = sum_k f_k u_k u_k' this is sum_k f_k grad(u_k' H u_k), the eigenvalue-margin push
    (``kernels.eig_margin_grad`` per eigenvector); per point, with GJ = G J:
      tr(G D2z) = sum_j 2 s1_j (G[v_j, w_j] . x~) + v_j s2_j x~' G_jj x~,
      d tr(G H_i) = d(p1) J'GJ + 2 p1 dJ'GJ + d(p1 z-part)... (see tests/test_search_vec.py)."""
    N = X.shape[0]
    B = X.shape[2]
    GJ = np.empty((P, B))
    for i in range(N):
        for p in range(P):
            for l in range(B):
                t = 0.0
                for q in range(P):
                    t += G[p, q, l] * Jm[i, q, l]
                GJ[p, l] = t
        for l in range(B):
            x0 = X[i, 0, l]
            x1 = X[i, 1, l]
            sc = w[i, l] * invW[l]
            pz = Pp[i, l]
            p1 = pz * (1.0 - pz)
            p2 = p1 * (1.0 - 2.0 * pz)
            r = R[i, l]
            JGJ = 0.0
            for p in range(P):
                JGJ += Jm[i, p, l] * GJ[p, l]
            trGD = 0.0
            dtr0 = 0.0
            dtr1 = 0.0
            dJ0 = 0.0
            dJ1 = 0.0
            zx0 = 0.0
            zx1 = 0.0
            gvj0 = 0.0
            gvj1 = 0.0
            for j in range(2):
                b = 4 * j
                v = th[b, l]
                wj0 = th[b + 1, l]
                wj1 = th[b + 2, l]
                s = S[j, i, l]
                s1 = S1[j, i, l]
                s2 = S2[j, i, l]
                s3 = S3[j, i, l]
                tvw = G[b, b + 1, l] * x0 + G[b, b + 2, l] * x1 + G[b, b + 3, l]
                q0 = G[b + 1, b + 1, l] * x0 + G[b + 1, b + 2, l] * x1 + G[b + 1, b + 3, l]
                q1 = G[b + 2, b + 1, l] * x0 + G[b + 2, b + 2, l] * x1 + G[b + 2, b + 3, l]
                q2 = G[b + 3, b + 1, l] * x0 + G[b + 3, b + 2, l] * x1 + G[b + 3, b + 3, l]
                xGx = x0 * q0 + x1 * q1 + q2
                trGD += 2.0 * s1 * tvw + v * s2 * xGx
                dtr0 += 2.0 * (s2 * wj0 * tvw + s1 * G[b, b + 1, l]) + v * (s3 * wj0 * xGx + 2.0 * s2 * q0)
                dtr1 += 2.0 * (s2 * wj1 * tvw + s1 * G[b, b + 2, l]) + v * (s3 * wj1 * xGx + 2.0 * s2 * q1)
                xgw = x0 * GJ[b + 1, l] + x1 * GJ[b + 2, l] + GJ[b + 3, l]
                dJ0 += s1 * wj0 * GJ[b, l] + v * s2 * wj0 * xgw + v * s1 * GJ[b + 1, l]
                dJ1 += s1 * wj1 * GJ[b, l] + v * s2 * wj1 * xgw + v * s1 * GJ[b + 2, l]
                zx0 += v * s1 * wj0
                zx1 += v * s1 * wj1
                gv = p2 * s * JGJ + 2.0 * p1 * s1 * xgw + r * s2 * xGx
                if j == 0:
                    gvj0 = gv
                else:
                    gvj1 = gv
            phiX[i, 0, l] += sc * (p2 * zx0 * JGJ + 2.0 * p1 * dJ0 + p1 * zx0 * trGD + r * dtr0)
            phiX[i, 1, l] += sc * (p2 * zx1 * JGJ + 2.0 * p1 * dJ1 + p1 * zx1 * trGD + r * dtr1)
            phiV[0, l] += sc * (gvj0 + p1 * S[0, i, l] * trGD)
            phiV[1, l] += sc * (gvj1 + p1 * S[1, i, l] * trGD)
            phiV[2, l] += sc * (p2 * JGJ + p1 * trGD)


@njit
def _constraint_jacobian(X, w, th, invW, S1, S2, Pp, R, Jm, H, A):
    """A (9, 2N + 3, B) = d grad_theta L / d(X, v0, v1, c): the analytic mixed derivatives
    (``kernels._mixed``) for the points, the Hessian's v0, v1, c columns for the output weights."""
    N = X.shape[0]
    B = X.shape[2]
    for i in range(N):
        for k in range(2):
            m = 2 * i + k
            for l in range(B):
                sc = w[i, l] * invW[l]
                pz = Pp[i, l]
                zx = th[0, l] * S1[0, i, l] * th[1 + k, l] + th[4, l] * S1[1, i, l] * th[5 + k, l]
                a = sc * pz * (1.0 - pz) * zx
                br = sc * R[i, l]
                x0 = X[i, 0, l]
                x1 = X[i, 1, l]
                for j in range(2):
                    b = 4 * j
                    v = th[b, l]
                    wk = th[b + 1 + k, l]
                    s1 = S1[j, i, l]
                    t = v * S2[j, i, l] * wk
                    A[b, m, l] = a * Jm[i, b, l] + br * s1 * wk
                    A[b + 1, m, l] = a * Jm[i, b + 1, l] + br * (t * x0 + (v * s1 if k == 0 else 0.0))
                    A[b + 2, m, l] = a * Jm[i, b + 2, l] + br * (t * x1 + (v * s1 if k == 1 else 0.0))
                    A[b + 3, m, l] = a * Jm[i, b + 3, l] + br * t
                A[8, m, l] = a
    for p in range(P):
        for j in range(3):
            for l in range(B):
                A[p, 2 * N + j, l] = H[p, 4 * j, l]


@njit
def joint_block(X, y, w, th, hp, out, sweep_c, work):
    """``kernels.optimize_joint`` for a block of B candidates in SoA layout (module docstring), in
    place.  B should be LANES so that every lane runs the same vector code.  sweep_c: jacobi9.sweep_c();
    work: the caller's stop flag, polled every iteration (engine/core/atomic.stopped)."""
    N = X.shape[0]
    B = X.shape[2]
    n = 2 * N + 3
    iters = int(hp[H_ITERS])
    mu, keig, step_max, lr, gtol = hp[H_MU], hp[H_KEIG], hp[H_STEP], hp[H_LR], hp[H_GTOL]
    kc0 = hp[H_KCONST]
    S = np.empty((2, N, B))
    S1 = np.empty((2, N, B))
    S2 = np.empty((2, N, B))
    S3 = np.empty((2, N, B))
    Pp = np.empty((N, B))
    R = np.empty((N, B))
    Jm = np.empty((N, P, B))
    g = np.empty((P, B))
    H = np.empty((P, P, B))
    V = np.zeros((P, P, B))
    Bm = np.empty((P, P, B))
    G = np.empty((P, P, B))
    A = np.empty((P, n, B))
    M = np.empty((P, P, B))
    Lc = np.zeros((P, P, B))
    Aphi = np.empty((P, B))
    alpha = np.empty((P, B))
    beta = np.empty((P, B))
    phiX = np.empty((N, 2, B))
    phiV = np.empty((3, B))
    phi = np.empty((n, B))
    dlt = np.empty((n, B))
    margins = np.empty((N, B))
    eb = np.empty((N, B))
    conv = np.empty(B)
    skip = np.empty(B)
    ok = np.empty(B)
    gate = np.empty(B)
    pen = np.empty(B)
    lam = np.empty(B)
    gn = np.empty(B)
    hsum = np.empty(B)
    fk = np.empty((P, B))
    Lcur = np.zeros(B)
    act = np.ones(B)
    W = np.zeros(B)
    invW = np.empty(B)
    Wy = np.zeros(B)
    Kl = np.zeros(B, np.int64)
    Lq = np.empty(B)
    d_gn = np.full(B, np.nan)
    d_lam = np.full(B, np.nan)
    d_pen = np.zeros(B)
    d_it = np.zeros(B)
    pen_prev = np.zeros(B)
    big1 = np.empty(B)
    big2 = np.empty(B)
    for p in range(P):
        for l in range(B):
            V[p, p, l] = 1.0
    for l in range(B):
        nfull = 0
        ones = 0
        for i in range(N):
            W[l] += w[i, l]
            Wy[l] += w[i, l] * y[i, l]
            if w[i, l] == 1.0:
                nfull += 1
                if y[i, l] > 0.5:
                    ones += 1
        invW[l] = 1.0 / W[l]
        Kl[l] = nfull - max(ones, nfull - ones) + 1 if nfull > 0 else 0
        if 0.0 < Wy[l] < W[l]:
            q = Wy[l] / W[l]
            Lq[l] = -(q * math.log(q) + (1.0 - q) * math.log(1.0 - q))     # = L_const
        else:
            Lq[l] = np.nan
    for it in range(iters + 1):
        if stopped(work):          # the work was abandoned: the caller discards this block
            return
        nact = 0
        for l in range(B):
            nact += 1 if act[l] > 0.0 else 0
        if nact == 0:
            break
        _forward(X, y, w, th, invW, S, S1, S2, S3, Pp, R, Jm, g, H)
        if kc0 > 0.0:
            for l in range(B):
                Lcur[l] = _lane_loss(X, y, w, th, invW, l)
        for l in range(B):
            gn[l] = 0.0
            hsum[l] = 0.0
        for p in range(P):
            for l in range(B):
                gn[l] += g[p, l] * g[p, l]
            for q in range(P):
                for l in range(B):
                    hsum[l] += H[p, q, l]
        for l in range(B):
            gn[l] = math.sqrt(gn[l])
            skip[l] = 0.0 if (math.isfinite(hsum[l]) and act[l] > 0.0) else 1.0
        if it > 0 and it % REORTHO_EVERY == 0:
            _reortho(V, skip)
        _jacobi(H, V, Bm, conv, skip, sweep_c)
        for l in range(B):
            lam[l] = np.inf
        for k in range(P):
            for l in range(B):
                lam[l] = min(lam[l], Bm[k, k, l])
        for l in range(B):
            lam[l] = lam[l] if skip[l] == 0.0 else np.nan
        for l in range(B):           # non-finite: stop before any penalty (pen stays the previous one)
            bad = act[l] > 0.0 and not (math.isfinite(gn[l]) and math.isfinite(lam[l]))
            if bad:
                d_gn[l] = gn[l]
                d_lam[l] = lam[l]
                d_pen[l] = pen_prev[l]
                d_it[l] = it
                act[l] = 0.0
        _penalties(X, w, th, hp, phiX, phiV, pen)
        for l in range(B):
            gate[l] = min(1.0, max(0.0, lam[l] / mu))
        _badness(X, y, w, th, hp, gate, S, S1, Pp, g, Lcur, W, Kl, Lq, margins, eb, phiX, phiV, pen)
        push = 0
        for k in range(P):
            for l in range(B):
                e = mu - Bm[k, k, l]
                e = e if e > 0.0 else 0.0
                pen[l] += keig * e * e
                push += 1 if (e > 0.0 and act[l] > 0.0) else 0
        for l in range(B):
            stop = act[l] > 0.0 and (it == iters or (gn[l] < gtol and pen[l] == 0.0))
            if stop:
                d_gn[l] = gn[l]
                d_lam[l] = lam[l]
                d_pen[l] = pen[l]
                d_it[l] = it
                act[l] = 0.0
            pen_prev[l] = pen[l]
        if it == iters:
            break
        if push > 0:                  # G = sum_k f_k u_k u_k', f_k = -2 keig (mu - lambda_k) below mu
            for k in range(P):
                for l in range(B):
                    e = mu - Bm[k, k, l]
                    fk[k, l] = -2.0 * keig * e if e > 0.0 else 0.0
            for p in range(P):
                for q in range(p + 1):
                    for l in range(B):
                        t = 0.0
                        for k in range(P):
                            t += V[p, k, l] * fk[k, l] * V[q, k, l]
                        G[p, q, l] = t
                        G[q, p, l] = t
            _eig_push(X, w, th, invW, G, S, S1, S2, S3, Pp, R, Jm, phiX, phiV)
        _constraint_jacobian(X, w, th, invW, S1, S2, Pp, R, Jm, H, A)
        for p in range(P):
            for q in range(p + 1):
                for l in range(B):
                    M[p, q, l] = 0.0
                for m in range(n):
                    for l in range(B):
                        M[p, q, l] += A[p, m, l] * A[q, m, l]
                for l in range(B):
                    M[q, p, l] = M[p, q, l]
        for l in range(B):
            tr = 0.0
            for p in range(P):
                tr += M[p, p, l]
            damp = 1e-10 * tr / P + 1e-300
            for p in range(P):
                M[p, p, l] += damp
        for i in range(N):
            for l in range(B):
                phi[2 * i, l] = phiX[i, 0, l]
                phi[2 * i + 1, l] = phiX[i, 1, l]
        for j in range(3):
            for l in range(B):
                phi[2 * N + j, l] = phiV[j, l]
        for p in range(P):
            for l in range(B):
                Aphi[p, l] = 0.0
            for m in range(n):
                for l in range(B):
                    Aphi[p, l] += A[p, m, l] * phi[m, l]
        _cholesky_solve2(M, g, Aphi, Lc, alpha, beta, ok)
        for l in range(B):
            if act[l] > 0.0 and ok[l] == 0.0:
                d_gn[l] = gn[l]
                d_lam[l] = lam[l]
                d_pen[l] = pen[l]
                d_it[l] = it
                act[l] = 0.0
        for l in range(B):
            big1[l] = 0.0
            big2[l] = 0.0
        for m in range(n):
            for l in range(B):
                a1 = 0.0
                a2 = 0.0
                for p in range(P):
                    a1 += A[p, m, l] * alpha[p, l]
                    a2 += A[p, m, l] * beta[p, l]
                dlt[m, l] = -a1
                phi[m, l] = -lr * (phi[m, l] - a2)
                big1[l] = max(big1[l], abs(dlt[m, l]))
                big2[l] = max(big2[l], abs(phi[m, l]))
        for l in range(B):
            big1[l] = 1.0 if big1[l] <= 2.0 * step_max else 2.0 * step_max / big1[l]
            big2[l] = 1.0 if big2[l] <= step_max else step_max / big2[l]
        for i in range(N):
            for k in range(2):
                for l in range(B):
                    m = 2 * i + k
                    d = big1[l] * dlt[m, l] + big2[l] * phi[m, l]
                    X[i, k, l] = X[i, k, l] + d if act[l] > 0.0 else X[i, k, l]
        for j in range(3):
            for l in range(B):
                m = 2 * N + j
                d = big1[l] * dlt[m, l] + big2[l] * phi[m, l]
                th[4 * j, l] = th[4 * j, l] + d if act[l] > 0.0 else th[4 * j, l]
    for l in range(B):
        sep = np.inf
        xm = 0.0
        for i in range(N):
            if w[i, l] == 0.0:
                continue
            xm = max(xm, abs(X[i, 0, l]), abs(X[i, 1, l]))
            for k in range(i + 1, N):
                if w[k, l] == 0.0:
                    continue
                sep = min(sep, math.sqrt((X[i, 0, l] - X[k, 0, l]) ** 2 + (X[i, 1, l] - X[k, 1, l]) ** 2))
        out[0, l] = d_gn[l]
        out[1, l] = d_lam[l]
        out[2, l] = sep
        out[3, l] = xm
        out[4, l] = d_it[l]
        out[5, l] = d_pen[l]
        out[6, l] = _lane_loss(X, y, w, th, invW, l)
        out[7, l] = 1.0 if (d_gn[l] < gtol and math.isfinite(d_lam[l])) else 0.0


@njit
def _lane_loss(X, y, w, th, invW, l):
    """Weighted mean cross-entropy of lane l (libm log1p: not vectorized, used once per lane unless
    the constant-predictor push needs it every step)."""
    L = 0.0
    for i in range(X.shape[0]):
        x0 = X[i, 0, l]
        x1 = X[i, 1, l]
        s0 = _sig(th[1, l] * x0 + th[2, l] * x1 + th[3, l])
        s1 = _sig(th[5, l] * x0 + th[6, l] * x1 + th[7, l])
        z = th[8, l] + th[0, l] * s0 + th[4, l] * s1
        L += w[i, l] * (max(z, 0.0) + math.log1p(math.exp(-abs(z))) - y[i, l] * z)
    return L * invW[l]


def joint_batch(X, y, w, theta, hp, diag):
    """The joint optimizer for candidates X (C, N, 2), y (C, N), w (C, N), theta (C, 9) in place, diag
    (C, 8), via joint_block on SoA blocks of LANES candidates in parallel threads (padding lanes repeat
    the last candidate); every candidate's result is independent of its block mates and of the threads."""
    C = X.shape[0]
    sweep = J9.sweep_c()

    def block(lo, work):
        Xb, tb = pack(X, lo, C), pack(theta, lo, C)
        ob = np.empty((8, LANES))
        joint_block(Xb, pack(y, lo, C), pack(w, lo, C), tb, hp, ob, sweep, work)
        unpack(Xb, X, lo)
        unpack(tb, theta, lo)
        unpack(ob, diag, lo)
    each_block(block, C)


def optimize(strategy: int, X, y, w, theta, h: int, hp, diag) -> None:
    """Optimise every candidate in place (``kernels.optimize_batch``'s contract): the joint strategy at
    h = 2 by the SoA kernel above, everything else by kernels.optimize_batch."""
    if strategy == JOINT and h == 2:
        joint_batch(X, y, w, theta, hp, diag)
    else:
        _scalar_batch(strategy, X, y, w, theta, h, hp, diag)
