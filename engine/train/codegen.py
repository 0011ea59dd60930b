"""Render, write and import the specialized training kernels.

Why generated code: with the hidden units and parameters unrolled and the activation, loss, optimizer
and dtype fixed at generation time, LLVM keeps each network's quantities in vector registers and
vectorizes the innermost loop across a block of B networks.  All per-lane state of a task lives in ONE
flat array `st` addressed with compile-time constant offsets, st[row * B + lane], so LLVM can prove
that rows never overlap and vectorizes without runtime alias checks.  Numba can only cache functions
whose source is a real, importable file, so each variant is written once to `kernel_dir()` and imported
from there; the file is never rewritten once it exists (Numba's cache is keyed on its mtime).
"""
from __future__ import annotations

import ast
import functools
import hashlib
import math
import importlib.util
import os
import re
import sys
from pathlib import Path
from string import Template

from badminima.engine.core.jit import CACHE, cache_root, core_digest, scratch_dir, sources_digest
from badminima.engine.core.names import OPTIMIZERS, lanes_for

_TEMPLATE = Path(__file__).with_name("kernel_template.py.txt")
# The kernels import only engine/core; its digest (core_digest) is written into each generated file,
# whose name carries the text's digest: editing engine/core yields new files, never a stale cache.
_TEXT_VERSION = 20


def kernel_dir() -> Path:
    """Where generated kernel modules live: $BADMINIMA_KERNEL_DIR, else beside NUMBA_CACHE_DIR, else
    under cache_root()."""
    env = os.environ.get("BADMINIMA_KERNEL_DIR")
    if env:
        return Path(env)
    numba_cache = os.environ.get("NUMBA_CACHE_DIR")
    if numba_cache:
        return Path(numba_cache) / "badminima_kernels"
    return cache_root() / "kernels"


class _Rows:
    """Row numbers of the flat per-task state array: th, g, m, v (P rows each), then per-lane scalars."""

    def __init__(self, P: int, B: int):
        self.P, self.B = P, B
        self.TH, self.G, self.M, self.V = 0, P, 2 * P, 3 * P
        self.NC, self.LS, self.ACT, self.B1T, self.B2T = 4 * P, 4 * P + 1, 4 * P + 2, 4 * P + 3, 4 * P + 4
        self.OUTF, self.CODE = 4 * P + 5, 4 * P + 6
        self.XS, self.YS = 4 * P + 7, 4 * P + 9          # SGD: each lane's point (d <= 2) and label
        # REL: steps into the current block at which the lane first had zero training error (-1: not
        # yet); SOLV, RA, RX, VV: the last stop test's solved flag, sum and max of |r| = |p - y| and
        # max |v_j|, read by the finality certificate (_certify_lines)
        self.REL, self.SOLV, self.RA, self.RX, self.VV = (4 * P + 10 + k for k in range(5))
        self.R = 4 * P + 15

    def at(self, row: int) -> str:
        return f"st[{row * self.B} + l]"

    def th(self, p: int) -> str:
        return self.at(self.TH + p)

    def g(self, p: int) -> str:
        return self.at(self.G + p)


def _act_lines(act: str, j: int) -> list[str]:
    """Lines computing s{j} (activation) and ds{j} (its derivative) from a{j}."""
    if act == "sigmoid":
        return [f"s{j} = ONE / (ONE + fexp(-a{j}))", f"ds{j} = s{j} * (ONE - s{j})"]
    if act == "tanh":
        return [f"e{j} = fexp(-(a{j} + a{j}))", f"s{j} = (ONE - e{j}) / (ONE + e{j})",
                f"ds{j} = ONE - s{j} * s{j}"]
    if act == "relu":
        return [f"s{j} = a{j} if a{j} > ZERO else ZERO", f"ds{j} = ONE if a{j} > ZERO else ZERO"]
    raise ValueError(act)


