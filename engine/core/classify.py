"""Final classification of trained networks, in float64 with the exact model (engine/core/model.py).

The kernel stops a network early only when the stop is final (non-finite values; a solved network
whose finality certificate holds); every other network runs its whole budget.  This pass classifies
the state each network ends in, exactly:
  * non-finite loss, gradient or weights                              -> diverged
  * stopped with a finality certificate, or 100% training accuracy
    (regression: mean squared error <= solve_tol) at the end            -> solved
  * ||grad|| <= gtol and max|theta| > wmax                              -> drifting
  * ||grad|| <= gtol and a Newton step shorter than xtol (a finite critical point is that close,
    see newton_dist), split by the smallest Hessian eigenvalue at that critical point (critical_eig)
                                                                      -> local minimum / saddle / flat
  * ||grad|| <= drift_gtol, max|theta| >= drift_wmin and
    -grad . theta > 0 (the descent direction makes theta grow)        -> drifting
  * otherwise                                                         -> out of steps
"""
from __future__ import annotations

import math

import numpy as np

from badminima.engine.core.atomic import fetch_add
from badminima.engine.core.eigen import sym_eig
from badminima.engine.core.jit import njit
from badminima.engine.core.model import hessian_sum, loss_acc_grad_sum
from badminima.engine.core.names import XENT
from badminima.engine.core.outcomes import DIVERGED, DRIFTING, FLAT, LOCAL_MINIMUM, OUT_OF_STEPS, SADDLE, SOLVED

# Rows of the per-network scratch W (SCRATCH_ROWS x P) that end_state_w and the finisher work in, with
# a P x P matrix for the Hessian and its eigenvectors: preallocated once per CPU thread, or local
# memory of one CUDA thread (P >= h + 1 and >= d + 2, so every vector fits a row).
G, GT, PG, TRIAL, CUR, TH, LAM, E, GV, C, J, SV, DSV, D2SV, XA = range(15)
SCRATCH_ROWS = 15


@njit(inline="always")
def max_abs(v):
    """max |v_p|; NaN if any entry is NaN (as np.max(np.abs(v)))."""
    m = 0.0
    for p in range(v.shape[0]):
        a = abs(v[p])
        if a > m or a != a:
            m = a
    return m


@njit
def eval_into(th, X, y, d, h, act, loss, g, W):
    """(mean loss, accuracy or NaN, ||grad||) at th, the mean gradient into g (rows SV, DSV of W as scratch)."""
    N = X.shape[0]
    total, correct = loss_acc_grad_sum(th, X, y, d, h, act, loss, g, W[SV], W[DSV])
    s = 0.0
    for p in range(g.shape[0]):
        g[p] = g[p] / N
        s += g[p] * g[p]
    return total / N, (correct / N if loss == XENT else np.nan), math.sqrt(s)


@njit
def eig_hessian(th, X, y, d, h, act, loss, Hm, W):
    """The exact Hessian's eigenvalues (ascending) into W[LAM] and eigenvectors into Hm's columns;
    False if the Hessian is not finite."""
    hessian_sum(th, X, y, d, h, act, loss, Hm, W[J], W[XA], W[SV], W[DSV], W[D2SV])
    N = X.shape[0]
    for p in range(Hm.shape[0]):
        for q in range(Hm.shape[1]):
            Hm[p, q] = Hm[p, q] / N
    return sym_eig(Hm, W[LAM], W[E])


@njit
def project(Hm, v, out):
    """out = V^T v: v in the eigenbasis held in Hm's columns."""
    P = v.shape[0]
    for i in range(P):
        s = 0.0
        for p in range(P):
            s += Hm[p, i] * v[p]
        out[i] = s


@njit
def move(Hm, c, base, out):
    """out = base + V c, V the eigenbasis in Hm's columns."""
    P = base.shape[0]
    for p in range(P):
        s = 0.0
        for i in range(P):
            s += Hm[p, i] * c[i]
        out[p] = base[p] + s


