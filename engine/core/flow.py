"""The second-order finisher, one network: follow a network that the optimizer left unresolved at the
end of its budget (out of steps, or drifting by the end-of-budget rule) along the gradient flow, far
beyond the budget, and classify it where the flow takes it (float64, exact model).

Gradient descent with a small learning rate follows the gradient flow d(theta)/dt = -grad L, and a
run of `steps` steps at learning rate lr covers flow time lr * steps.  The finisher continues the
same flow for up to `horizon` more flow time (by default 100 times the budget's: what a 100 times
longer run would reach) with exponential-integrator steps: over a time step tau it moves along the
exact flow of the local quadratic model, delta = -sum_i (1 - exp(-lambda_i tau)) / lambda_i
(g . v_i) v_i in the eigenbasis (lambda_i, v_i) of the exact Hessian.  This is exact in stiff
directions whatever tau (they converge as the flow does, without the lag of an implicit step), so
tau grows while the quadratic model predicts the loss change well (and the flow covers long plateaus
in few steps); where the curvature is negative, tau <= 2 / |lambda_min| keeps the model's
exponential run-away faithful (the finisher leaves a saddle no faster than the flow does).  A step
is taken only if it lowers the loss.  The run stops

  * at a finite critical point (||grad|| <= gtol, a Newton step shorter than xtol, max|theta| <=
    wmax); Newton's method lands on it exactly, also from wherever the Hessian is positive definite
    and the Newton step shorter than POLISH_RADIUS (the flow converges to the same minimum, only slower);
  * when max|theta| > wmax, if the point is then solved or drifting (else the flow is followed on:
    a network that has run past wmax may still come back and be solved);
  * at the horizon;
  * after MAX_ITER iterations, or once STALL of its iterations have taken a step of at most MIN_STEP
    of pseudo-time.  The second is the flow stuck on a kink of a ReLU network, where the local
    quadratic model never holds: the finisher then creeps on by ~1e-6 of flow time per iteration, its
    gradient alternating between the two sides, until MAX_ITER.

Wherever it stops, the point it reached is classified like any end state (engine/core/classify.end_state:
solved first, then the critical-point split, drifting, else out of steps), so the verdict is the one
its finish_weights would get, with one addition: a point beyond wmax that is unresolved there is
drifting.  Where the loss, gradient or Hessian cannot be evaluated (not finite) it stops unresolved.
end_state_w leaves W[G] the gradient at th, which the loop goes on with after the wmax check.

finish_one works in caller-owned scratch (classify.end_state_w's) and allocates nothing, so one definition
runs on CPU threads (engine/train/finish.py) and in a CUDA thread (engine/cuda/exact.py).
"""
from __future__ import annotations

import math

import numpy as np

from badminima.engine.core.classify import (C, CUR, G, GT, GV, LAM, PG, TRIAL, eig_hessian, end_state_w,
                                            eval_into, max_abs, move, newton_dist, newton_trial, project)
from badminima.engine.core.jit import njit
from badminima.engine.core.outcomes import DRIFTING, OUT_OF_STEPS

HORIZON = 100.0       # flow time followed, in multiples of the optimizer's budget (lr * steps)
TAU0 = 1.0            # first pseudo-time step
MAX_ITER = 400        # iterations before the finisher stops and classifies where it is
FIDELITY = 0.5       # a step is taken if the loss drops by (1 +- FIDELITY) x what the model predicts
POLISH_RADIUS = 0.1   # Newton steps at most this long, with a positive definite Hessian, are taken
MIN_STEP = 1e-6       # below this pseudo-time step, the first step that lowers the loss is taken
STALL = 25            # iterations with a step of at most MIN_STEP before it stops likewise
POLISH_ITER = 30      # Newton steps at most in one polish


@njit
def polish(th, X, y, d, h, act, loss, gtol, xtol, W, Hm):
    """Newton's method from th (modified in place only on success) while every step lowers the loss
    and the gradient norm; True if it ends at a critical point (||grad|| <= gtol, Newton step <= xtol).
    Directions of |eigenvalue| <= 1e-12 are left alone (flat directions of a degenerate point).
    Overwrites Hm and every row of W but G and TH (the caller's gradient and point)."""
    P = th.shape[0]
    cur, trial, g, gt, lam, gv, c = W[CUR], W[TRIAL], W[PG], W[GT], W[LAM], W[GV], W[C]
    for p in range(P):
        cur[p] = th[p]
    L, _, gn = eval_into(cur, X, y, d, h, act, loss, g, W)
    for _ in range(POLISH_ITER):
        if not eig_hessian(cur, X, y, d, h, act, loss, Hm, W):
            return False
        project(Hm, g, gv)
        newton_trial(Hm, lam, gv, c, cur, trial)
        Lt, _, gnt = eval_into(trial, X, y, d, h, act, loss, gt, W)
        if not (math.isfinite(Lt) and gnt < gn and Lt <= L + 1e-15 * abs(L)):
            break
        for p in range(P):
            cur[p] = trial[p]
            g[p] = gt[p]
        L, gn = Lt, gnt
    if not eig_hessian(cur, X, y, d, h, act, loss, Hm, W):
        return False
    project(Hm, g, gv)
    ok = gn <= gtol and newton_dist(lam, gv) <= xtol
    if ok:
        for p in range(P):
            th[p] = cur[p]
    return ok