def _forward_backward(R, d: int, h: int, act: str, loss: str, xs: list[str], yv: str) -> list[str]:
    """Per-lane body: forward pass, residual r = dloss/dz, gradient accumulation (R names th and g)."""
    S = d + 2
    lines = []
    for j in range(h):
        terms = "".join(f" + {R.th(j * S + 1 + k)} * {xs[k]}" for k in range(d))
        lines.append(f"a{j} = {R.th(j * S + 1 + d)}{terms}")      # bias first: contract() makes d fmas
        lines += _act_lines(act, j)
    lines.append(f"z = {R.th(h * S)} + " + " + ".join(f"{R.th(j * S)} * s{j}" for j in range(h)))
    lines.append(f"r = ONE / (ONE + fexp(-z)) - {yv}" if loss == "xent" else f"r = TWO * (z - {yv})")
    lines.append(f"{R.g(h * S)} += r")
    for j in range(h):
        lines.append(f"{R.g(j * S)} += r * s{j}")
        lines.append(f"dl{j} = r * {R.th(j * S)} * ds{j}")
        for k in range(d):
            lines.append(f"{R.g(j * S + 1 + k)} += dl{j} * {xs[k]}")
        lines.append(f"{R.g(j * S + 1 + d)} += dl{j}")
    return lines


def _stat_lines(ra: str, rx: str) -> list[str]:
    """Per-point lines after _forward_backward that sum |r| and keep its largest value (cross-entropy:
    |r| = |p - y|), for the finality certificate."""
    return [f"{ra} += abs(r)", f"{rx} = max({rx}, abs(r))"]


class _Branchless(ast.NodeTransformer):
    """`a if c else b` -> sel(c, a, b) and `p and q` -> p & q (booleans): the same values, no branches.
    Numba turns every conditional expression and short-circuit operator into basic blocks, and its
    SSA reconstruction and liveness analysis, run over all blocks with every local (here: every
    parameter, gradient and moment of the network) live, grow with blocks x locals: the unrolled
    step of h = 7 Adam compiled in 12 s with them, 8 s without (LLVM turns sel back into a select;
    the machine code and the results do not change)."""

    def __init__(self, sel: str):
        self.sel = ast.parse(sel, mode="eval").body

    def visit_IfExp(self, node):
        self.generic_visit(node)
        return ast.Call(func=self.sel, args=[node.test, node.body, node.orelse], keywords=[])

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        op = ast.BitAnd() if isinstance(node.op, ast.And) else ast.BitOr()
        out = node.values[0]
        for v in node.values[1:]:
            out = ast.BinOp(left=out, op=op, right=v)
        return out


def branchless(lines: list[str], sel: str) -> list[str]:
    """Each simple statement of `lines` through _Branchless with the select function `sel` (headers
    such as `for ...:` and comments are kept as they are)."""
    return _each_statement(lines, lambda tree: _Branchless(sel).visit(tree))


def _parsed(lines: list[str]) -> list:
    """Each line with its AST where it parses as one simple statement, else None (headers such as
    `for ...:`, comments)."""
    out = []
    for ln in lines:
        try:
            tree = ast.parse(ln.lstrip())
        except SyntaxError:
            tree = None
        out.append((ln, tree if tree is not None and len(tree.body) == 1 else None))
    return out


def _rewrite(parsed: list, transform) -> list[str]:
    """_parsed lines with each simple statement replaced by transform(its AST), the indentation kept."""
    out = []
    for ln, tree in parsed:
        body = ln.lstrip()
        out.append(ln if tree is None else ln[: len(ln) - len(body)] + ast.unparse(transform(tree)))
    return out


def _each_statement(lines: list[str], transform) -> list[str]:
    """`lines` with each one that parses as one simple statement replaced by transform(its AST)."""
    return _rewrite(_parsed(lines), transform)


def _is_mul(node) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)


