"""Final classification of trained networks, in float64 with the exact model (engine/core/model.py).

The kernel stops a network early only when the stop is final (non-finite values; a solved network
whose finality certificate holds); every other network runs its whole budget.  This pass classifies
the state each network ends in, exactly:
  * non-finite loss, gradient or weights                              -> diverged
  * stopped with a finality certificate, or 100% training accuracy
    (regression: mean squared error <= solve_tol) at the end            -> solved
  * ||grad|| <= gtol and max|theta| > wmax                              -> drifting
  * ||grad|| <= gtol and a Newton step shorter than xtol (a finite critical point is that close,
    see newton_step), split by the smallest Hessian eigenvalue       -> local minimum / saddle / flat
  * ||grad|| <= drift_gtol, max|theta| >= drift_wmin and
    -grad . theta > 0 (the descent direction makes theta grow)        -> drifting
  * otherwise                                                         -> out of steps
"""
from __future__ import annotations

import math

import numpy as np

from badminima.engine.core.atomic import fetch_add
from badminima.engine.core.jit import njit
from badminima.engine.core.model import evaluate, forward_point, hessian, loss_d012
from badminima.engine.core.names import XENT
from badminima.engine.core.outcomes import DIVERGED, DRIFTING, FLAT, LOCAL_MINIMUM, OUT_OF_STEPS, SADDLE, SOLVED


@njit
def newton_step(H, g):
    """(length of the Newton step -H^-1 g, smallest eigenvalue of H), in H's eigenbasis.

    A small gradient alone does not make a critical point: on a plateau that runs off to infinity
    the gradient decays too, with the Hessian (eigenvalues ~1e-8) decaying with it.  The Newton step
    tells them apart: at a finite critical point it is ~||g|| / lambda and tiny; on a plateau it is
    long.  Eigenvalues below 1e-12 in size count as 1e-12 (a flat direction with a zero gradient
    component adds nothing)."""
    lam, V = np.linalg.eigh(H)
    gv = V.T @ g
    s = 0.0
    for i in range(lam.shape[0]):
        q = gv[i] / max(abs(lam[i]), 1e-12)
        s += q * q
    return math.sqrt(s), lam[0]


@njit
def end_state(th, certified, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol, drift_wmin,
              eig_tol):
    """Classify one state (see the module docstring): (code, mean loss, accuracy, ||grad||, lambda_min
    or NaN).  `certified`: the kernel stopped it with a finality certificate (solved)."""
    L, acc, g = evaluate(th, X, y, d, h, act, loss)
    gn = math.sqrt(np.sum(g * g))
    wm = np.max(np.abs(th))
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
            else:
                dist, lmin = newton_step(hessian(th, X, y, d, h, act, loss), g)
                if dist <= xtol:
                    lam = lmin
                    code = LOCAL_MINIMUM if lam > eig_tol else (SADDLE if lam < -eig_tol else FLAT)
        if code == OUT_OF_STEPS and gn <= drift_gtol and wm >= drift_wmin and -np.dot(g, th) > 0.0:
            code = DRIFTING
    return code, L, acc, gn, lam


# networks per block that classify claims: a few atomic operations per block, not per network
CLASSIFY_BLOCK = 256


@njit(inline="always")
def _loss_acc_grad(th, X, y, d, h, act, loss, g, sv, dsv):
    """evaluate()'s (summed loss, correct count) and summed gradient into g, with the same operations
    in the same order (so the same bits) but into caller-owned scratch: no allocation per network."""
    N = X.shape[0]
    S = d + 2
    for p in range(g.shape[0]):
        g[p] = 0.0
    total = 0.0
    correct = 0
    for i in range(N):
        zi = forward_point(th, X, i, d, h, act, sv, dsv)
        li, ri, _ = loss_d012(zi, y[i], loss)
        total += li
        if (zi > 0.0) == (y[i] > 0.5):
            correct += 1
        g[h * S] += ri
        for j in range(h):
            g[j * S] += ri * sv[j]
            dj = ri * th[j * S] * dsv[j]
            for k in range(d):
                g[j * S + 1 + k] += dj * X[i, k]
            g[j * S + 1 + d] += dj
    return total, correct


@njit
def classify(theta, raw, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol, drift_wmin, eig_tol,
             out_code, out_loss, out_acc, out_gnorm, out_eig, counter):
    """Fill the final outcome, mean loss, accuracy, ||grad|| and lambda_min (NaN if not computed) of
    every network from its end weights and the kernel's code (DIVERGED, SOLVED: certified, or
    OUT_OF_STEPS: ran its whole budget): end_state's values, bit for bit.  The common cases (non-finite,
    solved, gradient too large for a critical point or a drift) are decided here from one pass without
    allocating; the others (small gradient: a Hessian may be needed) go through end_state itself.
    Blocks of CLASSIFY_BLOCK networks are claimed from counter[0], shared by the threads calling this."""
    n, P = theta.shape
    N = X.shape[0]
    g = np.empty(P)
    sv = np.empty(h)
    dsv = np.empty(h)
    while True:
        b = fetch_add(counter, 0, 1)
        if b * CLASSIFY_BLOCK >= n:
            return
        for k in range(b * CLASSIFY_BLOCK, min(n, (b + 1) * CLASSIFY_BLOCK)):
            th = theta[k]
            total, correct = _loss_acc_grad(th, X, y, d, h, act, loss, g, sv, dsv)
            L = total / N
            acc = correct / N if loss == XENT else np.nan
            s = 0.0
            wm = 0.0
            for p in range(P):
                gp = g[p] / N
                s += gp * gp
                wm = max(wm, abs(th[p]))
            gn = math.sqrt(s)
            if not (math.isfinite(L) and math.isfinite(wm) and math.isfinite(gn)):
                code, lam = DIVERGED, np.nan
            elif raw[k] == SOLVED or (acc == 1.0 if loss == XENT else L <= solve_tol):
                code, lam = SOLVED, np.nan
            elif gn > gtol and not (gn <= drift_gtol and wm >= drift_wmin):
                code, lam = OUT_OF_STEPS, np.nan
            else:
                code, L, acc, gn, lam = end_state(th, False, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax,
                                                  drift_gtol, drift_wmin, eig_tol)
            out_code[k] = DIVERGED if raw[k] == DIVERGED else code
            out_loss[k] = L
            out_acc[k] = acc
            out_gnorm[k] = gn
            out_eig[k] = lam