@njit
def _verdict(th, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol, drift_wmin, eig_tol, W, Hm):
    """(code, loss, lambda_min) of the point where the finisher stops: its end-state class, except that a
    point beyond wmax still unresolved there is drifting (it ran off and did not come back)."""
    code, L, _, _, lam0 = end_state_w(th, False, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol,
                                      drift_wmin, eig_tol, W, Hm)
    if code == OUT_OF_STEPS and max_abs(th) > wmax:
        code = DRIFTING
    return code, L, lam0


@njit
def finish_one(th, horizon, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol, drift_wmin, eig_tol,
               max_iter, stall, W, Hm):
    """Follow one network (th, modified in place; not a row of W other than TH) in the scratch W, Hm
    of classify.end_state_w; returns (code, iterations, loss, lambda_min)."""
    P = th.shape[0]
    g, gt, trial, lam, gv, c = W[G], W[GT], W[TRIAL], W[LAM], W[GV], W[C]
    L, _, gn = eval_into(th, X, y, d, h, act, loss, g, W)
    tau, t = TAU0, 0.0
    stalled = 0
    for it in range(max_iter):
        if not (math.isfinite(L) and math.isfinite(gn)):
            return OUT_OF_STEPS, it, L, np.nan
        # where it stops, the finisher classifies the point it reached like any end state (solved first)
        if max_abs(th) > wmax:              # runs off: final once solved or drifting, else follow on
            code, L, _, _, lam0 = end_state_w(th, False, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax,
                                              drift_gtol, drift_wmin, eig_tol, W, Hm)
            if code != OUT_OF_STEPS:
                return code, it, L, lam0
        if not eig_hessian(th, X, y, d, h, act, loss, Hm, W):
            return OUT_OF_STEPS, it, L, np.nan
        project(Hm, g, gv)
        dist = newton_dist(lam, gv)
        # at a critical point, or where the loss is strictly convex and Newton's step short (the flow
        # converges to the same minimum, only slower), land on the critical point exactly
        if (gn <= gtol and dist <= xtol) or (lam[0] > eig_tol and dist <= POLISH_RADIUS):
            if polish(th, X, y, d, h, act, loss, gtol, xtol, W, Hm):
                code, L, lam0 = _verdict(th, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol,
                                         drift_wmin, eig_tol, W, Hm)
                return code, it, L, lam0
            eig_hessian(th, X, y, d, h, act, loss, Hm, W)     # polish worked in Hm: the same values again
            project(Hm, g, gv)
        if t >= horizon or stalled >= stall:
            code, L, lam0 = _verdict(th, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol,
                                     drift_wmin, eig_tol, W, Hm)
            return code, it, L, lam0
        cap = horizon - t
        if lam[0] < 0.0:
            cap = min(cap, 2.0 / -lam[0])
        while True:
            step = min(tau, cap)
            pred = 0.0                                   # the decrease the quadratic model predicts
            for i in range(P):                           # the quadratic model's exact flow over `step`
                x = lam[i] * step
                c[i] = -gv[i] * (step if abs(x) < 1e-8 else -math.expm1(-x) / lam[i])
                pred -= gv[i] * c[i] + 0.5 * lam[i] * c[i] * c[i]
            move(Hm, c, th, trial)
            Lt, _, gnt = eval_into(trial, X, y, d, h, act, loss, gt, W)
            rho = (L - Lt) / pred if pred > 0.0 else 0.0
            # taken only where the model predicts the loss change well (the step follows the flow),
            # or, when no step of any length does, the first that lowers the loss
            if math.isfinite(Lt) and Lt < L and (abs(rho - 1.0) <= FIDELITY or step <= MIN_STEP):
                for p in range(P):
                    th[p] = trial[p]
                    g[p] = gt[p]
                L, gn = Lt, gnt
                t += step
                tau = step * 4.0 if abs(rho - 1.0) <= 0.1 else step
                stalled += 1 if step <= MIN_STEP else 0
                break
            tau = step * 0.25
            if tau < 1e-12:           # no step lowers the loss: a critical point in float64 terms
                code, L, lam0 = _verdict(th, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol,
                                         drift_wmin, eig_tol, W, Hm)
                return code, it, L, lam0
    code, L, lam0 = _verdict(th, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol, drift_wmin,
                             eig_tol, W, Hm)
    return code, max_iter, L, lam0