class _Contract(ast.NodeTransformer):
    """`c + a * b`, `c - a * b`, `a * b - c` and `x += a * b` -> calls of `fma` (a * b + c rounded once):
    one vfmadd instead of a multiply and an add.  Written out rather than left to fast-math contraction,
    which LLVM applies by context, so that a kernel rounds the same however it was compiled."""

    def __init__(self, fma: str):
        self.fma = fma

    def _call(self, a, b, c):
        return ast.Call(func=ast.Name(self.fma, ast.Load()), args=[a, b, c], keywords=[])

    def visit_BinOp(self, node):
        self.generic_visit(node)
        left, right = node.left, node.right
        if isinstance(node.op, ast.Add) and _is_mul(left):
            return self._call(left.left, left.right, right)
        if isinstance(node.op, ast.Add) and _is_mul(right):
            return self._call(right.left, right.right, left)
        if isinstance(node.op, ast.Sub) and _is_mul(right):
            return self._call(ast.UnaryOp(ast.USub(), right.left), right.right, left)
        if isinstance(node.op, ast.Sub) and _is_mul(left):
            return self._call(left.left, left.right, ast.UnaryOp(ast.USub(), right))
        return node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        if isinstance(node.op, (ast.Add, ast.Sub)) and _is_mul(node.value):
            a, b = node.value.left, node.value.right
            a = a if isinstance(node.op, ast.Add) else ast.UnaryOp(ast.USub(), a)
            return ast.Assign(targets=[node.target], value=self._call(a, b, node.target), lineno=node.lineno)
        return node


def contract(lines: list[str], fma: str = "fma") -> list[str]:
    """Each simple statement of `lines` through _Contract (headers and comments kept as they are)."""
    return _each_statement(lines, lambda tree: _Contract(fma).visit(tree))


class _Renamer(ast.NodeTransformer):
    """Loads of a name read its latest version (see single_assignment); a load of a name that the lines
    assign only later would read the previous loop iteration's value, which renaming would change."""

    def __init__(self, version: dict, later: set):
        self.version, self.later = version, later

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            if node.id in self.later:
                raise ValueError(f"single_assignment: {node.id!r} is read before the lines assign it")
            if node.id in self.version:
                return ast.copy_location(ast.Name(self.version[node.id], ast.Load()), node)
        return node


def single_assignment(lines: list[str]) -> list[str]:
    """Straight-line `lines` with every redefinition of a local a new name (`g0 = fma(.., g0)` ->
    `g0_v1 = fma(.., g0)`, `x += e` -> `x_v1 = x + e`, the same arithmetic) and later loads renamed.
    Numba's SSA reconstruction looks up each redefinition's statement by a linear search of its block:
    quadratic in a fused step's one block of some thousand statements."""
    parsed = _parsed(lines)
    later = {t.id for _, tree in parsed if tree is not None
             for t in getattr(tree.body[0], "targets", [getattr(tree.body[0], "target", None)]) if isinstance(t, ast.Name)}
    version: dict[str, str] = {}
    defined: set[str] = set()
    count: dict[str, int] = {}

    def transform(tree):
        st = tree.body[0]
        if isinstance(st, ast.AugAssign) and isinstance(st.target, ast.Name):
            st = ast.Assign(targets=[ast.Name(st.target.id, ast.Store())],
                            value=ast.BinOp(left=ast.Name(st.target.id, ast.Load()), op=st.op, right=st.value),
                            lineno=st.lineno)
        st = _Renamer(version, later - defined).visit(st)
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
            name = st.targets[0].id
            if name in defined:
                count[name] = count.get(name, 0) + 1
                version[name] = f"{name}_v{count[name]}"
                st.targets[0] = ast.Name(version[name], ast.Store())
            defined.add(name)
        tree.body[0] = st
        return ast.fix_missing_locations(tree)
    return _rewrite(parsed, transform)


def _indent(lines: list[str], n: int) -> str:
    return "\n".join(" " * n + ln for ln in lines)


_PRELUDE = [
    "invN = ONE / F(N)",
    "lr, b1, b2, eps, stol = F(hy[0]), F(hy[1]), F(hy[2]), F(hy[3]), F(hy[5])",
    "early = hy[6] > 0.5",
    "NF = F(N)",
    "lrN = lr * invN",
    "k1 = (ONE - b1) * invN            # Adam's moment weights, applied to the summed gradient",
    "k2 = (ONE - b2) * invN * invN",
]


