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
from numba import prange

from badminima.engine.core.jit import njit
from badminima.engine.core.model import evaluate, hessian
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


@njit(parallel=True)
def classify(theta, raw, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol, drift_wmin, eig_tol,
             out_code, out_loss, out_acc, out_gnorm, out_eig):
    """Fill the final outcome, mean loss, accuracy, ||grad|| and lambda_min (NaN if not computed) of
    every network from its end weights and the kernel's code (DIVERGED, SOLVED: certified, or
    OUT_OF_STEPS: ran its whole budget)."""
    for k in prange(theta.shape[0]):
        code, out_loss[k], out_acc[k], out_gnorm[k], out_eig[k] = end_state(
            theta[k], raw[k] == SOLVED, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol,
            drift_wmin, eig_tol)
        out_code[k] = DIVERGED if raw[k] == DIVERGED else code
