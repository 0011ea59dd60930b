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

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from string import Template

_TEMPLATE = Path(__file__).with_name("train_template.py.txt")
# Modules whose jitted code the kernels inline.  Numba's cache only checks the kernel file itself, so
# their source digest is written into every generated file: editing them yields a new file name.
_DEPENDENCIES = ("fastexp.py", "jit.py", "model.py", "outcomes.py", "rng.py")


def _dependency_digest() -> str:
    h = hashlib.sha256()
    for name in _DEPENDENCIES:
        h.update((Path(__file__).resolve().parent.parent / name).read_bytes())
    return h.hexdigest()[:16]
_TEXT_VERSION = 4
OPTIMIZERS = ("gd", "adam", "sgd")


def kernel_dir() -> Path:
    """Where generated kernel modules live: $BADMINIMA_KERNEL_DIR, else beside NUMBA_CACHE_DIR or ~/.cache."""
    env = os.environ.get("BADMINIMA_KERNEL_DIR")
    if env:
        return Path(env)
    numba_cache = os.environ.get("NUMBA_CACHE_DIR")
    if numba_cache:
        return Path(numba_cache) / "badminima_kernels"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "badminima" / "kernels"


def lanes_for(dtype: str) -> int:
    """Networks per SIMD block: four 512-bit vectors of either precision."""
    return 32 if dtype == "float64" else 64


class _Rows:
    """Row numbers of the flat per-task state array: th, g, m, v (P rows each), then per-lane scalars."""

    def __init__(self, P: int, B: int):
        self.P, self.B = P, B
        self.TH, self.G, self.M, self.V = 0, P, 2 * P, 3 * P
        self.NC, self.LS, self.ACT, self.B1T, self.B2T = 4 * P, 4 * P + 1, 4 * P + 2, 4 * P + 3, 4 * P + 4
        self.R = 4 * P + 5

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
        terms = " + ".join(f"{R.th(j * S + 1 + k)} * {xs[k]}" for k in range(d))
        lines.append(f"a{j} = {terms} + {R.th(j * S + 1 + d)}")
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


def _indent(lines: list[str], n: int) -> str:
    return "\n".join(" " * n + ln for ln in lines)


def render(d: int, h: int, act: str, loss: str, opt: str, dtype: str) -> str:
    """The generated module's source text."""
    P = h * (d + 2) + 1
    B = lanes_for(dtype)
    R = _Rows(P, B)
    xs = [f"x{k}" for k in range(d)]
    norm_lines = []
    for p in range(P):
        norm_lines += [f"gp = {R.g(p)} * invN", "gn2 += gp * gp", f"tn2 += {R.th(p)} * {R.th(p)}"]
    gd_lines = []
    adam_lines = []
    sgd_lines = []
    for p in range(P):
        gd_lines += [f"nt = {R.th(p)} - lr * ({R.g(p)} * invN)", f"{R.th(p)} = nt if now else {R.th(p)}"]
        m, v = R.at(R.M + p), R.at(R.V + p)
        adam_lines += [
            f"gp = {R.g(p)} * invN",
            f"mm = b1 * {m} + (ONE - b1) * gp",
            f"vv = b2 * {v} + (ONE - b2) * gp * gp",
            "mm = mm if abs(mm) > TINY else ZERO",
            "vv = vv if vv > TINY else ZERO",
            f"{m} = mm",
            f"{v} = vv",
            f"nt = {R.th(p)} - lr * (mm * c1) / (np.sqrt(vv * c2) + eps)",
            f"{R.th(p)} = nt if now else {R.th(p)}",
        ]
        sgd_lines += [f"nt = {R.th(p)} - lr * {R.g(p)}", f"{R.th(p)} = nt if now else {R.th(p)}"]
    tmpl = Template(_TEMPLATE.read_text())
    return tmpl.substitute(
        VERSION=f"{_TEXT_VERSION}, engine sources {_dependency_digest()}", D=d, H=h, P=P, ACT=act, LOSS=loss, OPT=opt, DTYPE=dtype,
        F="np.float64" if dtype == "float64" else "np.float32", B=B,
        EXP="exp64" if dtype == "float64" else "exp32",
        IS_XENT="True" if loss == "xent" else "False",
        OPT_CODE=OPTIMIZERS.index(opt),
        R=R.R, TH=R.TH, G=R.G, M=R.M, V=R.V, NC=R.NC, LS=R.LS, ACT_ROW=R.ACT, B1T=R.B1T, B2T=R.B2T,
        LOAD_X=_indent([f"x{k} = X[i, {k}]" for k in range(d)], 8),
        FB_FULL=_indent(_forward_backward(R, d, h, act, loss, xs, "yi"), 12),
        FB_SGD=_indent(["pi = perm[l, pos]"] + [f"xs{k} = X[pi, {k}]" for k in range(d)] + ["ys = y[pi]"]
                       + _forward_backward(R, d, h, act, loss, [f"xs{k}" for k in range(d)], "ys"), 8),
        NORMS=_indent(norm_lines, 8),
        GD_UPDATE=_indent(gd_lines, 16),
        ADAM_UPDATE=_indent(adam_lines, 16),
        SGD_UPDATE=_indent(sgd_lines, 8),
    )


def module_name(d: int, h: int, act: str, loss: str, opt: str, dtype: str) -> str:
    return f"bm_train_d{d}_h{h}_{act}_{loss}_{opt}_{dtype}"


_LOADED: dict[str, object] = {}


def load_kernel_module(d: int, h: int, act: str, loss: str, opt: str, dtype: str):
    """Import (writing first if needed) the generated module for this variant."""
    name = module_name(d, h, act, loss, opt, dtype)
    if name in _LOADED:
        return _LOADED[name]
    text = render(d, h, act, loss, opt, dtype)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    folder = kernel_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_{digest}.py"
    if not path.exists():
        # atomic: concurrent array tasks may generate the same file at once
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(f"badminima_generated.{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    _LOADED[name] = mod
    return mod