def _tree_max(terms: list[str]) -> str:
    """The largest of terms, as nested pairwise max calls."""
    while len(terms) > 1:
        terms = [f"max({a}, {b})" for a, b in zip(terms[::2], terms[1::2])] + terms[len(terms) - len(terms) % 2:]
    return terms[0]


def _tree_sum(terms: list[str]) -> str:
    """terms summed pairwise, ((t0 + t1) + (t2 + t3)) + ...: log2(n) dependent additions, not n (the
    compiler may not reassociate a chain by itself)."""
    while len(terms) > 1:
        terms = [f"({a} + {b})" for a, b in zip(terms[::2], terms[1::2])] + terms[len(terms) - len(terms) % 2:]
    return terms[0]


def certifies(act: str, loss: str, opt: str) -> bool:
    """Whether a solved network of this variant may stop before its budget: only where the finality
    certificate of _certify_lines applies (full-batch GD on cross-entropy with a smooth activation).
    Elsewhere no usable bound exists: Adam's steps do not shrink with the gradient, SGD does not
    descend the training loss, a ReLU kink can make a GD step raise it, and no bound keeps a
    regression fit below its tolerance."""
    return loss == "xent" and opt == "gd" and act in ("sigmoid", "tanh")


def _decide_lines(R: _Rows, d: int, h: int, act: str, loss: str, opt: str, th, g, stats, guarded: bool,
                  test: bool = True) -> list[str]:
    """Per-lane stop test on the current pass, then one GD/Adam step if the lane is still live.

    th(p) / g(p) name the current parameter / summed gradient (state rows or locals); stats = (nc,
    ls, ra, rx) name the correct count, summed squared error, and sum and max of |r| of the pass; new
    parameters are always stored to the th rows.  `i` (a variable of
    the caller) counts the block's steps taken before this test.  A lane stops here only when its
    budget is spent or its values are not finite (both final); a solved lane keeps training and is
    stopped at the block's end only if _certify proves that no later step can flip a point.  With
    `guarded` the update runs only when the runtime flag `update` is set (SGD's epoch-end check).
    Without `test` there is no stop test and no mask: only for steps known to stop no lane while
    every lane holding a network is live (see run_task); the update of an empty lane is harmless.
    """
    nc, ls, ra, rx = stats
    act_row, rel = R.at(R.ACT), R.at(R.REL)
    solved = f"({nc} == NF)" if loss == "xent" else f"({ls} * invN <= stol)"
    # Everything works on the summed gradient g (no division by N per parameter): GD steps by
    # lrN * g (lrN = lr / N) and Adam folds 1/N into its moment weights k1, k2.
    if not test:
        lines = [f"{rel} = F(i) if ({solved} and {rel} < ZERO) else {rel}"]
    else:
        lines = [
            "gn2 = " + _tree_sum([f"{g(p)} * {g(p)}" for p in range(R.P)]),
            "tn2 = " + _tree_sum([f"{th(p)} * {th(p)}" for p in range(R.P)]),
            "finite = (gn2 + tn2) < INF        # false for NaN and inf",
            f"solved = {solved}",
            f"out = {R.at(R.OUTF)} > HALF",
            "stop = out or (early and not finite)",
            f"was = {act_row} > HALF",
            "c = DIVERGED if not finite else OUT_OF_STEPS",
            f"{R.at(R.CODE)} = F(c) if (was and stop) else {R.at(R.CODE)}",
            "now = was and not stop",
            f"{act_row} = ONE if now else ZERO",
            f"{rel} = F(i) if (was and solved and {rel} < ZERO) else {rel}",
        ]
        if certifies(act, loss, opt):
            lines += [f"{R.at(R.SOLV)} = ONE if solved else ZERO", f"{R.at(R.RA)} = {ra}", f"{R.at(R.RX)} = {rx}",
                      f"{R.at(R.VV)} = " + _tree_max([f"abs({th(j * (d + 2))})" for j in range(h)])]
    upd = []
    if opt == "adam":
        b1t, b2t = R.at(R.B1T), R.at(R.B2T)
        upd += [f"nb1 = {b1t} * b1", f"nb2 = {b2t} * b2", f"{b1t} = nb1", f"{b2t} = nb2",
                "lrc1 = lr / (ONE - nb1)", "c2 = ONE / (ONE - nb2)",
                "# tiny moments are flushed to zero: denormals make dead-ReLU lanes many times slower"]
        for p in range(R.P):
            m, v = R.at(R.M + p), R.at(R.V + p)
            upd += [f"mm = b1 * {m} + k1 * {g(p)}",
                    f"vv = b2 * {v} + k2 * ({g(p)} * {g(p)})",
                    "mm = mm if abs(mm) > TINY else ZERO",
                    "vv = vv if vv > TINY else ZERO",
                    f"{m} = mm",
                    f"{v} = vv",
                    f"nt = {th(p)} - lrc1 * mm / (np.sqrt(vv * c2) + eps)",
                    f"{R.th(p)} = nt if now else {th(p)}" if test else f"{R.th(p)} = nt"]
    else:
        for p in range(R.P):
            upd += [f"nt = {th(p)} - lrN * {g(p)}", f"{R.th(p)} = nt if now else {th(p)}" if test else f"{R.th(p)} = nt"]
    return lines + (["if update:"] + ["    " + ln for ln in upd] if guarded and upd else upd)