@njit
def newton_trial(Hm, lam, gv, c, base, out):
    """out = base + the Newton step -H^-1 g (H's eigenvalues lam, eigenvectors in Hm's columns, g in that
    basis gv; directions with |eigenvalue| <= 1e-12, flat ones of a degenerate point, left alone);
    returns the step's length.  c: scratch for the step in the eigenbasis."""
    s = 0.0
    for i in range(lam.shape[0]):
        c[i] = -gv[i] / lam[i] if abs(lam[i]) > 1e-12 else 0.0
        s += c[i] * c[i]
    move(Hm, c, base, out)
    return math.sqrt(s)


REFINE_ITER = 8        # Newton steps at most towards the critical point next to a state


@njit
def critical_eig(th, gn, X, y, d, h, act, loss, xtol, Hm, W):
    """The smallest Hessian eigenvalue of the finite critical point next to th, for the local minimum /
    saddle / flat split.  On entry W[G] holds th's gradient (norm gn), Hm and W[LAM] its Hessian's
    decomposition and W[GV] the gradient in that basis, as end_state_w leaves them.  At th itself the
    gradient is small but not zero, and the Hessian differs from the critical point's by about the
    gradient's size: on a ReLU network, whose critical points are flat (a unit's (w, b) scaled by a and
    v by 1/a leave the outputs as they are) and, where every unit's v is non-zero, positive
    semi-definite (the v-w cross terms are the w-gradient over v), a gradient of 1e-7 left eigenvalues
    of -1e-7, far beyond the split's 1e-8.  So Newton's method on grad L = 0 goes there first: steps of
    at most xtol while the gradient norm falls (newton_trial).  The eigenvalue is that of the last point
    reached whose Hessian is finite.  Overwrites Hm and the rows CUR, TRIAL, PG, GT, LAM, GV, C, E, J,
    XA, SV, DSV, D2SV of W (not G, TH)."""
    P = th.shape[0]
    cur, trial, g, gt, lam, gv, c = W[CUR], W[TRIAL], W[PG], W[GT], W[LAM], W[GV], W[C]
    for p in range(P):
        cur[p] = th[p]
        g[p] = W[G, p]
    lam0 = lam[0]
    for _ in range(REFINE_ITER):
        if gn == 0.0 or not newton_trial(Hm, lam, gv, c, cur, trial) <= xtol:
            break
        _, _, gnt = eval_into(trial, X, y, d, h, act, loss, gt, W)
        if not gnt < gn:
            break
        for p in range(P):
            cur[p] = trial[p]
            g[p] = gt[p]
        gn = gnt
        if not eig_hessian(cur, X, y, d, h, act, loss, Hm, W):
            break
        lam0 = lam[0]
        project(Hm, g, gv)
    return lam0


@njit(inline="always")
def newton_dist(lam, gv):
    """Length of the Newton step -H^-1 g from H's eigenvalues lam and g in its eigenbasis gv.

    A small gradient alone does not make a critical point: on a plateau that runs off to infinity
    the gradient decays too, with the Hessian (eigenvalues ~1e-8) decaying with it.  The Newton step
    tells them apart: at a finite critical point it is ~||g|| / lambda and tiny; on a plateau it is
    long.  Eigenvalues below 1e-12 in size count as 1e-12 (a flat direction with a zero gradient
    component adds nothing)."""
    s = 0.0
    for i in range(lam.shape[0]):
        q = gv[i] / max(abs(lam[i]), 1e-12)
        s += q * q
    return math.sqrt(s)


