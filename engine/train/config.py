"""The training configuration: a frozen dataclass validated once at the edge, then trusted."""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

import numpy as np

from badminima.engine.data.datasets import KINDS
from badminima.engine.core.names import ACTIVATIONS, DTYPE_LANES, INIT_LAWS, OPTIMIZERS
from badminima.engine.train.limits import MAX_COUNT, MAX_HIDDEN


DEVICES = ("cpu", "cuda")


class ConfigError(ValueError):
    """A nonsense option; the message is one line naming it."""


# TrainConfig fields that `badminima train` takes as options of the same name (the others are named as
# fields in messages: the Python API's keywords)
_CLI_FIELDS = {"hidden", "lr", "steps", "networks", "seed", "dtype", "beta1", "beta2", "eps", "gtol",
               "finish_horizon", "device"}


def _option(name: str) -> str:
    return f"--{name.replace('_', '-')}" if name in _CLI_FIELDS else name


def check_count(value, option: str, minimum: int = 1) -> int:
    """A count (networks, steps, threads, ...): an integer in [minimum, 2^62], else ConfigError naming
    the option."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{option} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{option} must be >= {minimum}, got {value}")
    if value > MAX_COUNT:
        raise ConfigError(f"{option} must be in [{minimum}, 2^62], got {value}")
    return int(value)


def decimal_int(text) -> int:
    """An integer in ASCII decimal digits with an optional sign ('42', '-3'); ValueError for the other
    forms Python's int() takes (1_000, Arabic-Indic or full-width digits), so that a number is written
    one way on every option.  Surrounding spaces are the caller's to strip (options strip them)."""
    s = str(text)
    body = s[1:] if s[:1] in ("+", "-") else s
    if not (body.isascii() and body.isdigit()):
        raise ValueError(f"not a decimal integer: {s!r}")
    return int(s)


def decimal_float(text) -> float:
    """A real number as Python's float() reads it, in ASCII and without the digit separator '_'
    ('0.5', '1e-3', '-2', 'inf'); ValueError for 1_0 and other scripts' digits, which float() also
    takes, so that a number is written one way on every option (as decimal_int for integers)."""
    s = str(text)
    if not s.isascii() or "_" in s:
        raise ValueError(f"not a decimal number: {s!r}")
    return float(s)