# Bounds on the hidden activation's first and second derivative (sigmoid: 1/4 and 1/(6 sqrt 3);
# tanh: 1 and 4/(3 sqrt 3)), rounded up.
_D1 = {"sigmoid": 0.25, "tanh": 1.0}
_D2 = {"sigmoid": 0.0963, "tanh": 0.7699}


def _certify_lines(R: _Rows, h: int, act: str) -> list[str]:
    """Per-lane finality certificate of a solved GD network (docs/outcomes.md has the proof).

    From the parameters th0 of the last stop test, with mean loss L0 (bounded by the |r|: a point's
    loss -log(1 - |r|) is <= |r| / (1 - |r|)) and T steps left: take the ball of radius rb around th0
    and J, K bounds on every ||grad z_i|| and ||hess z_i|| on it.  The mean loss's Hessian is <= L (J^2
    + K) (p(1-p) <= |r| <= the point's loss), so while L <= L0, lr L0 (J^2 + K) <= 1 makes every step
    lower the loss by >= lr ||g||^2 / 2; then the steps move at most sqrt(2 lr T L0) in all
    (Cauchy-Schwarz) plus one step of <= lr L0 J, which must fit in the ball.  By induction the loss
    never exceeds L0, and N L0 < ln 2 keeps every point's loss below ln 2: every point stays
    correctly classified to the end of the budget.  Factor 2 of safety on the curvature and on
    ln 2, for the rounding of the kernel's arithmetic.
    """
    a = R.at
    return [
        "T = F(steps - cnt[l] + 1)      # the statistics are those of the start of the block's last step",
        f"l0 = {a(R.RA)} * invN / (ONE - {a(R.RX)})",
        "r0 = np.sqrt(TWO * lr * T * l0)",
        "rb = F(1.25) * r0 + F(1e-6)",
        f"vv = {a(R.VV)} + rb",
        f"j2 = F({1 + h}) + F({h}) * (vv * vv) * (F({_D1[act] ** 2!r}) * x2)",
        "jb = np.sqrt(j2)",
        f"kb = F({_D1[act]!r}) * sx2 + vv * (F({_D2[act]!r}) * x2)",
        f"ok = {a(R.SOLV)} > HALF and {a(R.ACT)} > HALF and NF * l0 <= F({0.5 * math.log(2)!r})",
        "ok = ok and lr * l0 * (j2 + kb) <= HALF and r0 + lr * l0 * jb <= rb",
        f"{a(R.ACT)} = ZERO if ok else {a(R.ACT)}",
        f"{a(R.CODE)} = F(SOLVED) if ok else {a(R.CODE)}",
    ]