@njit
def end_state_w(th, certified, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol, drift_wmin,
                eig_tol, W, Hm):
    """end_state in caller-owned scratch: W (SCRATCH_ROWS x P) and Hm (P x P), per CPU thread or a
    CUDA thread's local memory."""
    g = W[G]
    L, acc, gn = eval_into(th, X, y, d, h, act, loss, g, W)
    wm = max_abs(th)
    lam = np.nan
    if not (math.isfinite(L) and math.isfinite(wm) and math.isfinite(gn)):
        code = DIVERGED
    elif certified or (acc == 1.0 if loss == XENT else L <= solve_tol):
        code = SOLVED
    else:
        code = OUT_OF_STEPS
        if gn <= gtol:
            if wm > wmax:
                code = DRIFTING
            elif eig_hessian(th, X, y, d, h, act, loss, Hm, W):
                project(Hm, g, W[GV])
                if newton_dist(W[LAM], W[GV]) <= xtol:
                    lam = critical_eig(th, gn, X, y, d, h, act, loss, xtol, Hm, W)
                    code = LOCAL_MINIMUM if lam > eig_tol else (SADDLE if lam < -eig_tol else FLAT)
        if code == OUT_OF_STEPS and gn <= drift_gtol and wm >= drift_wmin:
            s = 0.0
            for p in range(th.shape[0]):
                s += g[p] * th[p]
            if -s > 0.0:
                code = DRIFTING
    return code, L, acc, gn, lam


@njit
def end_state(th, certified, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol, drift_wmin,
              eig_tol):
    """Classify one state (see the module docstring): (code, mean loss, accuracy, ||grad||, lambda_min
    or NaN).  `certified`: the kernel stopped it with a finality certificate (solved)."""
    P = th.shape[0]
    return end_state_w(th, certified, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol,
                       drift_wmin, eig_tol, np.empty((SCRATCH_ROWS, P)), np.empty((P, P)))


# networks per block that classify claims: a few atomic operations per block, not per network
CLASSIFY_BLOCK = 256


@njit
def classify_one(th, raw, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol, drift_wmin, eig_tol,
                 W, Hm):
    """The final (outcome, mean loss, accuracy, ||grad||, lambda_min or NaN) of one network from its end
    weights th and the kernel's code raw (DIVERGED, SOLVED: certified, or OUT_OF_STEPS: ran its whole
    budget): end_state's values, bit for bit.  The common cases (non-finite, solved, gradient too large
    for a critical point or a drift) are decided from one pass; the others (small gradient: a Hessian
    may be needed) go through end_state_w itself.  W, Hm: as end_state_w's.  Bit for bit on the CPU;
    compiled for a GPU, fused multiply-adds and libdevice's exp may round differently."""
    L, acc, gn = eval_into(th, X, y, d, h, act, loss, W[G], W)
    wm = max_abs(th)
    if not (math.isfinite(L) and math.isfinite(wm) and math.isfinite(gn)):
        code, lam = DIVERGED, np.nan
    elif raw == SOLVED or (acc == 1.0 if loss == XENT else L <= solve_tol):
        code, lam = SOLVED, np.nan
    elif gn > gtol and not (gn <= drift_gtol and wm >= drift_wmin):
        code, lam = OUT_OF_STEPS, np.nan
    else:
        code, L, acc, gn, lam = end_state_w(th, False, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax,
                                            drift_gtol, drift_wmin, eig_tol, W, Hm)
    return (DIVERGED if raw == DIVERGED else code), L, acc, gn, lam


@njit
def classify(theta, raw, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol, drift_wmin, eig_tol,
             out_code, out_loss, out_acc, out_gnorm, out_eig, counter):
    """classify_one for every network (theta n x P, raw n), into the out_* arrays.  Blocks of
    CLASSIFY_BLOCK networks are claimed from counter[0], shared by the threads calling this."""
    n, P = theta.shape
    W = np.empty((SCRATCH_ROWS, P))
    Hm = np.empty((P, P))
    while True:
        b = fetch_add(counter, 0, 1)
        if b * CLASSIFY_BLOCK >= n:
            return
        for k in range(b * CLASSIFY_BLOCK, min(n, (b + 1) * CLASSIFY_BLOCK)):
            code, L, acc, gn, lam = classify_one(theta[k], raw[k], X, y, d, h, act, loss, gtol, xtol, solve_tol,
                                                 wmax, drift_gtol, drift_wmin, eig_tol, W, Hm)
            out_code[k] = code
            out_loss[k] = L
            out_acc[k] = acc
            out_gnorm[k] = gn
            out_eig[k] = lam