def split_items(text, option: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c']: a comma-separated list as every option writes it; ConfigError naming
    the option for an empty list or an empty item ('a,,b', 'a,'), which would otherwise be skipped."""
    items = [t.strip() for t in str(text).split(",")]
    if not any(items):
        raise ConfigError(f"{option} is empty: give a comma-separated list")
    if not all(items):
        raise ConfigError(f"{option} {str(text)[:60]!r} has an empty item: write the list without doubled "
                          f"or trailing commas")
    return items


MAX_NUMBA_THREADS = 4096


def numba_threads_env() -> int | None:
    """NUMBA_NUM_THREADS as a thread count in [1, MAX_NUMBA_THREADS]; None where it is unset.  Numba
    itself raises at import below 1, fails deep inside a run on values past a C int, and warns with a
    traceback's text on an empty value or one that is not an integer: ConfigError for all of them,
    before anything imports Numba."""
    import os
    value = os.environ.get("NUMBA_NUM_THREADS")
    if value is None:
        return None
    try:
        n = decimal_int(value.strip())
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_NUMBA_THREADS:
        raise ConfigError(f"NUMBA_NUM_THREADS={value[:40]}: the number of threads must be an integer in "
                          f"1-{MAX_NUMBA_THREADS} (or unset: one per core)")
    return n


def finite(v) -> bool:
    """Whether the real number v is finite (an int too large for a float is not)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


# the numbers a float field takes: Python's and NumPy's (a Fraction or Decimal would reach the kernels and
# the stored JSON as what it is)
_FLOATS = (int, float, np.integer, np.floating)


def python_number(x):
    """A NumPy scalar as the Python number it holds (a longdouble's item() would stay a longdouble)."""
    if isinstance(x, np.floating):
        return float(x)
    return x.item() if isinstance(x, np.generic) else x


def check_field_types(cfg, option=lambda name: name) -> None:
    """Refuse (ConfigError naming the option) a field of the config dataclass `cfg` whose value is not of
    its annotated kind: int (not bool), float (a Python or NumPy int or float, not bool, finite), str, tuple (of numbers
    or strings, not a string); "X | None" fields may be None.  A NumPy scalar it accepts is set to the Python
    number it holds, so that none (a longdouble, which Numba cannot type) reaches the kernels or the
    stored JSON."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if v is None and "None" in kind:
            continue
        kind = kind.split("|")[0].strip()
        if kind == "int":
            ok = isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
            what = "an integer"
        elif kind == "float":
            ok = isinstance(v, _FLOATS) and not isinstance(v, (bool, np.bool_)) and finite(v)
            what = "a finite number"
        elif kind == "str":
            ok, what = isinstance(v, str), "a string"
        elif kind == "tuple":
            ok = isinstance(v, tuple) and all(isinstance(x, (str, *_FLOATS)) and not isinstance(x, bool)
                                              for x in v)
            what = "a sequence of numbers or names"
        else:
            continue
        if not ok:
            raise ConfigError(f"{option(f.name)} must be {what}, got {v!r}")
        if isinstance(v, np.generic) or (kind == "tuple" and any(isinstance(x, np.generic) for x in v)):
            object.__setattr__(cfg, f.name, tuple(map(python_number, v)) if kind == "tuple" else python_number(v))


@dataclass(frozen=True)
class InitSpec:
    """Initialization law: normal:SIGMA, uniform:A, glorot, he; biases 'same' law or 'zero'."""
    law: str = "normal"
    scale: float = 1.0
    bias: str = "same"

    @classmethod
    def parse(cls, text: str, bias: str = "same") -> "InitSpec":
        """Parse 'normal:1', 'uniform:0.5', 'glorot', 'he'."""
        if not isinstance(text, str):
            raise ConfigError(f"init must be a law such as 'normal:1', 'uniform:0.5', 'glorot' or 'he', got {text!r}")
        law, colon, arg = text.partition(":")
        law = law.strip().lower()
        if colon and not arg.strip():
            hint = f"give a scale, e.g. {law}:0.5, or the law alone" if law in ("normal", "uniform") else \
                "write the law alone"
            raise ConfigError(f"init {text.strip()!r} has nothing after the colon: {hint}")
        if law not in INIT_LAWS:
            raise ConfigError(f"unknown init law {law!r} (choose from {', '.join(INIT_LAWS)})")
        if law in ("normal", "uniform"):
            try:
                scale = decimal_float(arg) if arg else 1.0
            except ValueError:
                raise ConfigError(f"init scale must be a number, got {arg[:40]!r}") from None
            if not scale > 0 or scale == float("inf"):
                raise ConfigError(f"init scale must be positive and finite, got {arg[:40]!r}")
        elif arg:
            raise ConfigError(f"init law {law!r} takes no scale")
        else:
            scale = 1.0
        if bias not in ("same", "zero"):
            raise ConfigError(f"bias init must be 'same' or 'zero', got {bias!r}")
        return cls(law, scale, bias)

    def __str__(self) -> str:
        return f"{self.law}:{self.scale:g}" if self.law in ("normal", "uniform") else self.law


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the results of a training run (threads and chunking do not)."""
    dataset: str                      # built-in name or path, as given
    dataset_fingerprint: str
    kind: str                         # classification | regression
    hidden: int
    activation: str = "sigmoid"
    optimizer: str = "gd"
    lr: float = 0.5
    steps: int = 10_000
    init: InitSpec = InitSpec()
    networks: int = 1000
    seed: int = 0
    dtype: str = "float64"
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    early_exit: bool = True
    gtol: float = 1e-6                # ||grad of mean loss|| below this: critical point ...
    xtol: float = 1e-3                # ... if also the Newton step is shorter than this (not a plateau)
    solve_tol: float = 1e-6           # regression: mean squared error at or below this is solved
    wmax: float = 50.0                # a critical point needs max|theta| <= wmax, else it is drifting
    drift_gtol: float = 1e-3          # at the end: small gradient + growing, large weights = drifting
    drift_wmin: float = 10.0
    eig_tol: float = 1e-8             # |lambda_min| <= eig_tol: flat
    check_every: int = 16             # lanes are refilled every this many steps (speed only)
    finish_horizon: float = 100.0     # the finisher follows unresolved networks this many budgets further
                                      # along the gradient flow (engine/train/finish.py); 0: no finisher
    device: str = "cpu"               # cpu: the SIMD kernels; cuda: one GPU thread per network (engine/cuda).
                                      # Results agree statistically, not bit for bit (different exp)

    @property
    def loss(self) -> str:
        return "xent" if self.kind == "classification" else "mse"

    def validate(self) -> "TrainConfig":
        """Raise ConfigError naming the first nonsense option; return self."""
        def bad(msg):
            raise ConfigError(msg)
        check_field_types(self, _option)
        if not isinstance(self.early_exit, (bool, np.bool_)):
            bad(f"early_exit must be True or False, got {self.early_exit!r}")
        if not isinstance(self.init, InitSpec):
            bad(f"init must be an InitSpec, got {self.init!r}")
        if self.hidden < 1:
            bad(f"--hidden must be >= 1, got {self.hidden}")
        if self.hidden > MAX_HIDDEN:
            bad(f"--hidden must be <= {MAX_HIDDEN}, got {self.hidden} (the generated kernels unroll every hidden "
                f"unit, so compile time and memory grow with h; see docs/training.md)")
        if self.activation not in ACTIVATIONS:
            bad(f"unknown activation {self.activation!r} (choose from {', '.join(ACTIVATIONS)})")
        if self.optimizer not in OPTIMIZERS:
            bad(f"unknown optimizer {self.optimizer!r} (choose from gd, adam, sgd)")
        if not (self.lr > 0 and self.lr < float("inf")):
            bad(f"--lr must be positive and finite, got {self.lr}")
        check_count(self.steps, "--steps")
        check_count(self.networks, "--networks")
        if not 0 <= self.seed < 2 ** 63:
            bad(f"--seed must be in [0, 2^63), got {self.seed}")
        if self.dtype not in DTYPE_LANES:
            bad(f"--dtype must be float64 or float32, got {self.dtype!r}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.eps > 0):
            bad("Adam needs 0 <= beta1, beta2 < 1 and eps > 0")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in ("beta1", "beta2", "eps"):      # stored with the run: a value no step reads would
            if self.optimizer != "adam" and getattr(self, name) != defaults[name]:      # split equal runs
                bad(f"{_option(name)} is an Adam option; the {self.optimizer} optimizer does not read it")
        for name in ("gtol", "xtol", "solve_tol", "wmax", "drift_gtol", "drift_wmin", "eig_tol", "finish_horizon"):
            if not getattr(self, name) >= 0:
                bad(f"{_option(name)} must be >= 0, got {getattr(self, name)!r}")
        if not self.wmax > 0:
            bad(f"{_option('wmax')} must be positive (the weight size that counts as diverged), got {self.wmax!r}")
        check_count(self.check_every, "check_every")
        if self.kind not in KINDS:
            bad(f"unknown dataset kind {self.kind!r}")
        if self.device not in DEVICES:
            bad(f"--device must be {' or '.join(DEVICES)}, got {self.device!r}")
        return self

    def check_data(self, x: np.ndarray) -> "TrainConfig":
        """ConfigError where the dtype cannot hold the data (a float32 run on coordinates past 3.4e38
        would train on inf); return self."""
        big = float(np.max(np.abs(x))) if np.size(x) else 0.0
        if big > float(np.finfo(self.dtype).max):
            raise ConfigError(f"--dtype {self.dtype} cannot hold the data (coordinates up to {big:.3g}): "
                              f"use --dtype float64")
        return self

    def to_dict(self) -> dict:
        """The fields as a dict; `device` only when not cpu, so CPU configs (stored in result files,
        hashed into default file names) are what they were before the GPU backend existed."""
        d = dataclasses.asdict(self)
        if d["device"] == "cpu":
            del d["device"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["init"] = InitSpec(**d["init"])
        return cls(**d)