_TEMPS = re.compile(r"\b(?:a|s|ds|e|dl)\d+\b|\b[zr]\b")   # _forward_backward's per-point temporaries


class _Names:
    """Where _forward_backward reads parameters (th) and accumulates the gradient (g)."""

    def __init__(self, th):
        self.th = th

    @staticmethod
    def g(p: int) -> str:          # the gradient always in locals g<p>
        return f"g{p}"


def _fused_step(R: _Rows, d: int, h: int, act: str, loss: str, opt: str, n_points: int,
                test: bool = True) -> list[str]:
    """A whole full-batch step of every lane in one lane loop: n_points unrolled, then decide + update."""
    loc = _Names(lambda p: f"t{p}")        # parameters in locals t<p> too: the whole step in registers
    pre = []
    for i in range(n_points):
        pre += [f"x{k}_{i} = X[{i}, {k}]" for k in range(d)] + [f"y_{i} = y[{i}]", f"yp_{i} = y_{i} > HALF"]
    body = [f"t{p} = {R.th(p)}" for p in range(R.P)] + [f"g{p} = ZERO" for p in range(R.P)]
    body += ["nc = ZERO", "ls = ZERO", "rsum = ZERO", "rmax = ZERO"]
    per_point = []
    stats = test and certifies(act, loss, opt)
    for i in range(n_points):
        fb = _forward_backward(loc, d, h, act, loss, [f"x{k}_{i}" for k in range(d)], f"y_{i}")
        fb.append("nc += ONE if (z > ZERO) == yp_%d else ZERO" % i if loss == "xent"
                  else f"ls += (z - y_{i}) * (z - y_{i})")
        if stats:
            fb += _stat_lines("rsum", "rmax")
        per_point.append([_TEMPS.sub(lambda m: m.group(0) + f"_{i}", ln) for ln in fb])
    # Round-robin over the points, statement by statement: the points' dependency chains (exp ->
    # divide -> exp -> divide) are independent, and adjacent in the instruction stream the CPU
    # overlaps them; one point after another would leave it waiting on one chain at a time.  Every
    # accumulator still receives the points in order 0, 1, 2, ..., so results do not change.
    for group in zip(*per_point):
        body += list(group)
    body += _decide_lines(R, d, h, act, loss, opt, loc.th, loc.g, ("nc", "ls", "rsum", "rmax"),
                          guarded=False, test=test)
    body = single_assignment(branchless(contract(body), "_sel"))
    head = ["    align_stack()"] + ["    " + ln for ln in _PRELUDE + pre]
    if test:
        return ["", "", "@njit", "def _step(X, y, st, cnt, N, steps, hy, i):",
                f'    """One full-batch step of every lane, the {n_points} points unrolled (N must be {n_points})."""'] \
            + head + ["    _budget_flags(st, cnt, steps)", "    for l in range(B):"] \
            + ["        " + ln for ln in body] + ["    _count_steps(st, cnt)"]
    # No mask either: a masked store of the parameters costs ~15% here, because the next step's
    # full-vector load of the same rows cannot take its data from a masked store in flight.
    return ["", "", "@njit", "def _fast_steps(X, y, st, cnt, N, steps, hy, i0, n):",
            f'    """n steps (from step i0 of the block) with no stop test and no mask, the {n_points} points '
            'unrolled: they stop no lane while every lane holding a network is live (see run_task)."""'] \
        + head + ["    for i in range(i0, i0 + n):", "        for l in range(B):"] + ["            " + ln for ln in body] \
        + ["    for l in range(B):", f"        cnt[l] += _sel(st[{R.ACT} * B + l] > HALF, n, 0)"]


_UNFUSED_STEP = [
    "", "", "@njit", "def _step(X, y, st, cnt, N, steps, hy, i):",
    '    """One full-batch step of every lane: a pass over the points, then the stop test and update."""',
    "    _full_pass(X, y, st)",
    "    _decide(st, cnt, N, steps, hy, True, i)",
    "", "", "@njit", "def _fast_steps(X, y, st, cnt, N, steps, hy, i0, n):",
    '    """n steps from step i0 of the block, which stop no lane (see run_task)."""',
    "    for i in range(n):",
    "        _step(X, y, st, cnt, N, steps, hy, i0 + i)",
]

FUSE_MAX_POINTS = 16
# Hidden units x points unrolled into one fused step: 7 x 16, the paper's widest network on the largest
# dataset that is fused.  Beyond it Numba's compile time and memory grow fast, and from 256 units
# (h = 16 on 16 points, ReLU Adam) its SSA pass fails with a RecursionError (docs/training.md, Limits).
FUSE_MAX_UNITS = 112


def fused_points(opt: str, n_points: int, hidden: int = 1) -> int:
    """Points to unroll into a fused step (0: no fused step) for this optimizer, dataset size and width."""
    ok = opt != "sgd" and 0 < n_points <= FUSE_MAX_POINTS and hidden * n_points <= FUSE_MAX_UNITS
    return n_points if ok else 0


def render(d: int, h: int, act: str, loss: str, opt: str, dtype: str, n_fused: int = 0) -> str:
    """The generated module's source text (n_fused > 0: a fused step specialized to that many points)."""
    P = h * (d + 2) + 1
    B = lanes_for(dtype)
    R = _Rows(P, B)
    xs = [f"x{k}" for k in range(d)]
    # SGD: the point's gradient in locals g<p>, parameters read from and written to the th rows
    sgd_fb = _forward_backward(_Names(R.th), d, h, act, loss, [R.at(R.XS + k) for k in range(d)], R.at(R.YS))
    sgd_body = [f"g{p} = ZERO" for p in range(P)] + sgd_fb + [f"now = {R.at(R.ACT)} > HALF and {R.at(R.OUTF)} < HALF"]
    for p in range(P):
        sgd_body += [f"nt = {R.th(p)} - lr * g{p}", f"{R.th(p)} = nt if now else {R.th(p)}"]
    sgd_gather = ["pi = perm[l, pos]"] + [f"{R.at(R.XS + k)} = X[pi, {k}]" for k in range(d)] + [
        f"{R.at(R.YS)} = y[pi]",
        f"cnt[l] += 1 if {R.at(R.ACT)} > HALF and {R.at(R.OUTF)} < HALF else 0"]
    step = _fused_step(R, d, h, act, loss, opt, n_fused) + _fused_step(R, d, h, act, loss, opt, n_fused, test=False) \
        if n_fused else _UNFUSED_STEP
    tmpl = Template(_TEMPLATE.read_text())
    return tmpl.substitute(
        VERSION=f"{_TEXT_VERSION}, engine sources {core_digest()}", D=d, H=h, P=P, ACT=act, LOSS=loss, OPT=opt, DTYPE=dtype,
        NFUSED=n_fused,
        F="np.float64" if dtype == "float64" else "np.float32", B=B,
        EXP="exp64" if dtype == "float64" else "exp32",
        STATE="lane_state64" if dtype == "float64" else "lane_state32",
        IS_XENT="True" if loss == "xent" else "False",
        OPT_CODE=OPTIMIZERS[opt],
        R=R.R, TH=R.TH, G=R.G, M=R.M, V=R.V, NC=R.NC, LS=R.LS, ACT_ROW=R.ACT, B1T=R.B1T, B2T=R.B2T,
        OUTF=R.OUTF, CODE=R.CODE,
        LOAD_X=_indent([f"x{k} = X[i, {k}]" for k in range(d)], 8),
        FB_FULL=_indent(branchless(contract(_forward_backward(R, d, h, act, loss, xs, "yi")), "_sel"), 12),
        SGD_GATHER=_indent(branchless(sgd_gather, "_sel"), 8),
        SGD_BODY=_indent(branchless(contract(sgd_body), "_sel"), 8),
        PRELUDE=_indent(_PRELUDE, 4),
        DECIDE=_indent(branchless(contract(_decide_lines(R, d, h, act, loss, opt, R.th, R.g,
                                                         tuple(R.at(r) for r in (R.NC, R.LS, R.RA, R.RX)),
                                                         guarded=True)), "_sel"), 8),
        CERT="True" if certifies(act, loss, opt) else "False",
        REL=R.REL, RA=R.RA, RX=R.RX,
        FULL_STATS=_indent(branchless(_stat_lines(R.at(R.RA), R.at(R.RX)), "_sel") if certifies(act, loss, opt) else ["pass"], 16),
        CERTIFY=_indent(branchless(_certify_lines(R, h, act), "_sel") if certifies(act, loss, opt) else ["pass"], 8),
        STEP_FN="\n".join(step),
    )


def module_name(d: int, h: int, act: str, loss: str, opt: str, dtype: str, n_fused: int = 0) -> str:
    return f"bm_train_d{d}_h{h}_{act}_{loss}_{opt}_{dtype}" + (f"_n{n_fused}" if n_fused else "")


_LOADED: dict[str, object] = {}


@functools.cache
def _inputs_digest() -> str:
    """Digest of everything a generated module's text is made from: the code generators and templates
    (engine/train, engine/cuda), engine/core and the caching switch (the CUDA kernels' `cache=`)."""
    here = Path(__file__).resolve().parent
    return hashlib.sha256("".join((sources_digest(here), sources_digest(here.parent / "cuda"), core_digest(),
                                   str(CACHE))).encode()).hexdigest()[:16]


def _indexed(folder: Path, index: Path, name: str) -> Path | None:
    """The module file an index entry names, if the entry is readable and names an existing module of
    this variant; None otherwise (a miss: the module is rendered again)."""
    try:
        entry = index.read_text().strip()
    except OSError:
        return None
    if not re.fullmatch(re.escape(name) + r"_[0-9a-f]{12}\.py", entry):
        return None
    path = folder / entry
    return path if _intact(path) else None


def _intact(path: Path) -> bool:
    """Whether a generated module file exists and holds the text its name's digest was made from (a
    truncated or damaged file is a miss, rendered and written again)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12] == path.stem.rsplit("_", 1)[-1]
    except OSError:
        return False


def import_generated(name: str, render_text):
    """The generated module `name` (its text from render_text()), written once to kernel_dir() as a
    real file named by its text's digest, so that Numba caches it beside itself and every process
    shares it.  An index entry named by the digest of the generators' sources records that file, so
    a warm run imports it without rendering (and an edit that leaves the text alone keeps its cache)."""
    if name in _LOADED:
        return _LOADED[name]
    folder = kernel_dir()
    index = folder / "index" / f"{name}_{_inputs_digest()}"
    path = _indexed(folder, index, name)
    if path is None:
        from badminima.engine.store.paths import write_text       # h5py: only when a module is written
        from badminima.engine.store.schema import StoreError
        text = render_text()
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        path = folder / f"{name}_{digest}.py"
        if not _intact(path):
            try:
                write_text(path, text)  # atomic: concurrent array tasks may generate the same file at once
            except StoreError:          # no writable kernel folder: this process's own
                path = scratch_dir() / "kernels" / path.name
                path.parent.mkdir(parents=True, exist_ok=True)
                write_text(path, text)
        try:
            write_text(index, path.name)
        except StoreError:              # the index only saves the render: a read-only folder still works
            pass
    spec = importlib.util.spec_from_file_location(f"badminima_generated.{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    _LOADED[name] = mod
    return mod


def load_kernel_module(d: int, h: int, act: str, loss: str, opt: str, dtype: str, n_fused: int = 0):
    """Import (writing first if needed) the generated module for this variant (see fused_points)."""
    name = module_name(d, h, act, loss, opt, dtype, n_fused)
    return import_generated(name, lambda: render(d, h, act, loss, opt, dtype, n_fused))
