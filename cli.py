"""badminima command line (click).  Thin: parse, validate at the edge, call the engine, print.

Usage errors (bad options, malformed data) exit 2 with one line; runtime errors exit 1.
Imports of the engine stay inside commands so `--help` is instant.
"""
from __future__ import annotations

import functools
import sys

import click

from badminima.analysis import FIGURE_KINDS
from badminima.engine.core.names import ACTIVATIONS, DTYPE_LANES, OPTIMIZERS
from badminima.engine.train import gcpolicy
from badminima.engine.core.say import say


def _shell(path) -> str:
    from badminima.engine.store.paths import shell_quote
    return shell_quote(path)


def _fail(msg: str, code: int = 2):
    from badminima.engine.train import interrupt
    interrupt.quiet()           # the exit status is decided: a late signal must not replace it
    ctx = click.get_current_context(silent=True)
    where = ctx.meta.get(_ERRORS_IN, "") if ctx else ""     # e.g. "in --warmup `...`: ", while checking it
    try:
        click.echo(f"error: {where}{msg}", err=True)
    except OSError:             # stderr gone (the terminal closed: SIGHUP): the exit status still says it
        pass
    sys.exit(code)


# The engine's own error types (matched by name, so no heavy module is imported to catch them) and
# their exit codes: 1 for runtime errors, 2 for bad input found while reading files.
RUNTIME_ERRORS = {"StoreError": 1, "NoResultFile": 2, "NotMergeable": 2, "ClusterError": 1, "ResourceError": 1,
                  "AnalysisError": 2}


def _os_error_line(e: OSError) -> str:
    """One line for an OSError no command caught itself (a full disk says so; result files say more
    where they are written: engine/store/write.py)."""
    from badminima.engine.store.paths import disk_full, os_reason
    where = f" ({e.filename})" if getattr(e, "filename", None) else ""
    if disk_full(e):
        return f"disk full{where}: free some space and rerun the same command"
    return f"{os_reason(e)}{where}"


# commands whose rerun resumes from what was committed; the others leave their outputs as they were
_RESUMABLE = {"train", "table1", "search", "minimality", "reproduce", "dask", "slurm"}


def _interrupted():
    """Ctrl-C (exit 130), or SIGTERM / SIGHUP (128 + the signal), as the shell reports a signal."""
    import signal
    from badminima.engine.train import interrupt
    sig = interrupt.signal_received() or signal.SIGINT
    interrupt.clear()           # reported: forgotten (a later signal changes nothing)
    what = "interrupted" if sig == signal.SIGINT else f"stopped by {sig.name}"
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.info_name not in _RESUMABLE:     # None: before or after the command's own work
        _fail(f"{what}; no output was left half-written", 128 + sig)
    _fail(f"{what}; committed results are kept (rerun the same command to resume)", 128 + sig)


def friendly_errors(fn):
    """Turn the engine's known error types into a one-line message and exit code (2 bad input, 1 runtime)."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        from badminima.engine.train.config import ConfigError
        from badminima.engine.data.datasets import DataError
        from badminima.engine.train import interrupt
        try:
            out = fn(*a, **kw)
            if interrupt.received():        # a Ctrl-C whose exception a library swallowed: say so, exit 130
                _interrupted()
            return out
        except (ConfigError, DataError) as e:
            _fail(str(e), 2)
        except KeyboardInterrupt:
            _interrupted()
        except BrokenPipeError as e:
            if interrupt.received():
                _interrupted()
            if _stdout_gone():
                _broken_pipe()
            _fail(_os_error_line(e), 1)     # another pipe (a child process's): one line
        except OSError as e:        # the file system's own errors (a full disk): one line, never a traceback
            if interrupt.received():
                _interrupted()
            code = RUNTIME_ERRORS.get(type(e).__name__)
            if code is None and _in_echo(e):        # stdout itself (> /dev/full), not a file the command writes
                _fail(f"cannot write to standard output: {e.strerror or e}", 1)
            _fail(str(e) if code else _os_error_line(e), code or 1)
        except Exception as e:  # noqa: BLE001 - known runtime errors: one line, never a traceback
            if interrupt.received():        # e.g. a library turned the KeyboardInterrupt into another error
                _interrupted()
            code = RUNTIME_ERRORS.get(type(e).__name__)
            if code is None:
                raise
            _fail(str(e), code)
    return wrapper


class IntSet(click.ParamType):
    """Integers written one way everywhere: 2-7 (a range), 2,3,5 (a list), or both: 2-4,9."""
    name = "INTS"
    MAX = 10 ** 6

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        from badminima.engine.train.config import ConfigError, decimal_int, split_items
        out: set[int] = set()
        shown = str(value) if len(str(value)) <= 40 else str(value)[:40] + "..."
        try:
            for part in split_items(value, param.opts[0] if param else "value"):
                a, sep, b = part.partition("-")
                if len(a) > 20 or len(b) > 20:
                    raise ValueError
                lo, hi = decimal_int(a.strip()), decimal_int(b.strip()) if sep else decimal_int(a.strip())
                if lo > hi:
                    raise ValueError
                if not 0 <= lo <= hi <= self.MAX:
                    self.fail(f"{shown!r}: every value must lie in 0-{self.MAX}", param, ctx)
                out.update(range(lo, hi + 1))
        except ConfigError as e:
            self.fail(str(e), param, ctx)
        except ValueError:
            self.fail(f"{shown!r} is not a list of integers or ranges (e.g. 2-7 or 2,3,5)", param, ctx)
        return sorted(out)


class Choices(click.ParamType):
    """A comma-separated subset of fixed names (listed by --help, completed by the shell)."""
    name = "NAMES"

    def __init__(self, choices):
        self.choices = list(choices)

    def get_metavar(self, param, ctx=None):
        return "[" + "|".join(self.choices) + "],..."

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        from badminima.engine.train.config import ConfigError, split_items
        try:
            names = split_items(value, param.opts[0] if param else "value")
        except ConfigError as e:
            self.fail(str(e), param, ctx)
        bad = [t for t in names if t not in self.choices]
        if bad:
            self.fail(f"{value!r}: choose from {', '.join(self.choices)} (comma separated)", param, ctx)
        return list(dict.fromkeys(names))

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem
        head, _, last = incomplete.rpartition(",")
        return [CompletionItem((head + "," if head else "") + c) for c in self.choices if c.startswith(last)]


class InitLaw(click.ParamType):
    """An init law: normal:SIGMA, uniform:A, glorot or he (validated here, completed by the shell)."""
    name = "LAW"
    EXAMPLES = ("normal:1", "uniform:1", "glorot", "he")

    def convert(self, value, param, ctx):
        from badminima.engine.train.config import ConfigError, InitSpec
        try:
            InitSpec.parse(value)
        except ConfigError as e:
            self.fail(str(e), param, ctx)
        return value

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem
        return [CompletionItem(c) for c in self.EXAMPLES if c.startswith(incomplete)]


def emit_json(dest: str | None, text: str) -> bool:
    """Write JSON text to dest ('-': stdout, then nothing else is printed); True when it went to stdout."""
    if not dest:
        return False
    if dest == "-":
        click.echo(text)
        return True
    write_text(dest, text + "\n")
    click.echo(f"json: {dest}")
    return False


JSON_HELP = "also write {what} as JSON to FILE ('-': the JSON alone on stdout)"


def _open_stdio() -> None:
    """Open the standard descriptors on /dev/null where the caller closed them (`2>&-`), so that no file
    the command opens takes their number (a result file as fd 2 would receive a child's error output),
    and give Python streams for them: output to a closed descriptor goes nowhere, as to /dev/null."""
    import os
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            got = os.open(os.devnull, os.O_RDWR)        # the lowest free number: fd itself
            if got != fd:
                os.dup2(got, fd)
                os.close(got)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)
    for stream in (sys.stdout, sys.stderr):     # a file name that is not UTF-8 is shown escaped, \udcff
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass


def _check_numba_threads() -> None:
    """A bad NUMBA_NUM_THREADS is one line before anything imports Numba (engine/train/config.py)."""
    from badminima.engine.train.config import ConfigError, numba_threads_env
    try:
        numba_threads_env()
    except ConfigError as e:
        _fail(str(e), 2)


def _in_echo(e: BaseException) -> bool:
    """Whether an error was raised writing a command's output line (click.echo; stderr's lines never
    raise: say() and _fail() swallow their errors)."""
    import os
    import traceback
    return any(f.name == "echo" and os.sep + "click" + os.sep in f.filename
               for f in traceback.extract_tb(e.__traceback__))


def _stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has gone (poll reports an error on its write end)."""
    import select
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _broken_pipe():
    """stdout's reader went away (`| head`): stop quietly with the status a shell gives SIGPIPE."""
    import os
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())          # no second error at exit's flush
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass
    sys.exit(141)


class OneLineErrors(click.Group):
    """The command group: a usage error (unknown option, a value that is no integer, ...) is one line
    on stderr, `error: ...`, like every other error, with exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        _open_stdio()
        _check_numba_threads()
        gcpolicy.for_compiling()
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as e:
            if type(e).__name__ == "NoArgsIsHelpError":     # `badminima` alone: the help, as click shows it
                e.show()
                sys.exit(e.exit_code)
            ctx = getattr(e, "ctx", None)
            hint = f"; see `{ctx.command_path} --help`" if isinstance(e, click.UsageError) and ctx else ""
            msg = " ".join(e.format_message().split()).rstrip(".")
            _fail(msg + hint, e.exit_code)
        except click.Abort as e:
            from badminima.engine.train import interrupt
            if isinstance(e.__context__, KeyboardInterrupt) or interrupt.received():
                _interrupted()      # a stopping signal before the command's own handling began
            _fail("aborted", 1)
        except SystemExit as e:
            # click's own output (--help, --version) to a pipe whose reader has gone: click wraps stdout
            # in its (_)PacifyFlushWrapper and exits 1; end as the commands do, with the SIGPIPE status
            if e.code == 1 and type(sys.stdout).__name__.lstrip("_") == "PacifyFlushWrapper":
                _broken_pipe()
            raise
        from badminima.engine.train import interrupt
        interrupt.quiet()
        sys.exit(rv if isinstance(rv, int) else 0)


class Int64(click.ParamType):
    """An integer option that fits in 64 bits: a larger value (or a number of hundreds of digits) is a
    one-line usage error, not an OverflowError deep inside a run."""
    name = "integer"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            v = value
        else:
            from badminima.engine.train.config import decimal_int
            text = str(value).strip()
            if len(text) > 30:
                self.fail(f"a number of {len(text)} characters is out of range (64-bit integers)", param, ctx)
            try:
                v = decimal_int(text)
            except ValueError:
                self.fail(f"{text!r} is not an integer", param, ctx)
        if not -2 ** 63 <= v < 2 ** 63:
            self.fail(f"{v} is out of range (a 64-bit integer: at most 2^63 - 1)", param, ctx)
        return v


INT64 = Int64()


class Float(click.ParamType):
    """A real-number option written as every number is (click's FLOAT reads what float() reads: 1_0,
    other scripts' digits)."""
    name = "float"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        from badminima.engine.train.config import decimal_float
        text = str(value).strip()
        try:
            return decimal_float(text)
        except ValueError:
            self.fail(f"{text[:40]!r} is not a number", param, ctx)


FLOAT = Float()


class IntIn(Int64):
    """An integer option in [lo, hi], written as every integer is (click.IntRange reads what int() reads:
    1_0, other scripts' digits)."""
    name = "integer range"

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi

    def convert(self, value, param, ctx):
        v = super().convert(value, param, ctx)
        if not self.lo <= v <= self.hi:
            self.fail(f"{v} is not in the range {self.lo}..{self.hi}", param, ctx)
        return v


def available_cores() -> int:
    """The CPU cores this process may run on."""
    import os
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(threads, option: str = "--threads", minimum: int = 1):
    """--threads (or another count of threads or processes, e.g. --post-workers): >= minimum; more than
    the cores available (for --threads, or than NUMBA_NUM_THREADS) is clamped to them, with a note on stderr."""
    from badminima.engine.train.config import ConfigError, check_count
    if threads is None:
        return None
    try:
        check_count(threads, option, minimum)
    except ConfigError as e:
        _fail(str(e), 2)
    cores = available_cores()
    limit, what = cores, f"the {cores} core{'s' * (cores > 1)} available"
    from badminima.engine.train.config import numba_threads_env
    numba_threads = numba_threads_env()             # Numba's own cap (checked at start-up)
    if option == "--threads" and numba_threads is not None and numba_threads < cores:
        limit, what = numba_threads, f"NUMBA_NUM_THREADS={numba_threads}"
    ctx = click.get_current_context(silent=True)
    if threads > limit and not (ctx and ctx.meta.get(_CHECK_ONLY)):     # slurm/dask: the tasks' cores count
        say(f"note: {option} {threads} is more than {what}; using {limit}")
        return limit
    return threads


def out_file(path, what: str = "-o", result: bool = False):
    """Refuse an output file that cannot be written, before any work (engine/store/paths.py); None
    passes (the command's default).  result: a result file (the writer adds .part.tmp to its name)."""
    from badminima.engine.store import StoreError
    from badminima.engine.store.paths import WRITER_SUFFIX, check_output_file
    if path is None or (path == "-" and what == "--json"):       # --json -: stdout
        return None
    if not str(path).strip():
        _fail(f"{what} is empty: give a file name")
    try:
        return check_output_file(path, what=what, suffix=WRITER_SUFFIX if result else "",
                                 stream=what == "--json")
    except StoreError as e:
        _fail(str(e), 1)


def out_dir(path, what: str):
    """Refuse an output directory that cannot be made or written, before any work."""
    from badminima.engine.store import StoreError
    from badminima.engine.store.paths import check_output_dir
    if not str(path).strip():
        _fail(f"{what} is empty: give a directory")
    try:
        return check_output_dir(path, what=what)
    except StoreError as e:
        _fail(str(e), 1)


def cache_dir_option(path, what: str = "--numba-cache") -> None:
    """Refuse a cache folder that is a file here (the tasks would fail on it later); one that does not
    exist here may be on the nodes' storage and is left to them."""
    import os
    if path is not None and (not str(path).strip() or (os.path.exists(path) and not os.path.isdir(path))):
        _fail(f"{what} {path!r} is not a directory")


def write_text(path, text: str) -> None:
    """Write a text output (JSON, Markdown) atomically; a failure is one line (engine/store/paths.py)."""
    from badminima.engine.store.paths import write_text as write
    write(path, text)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="badminima")
def main():
    """Monte Carlo engine for bad local minima in tiny neural networks."""
    from badminima.engine.train import interrupt
    interrupt.install()             # Ctrl-C, SIGTERM, SIGHUP: stop at a safe point, never lost in a callback


def train_options(fn):
    """The options that define a training configuration (shared by train and the run commands)."""
    opts = [
        click.option("--dataset", default="xor", help="built-in name (xor, fxor, paper10, relu_d1..3) or a .json/.csv file"),
        click.option("--hidden", "-H", type=INT64, default=2, help="hidden units h, 1..32 (the kernels unroll "
                     "every unit: compile time and memory grow with h, docs/training.md)"),
        click.option("--act", type=click.Choice(list(ACTIVATIONS)), default="sigmoid", help="hidden activation"),
        click.option("--opt", type=click.Choice(list(OPTIMIZERS)), default="gd",
                     help="optimizer: gd and adam full batch, sgd one point per step"),
        click.option("--lr", type=FLOAT, default=0.5, help="learning rate"),
        click.option("--steps", type=INT64, default=10_000, help="step budget per network"),
        click.option("--init", "init", type=InitLaw(), default="normal:1", help="init law: normal:SIGMA, uniform:A, glorot, he"),
        click.option("--bias-init", type=click.Choice(["same", "zero"]), default="same", help="biases from the same law, or zero"),
        click.option("--networks", "-n", type=INT64, default=1000, help="number of networks"),
        click.option("--seed", type=INT64, default=0, help="run seed; network i's start depends on (seed, i) only"),
        click.option("--dtype", type=click.Choice(list(DTYPE_LANES)), default="float64", help="kernel precision"),
        click.option("--beta1", type=FLOAT, default=0.9, help="Adam beta1"),
        click.option("--beta2", type=FLOAT, default=0.999, help="Adam beta2"),
        click.option("--eps", type=FLOAT, default=1e-8, help="Adam epsilon"),
        click.option("--gtol", type=FLOAT, default=1e-6, help="gradient norm of a finite critical point"),
        click.option("--early-exit/--no-early-exit", default=True,
                     help="stop a network before its budget where its outcome is proven final"),
        click.option("--finish-horizon", type=FLOAT, default=100.0,
                     help="follow networks still unresolved at the end of the budget this many budgets further "
                          "along the gradient flow and classify them there (0: off)"),
        click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu",
                     help="cpu: the SIMD kernels; cuda: one NVIDIA GPU thread per network (needs numba-cuda)"),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def build_config(dataset, hidden, act, opt, lr, steps, init, bias_init, networks, seed, dtype,
                 beta1, beta2, eps, gtol, early_exit, finish_horizon, device="cpu"):
    """Load and validate the dataset and the options into (TrainConfig, Dataset)."""
    from badminima.engine.train.config import InitSpec, TrainConfig
    from badminima.engine.data.datasets import load_dataset
    ds = load_dataset(dataset)
    cfg = TrainConfig(dataset=dataset, dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=hidden,
                      activation=act, optimizer=opt, lr=lr, steps=steps,
                      init=InitSpec.parse(init, bias_init), networks=networks, seed=seed, dtype=dtype,
                      beta1=beta1, beta2=beta2, eps=eps, gtol=gtol, early_exit=early_exit,
                      finish_horizon=finish_horizon, device=device).validate().check_data(ds.x)
    return cfg, ds


def default_output(cfg) -> str:
    """runs/<name>.h5 with a name that identifies the configuration (so a rerun resumes it)."""
    from pathlib import Path
    from badminima.engine.store import config_tag
    tag = config_tag(cfg.to_dict())
    stem = Path(cfg.dataset).stem
    return f"runs/train-{stem}-h{cfg.hidden}-{cfg.activation}-{cfg.optimizer}-seed{cfg.seed}-{tag}.h5"


def run_options(fn):
    """Options of every command that writes a result file."""
    opts = [
        click.option("--output", "-o", default=None, help="result file (default runs/<name>.h5)"),
        click.option("--force", is_flag=True, help="replace an existing result (only once the new run finishes)"),
        click.option("--resume/--no-resume", default=None, help="require / refuse continuing an interrupted run (default: continue a matching one)"),
        click.option("--shard", default=None, help="run shard I/N of the networks (0-based; SLURM_ARRAY_TASK_ID fills I)"),
        click.option("--threads", type=INT64, default=None, help="Numba threads (default: all cores)"),
        click.option("--chunk", type=INT64, default=None, show_default=False,
                     help="networks per committed chunk (results do not depend on it) [default: 16384, fewer for "
                          "budgets over 131072 steps; 524288 with --device cuda]"),
        click.option("--quiet", "-q", is_flag=True, help="no progress line"),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def badness_options(fn):
    """Options of the deadlock search's tiers and robust-badness objective (search, minimality)."""
    opts = [
        click.option("--strong-delta", type=FLOAT, default=None, help="tier 'strong' needs the decision margin "
                     "delta* >= this (default 0.05)"),
        click.option("--kdstar", type=FLOAT, default=None, help="joint/delete/refine objective: weight of the push of "
                     "delta* towards 0.1 (0: off; default 10)"),
        click.option("--kconst", type=FLOAT, default=None, help="joint/delete/refine objective: weight of the push of "
                     "L - L_const above 0 (default 0: off)"),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def badness_overrides(strong_delta, kdstar, kconst) -> dict:
    """The given badness options as SearchConfig fields."""
    return {k: v for k, v in (("strong_delta", strong_delta), ("kdstar", kdstar), ("kconst", kconst))
            if v is not None}


def parse_run_options(shard, threads, chunk):
    """Validate the execution options; returns (the shard dict or None, the threads to use)."""
    import os
    from badminima.engine.store import StoreError, parse_shard
    if chunk is not None and chunk < 1:
        _fail(f"--chunk must be >= 1, got {chunk}")
    threads = check_threads(threads)
    from_env = shard is not None and "/" not in shard and bool(os.environ.get("SLURM_ARRAY_TASK_ID"))
    if from_env:
        shard = f"{os.environ['SLURM_ARRAY_TASK_ID']}/{shard}"
    elif shard is not None and "/" not in shard and shard.strip().isdigit():
        _fail(f"--shard {shard.strip()} (N alone) takes I from SLURM_ARRAY_TASK_ID, which is not set here; "
              f"give --shard I/N", 2)
    try:
        return (parse_shard(shard) if shard is not None else None), threads
    except StoreError as e:          # a malformed option: usage error
        _fail(str(e) + (" (I from SLURM_ARRAY_TASK_ID)" if from_env else ""), 2)


@main.command()
@train_options
@run_options
@click.option("--init-weights", is_flag=True, help="also store every network's initial weights")
@click.option("--check-final", type=INT64, default=0,
              help="continue up to K early-stopped networks to the end of their budget and report how many "
                   "keep their outcome")
@friendly_errors
def train(output, force, resume, shard, threads, chunk, quiet, init_weights, check_final, **opts):
    """Train many d-h-1 networks from random starts, stream the results to HDF5, print outcome counts."""
    from badminima.engine.train.cells import Cell, run_cells
    out_file(output, result=True)
    cfg, ds = build_config(**opts)
    shard_d, threads = parse_run_options(shard, threads, chunk)
    if check_final < 0:
        _fail(f"--check-final must be >= 0, got {check_final}")
    ready()
    path = output or out_file(default_output(cfg), result=True)
    counts = run_cells(path, {"command": "train", **cfg.to_dict()}, [Cell("main", cfg, ds)], shard=shard_d,
                       force=force, resume="auto" if resume is None else resume, chunk=chunk, threads=threads, keep_init=init_weights,
                       progress=not quiet)["main"]
    click.echo(f"{cfg.dataset} ({ds.n} points, {ds.kind}), {ds.d}-{cfg.hidden}-1 {cfg.activation}, "
               f"{cfg.optimizer} lr={cfg.lr:g}, {cfg.steps} steps, init {cfg.init} (bias {cfg.init.bias}), "
               f"{cfg.dtype}, seed {cfg.seed}")
    from badminima.engine.store import open_results
    res = open_results(path)
    click.echo(format_counts(counts, sum(counts.values()), res.code_counts("main", "optimizer_outcome")))
    if check_final:
        from badminima.analysis.table1 import format_finality
        from badminima.engine.paper.table1 import finality
        click.echo(format_finality(finality(res, [Cell("main", cfg, ds)], check_final, seed=cfg.seed,
                                            threads=threads)))
    click.echo(f"results: {path}")
    click.echo(f"next: badminima report {_shell(path)} --out-dir report   (rates with intervals, distinct minima, figures)")


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--cell", "cells", multiple=True, help="show this cell in full: configuration, counts, intervals "
              "(name or label; repeatable)")
@click.option("--json", "json_out", default=None, metavar="FILE", help=JSON_HELP.format(what="everything"))
@click.option("--verify/--no-verify", default=True,
              help="read every stored value first (checksums) and exit 1 on a corrupt file")
@friendly_errors
def show(files, cells, json_out, verify):
    """What result files (or shards) hold: several cells as one line each, a single cell in full; a
    deadlock search's summary table."""
    import json
    from badminima.analysis.load import load_cells, select_cells
    from badminima.analysis.show import cell_detail, show_json, show_text
    from badminima.engine.store import expand_paths, open_results
    out_file(json_out, "--json")
    paths = expand_paths(list(files))
    opened = [open_results(path) for path in paths]
    if verify:                          # a corrupt file fails here, in one line, before anything is shown
        for res in opened:
            res.verify()
    searches = [res.config.get("command") == "search" for res in opened]
    if any(searches):
        from badminima.engine.search.run import format_table, summarize
        if not all(searches):
            _fail("these files mix deadlock searches and training results: show them apart", 2)
        if cells:
            _fail("--cell: a deadlock search has no cells to choose from", 2)
        summary = summarize(paths)
        if json_out != "-":
            click.echo(format_table([summary]))
        emit_json(json_out, json.dumps(summary, indent=1, default=str))
        return
    chosen = select_cells(load_cells(paths, progress=False, opened=opened), cells)
    if json_out != "-":
        click.echo("\n\n".join(cell_detail(c) for c in chosen) if cells else show_text(chosen))
    emit_json(json_out, json.dumps(show_json(chosen, detail=bool(cells)), indent=1, default=str))


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--output", "-o", required=True, help="the merged result file")
@click.option("--force", is_flag=True, help="replace an existing output")
@friendly_errors
def merge(inputs, output, force):
    """Merge complete shards of one configuration into one file (identical to a single run)."""
    from badminima.engine.store import merge as merge_files
    out_file(output, result=True)
    from badminima.engine.store import expand_paths
    paths = expand_paths(list(inputs))          # each file once, however often or however it was named
    merged = merge_files(paths, output, force=force)
    click.echo(f"{merged}: the merge of {len(paths)} file{'s' * (len(paths) != 1)}")
    from badminima.engine.store import open_results
    if open_results(merged).config.get("command") == "search":
        click.echo(f"next: badminima show {_shell(merged)}   (the search's summary)")
    else:
        click.echo(f"next: badminima report {_shell(merged)} --out-dir report")


def format_counts(counts: dict[str, int], total: int, optimizer: dict[str, int] | None = None) -> str:
    """Outcome | count | percent table; with `optimizer`, a column of the optimizer's own verdicts (before
    the finisher resolved the networks it left unresolved)."""
    lines = [f"{'outcome':<15}{'count':>12}{'percent':>10}" + (f"{'optimizer alone':>17}" if optimizer else "")]
    for name, c in counts.items():
        lines.append(f"{name:<15}{c:>12}{100.0 * c / max(total, 1):>9.2f}%"
                     + (f"{optimizer.get(name, 0):>17}" if optimizer else ""))
    lines.append(f"{'total':<15}{total:>12}")
    return "\n".join(lines)


@main.command("compile")
@click.option("--hidden", type=IntSet(), default="2-7", help="hidden sizes, e.g. 2-7 or 2,3")
@click.option("--act", type=Choices(ACTIVATIONS), default="sigmoid,relu", help="activations")
@click.option("--opt", type=Choices(OPTIMIZERS), default="gd,adam,sgd", help="optimizers")
@click.option("--dtype", type=Choices(DTYPE_LANES), default="float64,float32",
              help="precisions (train runs float64 by default, table1 / reproduce float32)")
@click.option("--dim", type=IntSet(), default="2", help="input dimensions (1 = ReLU regression)")
@click.option("--sizes", type=IntSet(), default=None,
              help="dataset sizes to specialize full-batch kernels for, e.g. 4,10 (default: the paper's datasets')")
@click.option("--workers", type=INT64, default=None,
              help="compiler processes, at most one per core (default: one per core)")
@friendly_errors
def compile_cmd(hidden, act, opt, dtype, dim, sizes, workers):
    """Compile (and cache on disk) every kernel a run will need, on every core, e.g. before a cluster fans out."""
    import time
    from badminima.engine.train.warmup import variants_for, warm
    if workers is not None:         # each compiling process takes 150-250 MB: no more than the cores
        workers = check_threads(workers, "--workers")
    t0 = time.monotonic()
    variants = variants_for(dim, hidden, act, opt, dtype, points=sizes)
    ready()
    for v in variants:
        say(f"  {v.label()}")
    compiled = warm(variants, workers=workers)
    click.echo(f"{len(variants)} kernel variants ready ({compiled} compiled, {len(variants) - compiled} "
               f"already cached) in {time.monotonic() - t0:.1f} s")


@main.command()
@click.argument("file")
@click.option("--point", "points", multiple=True, help="point to certify (repeatable; default: all points in FILE)")
@click.option("--witness", default=None, help="name of a point in FILE whose lower loss proves 'not global'")
@click.option("--cross-check", is_flag=True, help="re-prove with mpmath's interval arithmetic as well")
@click.option("--json", "json_out", default=None, metavar="FILE", help=JSON_HELP.format(what="the full report"))
@friendly_errors
def certify(file, points, witness, cross_check, json_out):
    """Prove (or refuse) that FILE's weight points are local minima: Arb/Krawczyk for sigmoid/tanh nets,
    an exact rational test for ReLU regression.  FILE: a data/ JSON file or a built-in dataset name."""
    import json
    from badminima.engine.certify.files import certify_file, format_report
    from badminima.engine.data.datasets import locate
    from badminima.engine.store.paths import check_not_input
    out_file(json_out, "--json")
    if json_out not in (None, "-"):
        check_not_input(json_out, [locate(file)], what="--json")
    rep = certify_file(file, point_names=list(points) or None, witness=witness, cross_check=cross_check)
    if json_out != "-":
        click.echo(format_report(rep))
    emit_json(json_out, json.dumps(rep, indent=1, allow_nan=False))


# ---------------------------------------------------------------------------------------------------
# cluster runs (engine/cluster/)

@main.command()
@click.argument("target")
@click.option("--shards", type=INT64, default=None, help="number of shards N (default: read from the files)")
@click.option("--check", is_flag=True, help="exit 1 unless every shard is complete and every stored value reads back")
@friendly_errors
def status(target, shards, check):
    """Complete, partial (committed networks) and missing shards of a sharded run: TARGET is the
    directory of its shard files (as written by `badminima slurm`) or a glob."""
    from badminima.engine.cluster.shards import shard_status
    if shards is not None and shards < 1:
        _fail(f"--shards must be >= 1, got {shards}")
    st = shard_status(target, shards)
    if check and st.complete:       # before a merge is suggested: every value read (checksums), as show does
        from badminima.engine.store import open_results
        open_results([shard.path for shard in st.shards]).verify()
    click.echo(st.format())
    if check and not st.complete:
        sys.exit(1)


def split_words(text: str | None, option: str) -> list[str] | None:
    """A shell-quoted option value (--exe, --warmup) as its words; a malformed one is one usage line."""
    import shlex
    if text is None:
        return None
    try:
        return shlex.split(text)
    except ValueError as e:         # e.g. an unclosed quote
        _fail(f"{option} {text!r}: {str(e).lower()}")


_CHECK_ONLY = "badminima.check_only"
_ERRORS_IN = "badminima.errors_in"          # what _fail's line names as the place of the error


class _Checked(Exception):
    """Raised by ready() in a run command invoked only to check its options (slurm, dask)."""


def ready() -> None:
    """A run command calls this once every input is validated, before any work: where `slurm` or `dask`
    invoke it only to check the options every task will get, it stops here."""
    if click.get_current_context().meta.get(_CHECK_ONLY):
        raise _Checked


def _checked_warmup(ctx, words: list[str]) -> list[str]:
    """--warmup's words, parsed as the badminima command they name, so that a typo is refused here and
    not in the warm-up job on the cluster; empty words mean no warm-up."""
    import shlex
    if not words:
        return words
    cmd = main.get_command(ctx, words[0])
    if cmd is None:
        _fail(f"--warmup {shlex.join(words)!r}: {words[0]!r} is not a badminima command (e.g. 'compile')")
    if set(words[1:]) & set(ctx.help_option_names):
        _fail("--warmup must run a command, not ask for its --help")
    try:
        sub = cmd.make_context(words[0], list(words[1:]), parent=ctx)
    except click.ClickException as e:
        _fail(f"in --warmup `{shlex.join(words)}`: {' '.join(e.format_message().split()).rstrip('.')}")
    if words[0] == "compile" or "shard" in {p.name for p in cmd.params}:     # commands that call ready()
        _check_only(cmd, sub, f"in --warmup `{shlex.join(words)}`: ")     # the values too (--hidden 0)
    return words


def _check_only(cmd, sub, errors_in: str = "") -> None:
    """Invoke a command that calls ready() in its context `sub` only up to there: its options are
    validated (one-line refusals, their lines prefixed by errors_in) and no work is done."""
    sub.meta[_CHECK_ONLY] = True
    sub.meta[_ERRORS_IN] = errors_in
    try:
        with sub:
            cmd.invoke(sub)
    except _Checked:
        pass
    finally:
        sub.meta.pop(_CHECK_ONLY, None)
        sub.meta.pop(_ERRORS_IN, None)


def _check_not_run_input(params: dict, **outputs) -> None:
    """Refuse (before anything is written) an output of slurm or dask (outputs: option name -> path, None
    where not given) that is one of the files the run command reads: its dataset, a search's parents.
    --force never makes such a file replaceable."""
    from badminima.engine.data.datasets import DataError, locate
    from badminima.engine.search.run import parent_files
    from badminima.engine.store import StoreError
    from badminima.engine.store.paths import check_not_input
    inputs = []
    try:
        if params.get("dataset"):
            inputs.append(str(locate(params["dataset"])))
        inputs += parent_files(params.get("parents") or ())
    except DataError:               # the run's own check refuses a missing one
        pass
    try:
        for option, path in outputs.items():
            if path:
                check_not_input(path, inputs, what="--" + option)
    except StoreError as e:
        _fail(str(e), 2)


def _sharded_run(ctx, run, shards: int, threads: int):
    """(name, args, params) of the run command RUN that a cluster backend shards; one-line refusals."""
    from badminima.engine.core.names import lanes_for
    if shards < 1:
        _fail(f"--shards must be >= 1, got {shards}")
    name, args = run[0], list(run[1:])
    if args[:1] == ["--"]:
        args = args[1:]
    cmd = main.get_command(ctx, name)
    if cmd is None or "shard" not in {p.name for p in cmd.params}:
        _fail(f"{name!r} is not a badminima run command (one with --shard, e.g. train)")
    try:
        params = cmd.make_context(name, list(args), parent=ctx).params
    except click.ClickException as e:
        _fail(f"in the run command `{name}`: {e.format_message()}")
    if params.get("output"):
        _fail("the run command must not set -o/--output: shard files go to --out-dir")
    if params.get("shard"):
        _fail("the run command must not set --shard: each task sets it")
    if params.get("json_out"):
        _fail(f"the run command must not set --json: every task would write it; after merging, the same "
              f"`badminima {name}` command with -o MERGED --json FILE writes it from the merged file")
    _check_only(cmd, cmd.make_context(name, list(args) + ["--shard", f"0/{shards}"], parent=ctx))
    n = params.get("networks")
    lanes = lanes_for(params.get("dtype") or "float64")     # one SIMD block per thread; fewer wastes lanes
    if isinstance(n, int) and n // max(shards, 1) < lanes * threads:
        _fail(f"{n} networks in {shards} shards is {n // max(shards, 1)} per task; give each task at least "
              f"{lanes * threads} ({lanes} per thread in {params.get('dtype') or 'float64'}): use fewer shards")
    return name, args, params


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("run", nargs=-1, type=click.UNPROCESSED, required=True)
@click.option("--shards", type=INT64, required=True, help="number of shards N (array tasks)")
@click.option("--throttle", type=INT64, default=None, help="at most K tasks at once (default: no limit)")
@click.option("--time", "time_limit", default="01:00:00", help="time limit per task (SLURM syntax)")
@click.option("--cpus-per-task", type=INT64, default=1, help="CPUs per task = Numba threads")
@click.option("--partition", default=None, help="SLURM partition")
@click.option("--max-array-size", type=INT64, default=None, help="the site's MaxArraySize (default: scontrol show config)")
@click.option("--out-dir", "outdir", default=None, help="directory of the shard files (default: runs/<script name>)")
@click.option("--numba-cache", default=None, help="NUMBA_CACHE_DIR on shared storage (default: DIR/numba-cache)")
@click.option("--job-name", default=None, help="SLURM job name (default: badminima-<command>)")
@click.option("--sbatch", "sbatch_extra", multiple=True, help="extra sbatch option, e.g. --sbatch=--account=abc (repeatable)")
@click.option("--warmup", default=None, help="badminima arguments of the warm-up job (default: derived from the run)")
@click.option("--no-warmup", is_flag=True, help="no warm-up compile job")
@click.option("--requeue/--no-requeue", default=True, help="requeue tasks near their time limit (they resume)")
@click.option("--max-requeues", type=INT64, default=3, help="requeues per task at the time limit")
@click.option("--exe", default=None, help="how tasks start badminima (default: this installation's badminima)")
@click.option("--script", "script", required=True, help="the sbatch script to write")
@click.option("--submit", is_flag=True, help="submit it (bash SCRIPT)")
@click.option("--wait", is_flag=True, help="submit, then wait for the jobs and print the status")
@click.option("--timeout", type=FLOAT, default=None, help="give up waiting after this many seconds")
@click.option("--poll", type=FLOAT, default=10.0, help="seconds between queue polls")
@click.option("--merge", "merge_out", default=None, help="submit, wait, then merge the shards into this file")
@click.pass_context
@friendly_errors
def slurm(ctx, run, shards, throttle, time_limit, cpus_per_task, partition, max_array_size, outdir, numba_cache,
          job_name, sbatch_extra, warmup, no_warmup, requeue, max_requeues, exe, script, submit, wait, timeout,
          poll, merge_out):
    """Write a SLURM job-array script running RUN (a badminima run command and its options, e.g.
    `train --dataset xor -n 1000000`) as N shards, with a warm-up compile job first.

    \b
      badminima slurm train -n 1000000 --shards 100 --throttle 20 --cpus-per-task 4 -o job.sh
      bash job.sh            # submit (or add --submit / --wait / --merge OUT here)
      badminima status runs/job
    """
    import math
    import os
    import shlex
    import shutil
    from pathlib import Path
    from badminima.engine.cluster import slurm as cluster
    from badminima.engine.cluster.shards import warmup_args
    name, args, params = _sharded_run(ctx, run, shards, cpus_per_task)
    if timeout is not None and not timeout > 0:
        _fail(f"--timeout must be positive, got {timeout}")
    if not (poll > 0 and math.isfinite(poll)):
        _fail(f"--poll must be positive and finite, got {poll}")
    warm_words, exe_words = split_words(warmup, "--warmup"), split_words(exe, "--exe")
    if exe_words and shutil.which(exe_words[0]) is None:      # it may exist on the nodes only: a note
        say(f"note: --exe {exe_words[0]} is not found on this machine; the cluster's nodes must have it")
    out_file(script, "--script")
    _check_not_run_input(params, script=script, merge=merge_out)
    cache_dir_option(numba_cache)
    if outdir is None and "%" in Path(script).stem:
        _fail(f"the default --out-dir runs/{Path(script).stem} (from --script) would hold a %, which SLURM reads "
              f"in log file names as a pattern; give --out-dir or a script name without %")
    outdir = outdir or os.path.join("runs", Path(script).stem)
    out_dir(outdir, "--out-dir")
    if merge_out:       # refused now, not after the array has run
        from badminima.engine.store import StoreError, check_merge_output
        try:
            check_merge_output(merge_out, force=False, shard_dir=outdir, option="--merge")
        except StoreError as e:
            _fail(str(e), 1)      # an output that exists or cannot be written
    if max_array_size is None:
        max_array_size, source = cluster.site_max_array_size()
    else:
        source = "--max-array-size"
    if no_warmup:
        warm = None
    elif warm_words is not None:
        warm = _checked_warmup(ctx, warm_words)
    else:
        warm = warmup_args(params, [name, *args], outdir)
    job = cluster.SlurmJob(run=[name, *args], shards=shards, outdir=outdir, time_limit=time_limit,
                           cpus_per_task=cpus_per_task, throttle=throttle, partition=partition,
                           max_array_size=max_array_size, max_array_source=source, numba_cache_dir=numba_cache,
                           job_name=job_name or f"badminima-{name}", warmup=warm, requeue=requeue,
                           max_requeues=max_requeues, sbatch_extra=list(sbatch_extra))
    if exe_words:
        job.exe = exe_words
    try:
        cluster.write_script(job, script)
    except ValueError as e:
        _fail(str(e))
    except OSError as e:
        from badminima.engine.store.paths import os_error_message
        _fail(os_error_message(e, script), 1)
    parts = job.parts
    click.echo(f"wrote {script}: {shards} shards of `badminima {shlex.join([name, *args])}` -> "
               f"{os.path.abspath(outdir)}/, {len(parts)} array submission{'s' * (len(parts) > 1)}"
               f" (MaxArraySize {max_array_size}, {source})" + ("" if warm else ", no warm-up"))
    if not (submit or wait or merge_out):
        click.echo(f"submit with: bash {_shell(script)}")
        return
    ids = cluster.submit(script)
    click.echo(f"submitted jobs {' '.join(ids)}")
    if not (wait or merge_out):
        return
    st = cluster.wait_for(ids, outdir, shards, timeout=timeout, poll=poll, echo=say)
    click.echo(st.format())
    if not st.complete:
        _fail(f"not every shard is complete; see {os.path.join(outdir, 'logs')} and rerun `bash {_shell(script)}`", 1)
    if merge_out:
        from badminima.engine.store import merge as merge_files
        click.echo(f"{merge_files(st.complete_files(), merge_out)}: the merge of {shards} shards")


@main.command("dask", context_settings={"ignore_unknown_options": True})
@click.argument("run", nargs=-1, type=click.UNPROCESSED, required=True)
@click.option("--shards", type=INT64, required=True, help="number of shards N (tasks)")
@click.option("--workers", type=INT64, default=None, help="LocalCluster worker processes (default and most: CPU count // --threads, and no more than --shards)")
@click.option("--threads", type=INT64, default=1, help="Numba threads per task")
@click.option("--scheduler", default=None,
              help="a running Dask scheduler (tcp://host:port or a scheduler file, e.g. from dask-jobqueue) instead of a LocalCluster")
@click.option("--connect-timeout", type=FLOAT, default=30.0, help="seconds to wait for --scheduler")
@click.option("--out-dir", "outdir", default=None, help="directory of the shard files (default: runs/dask-<command>-<hash of RUN and N>)")
@click.option("--numba-cache", default=None, help="NUMBA_CACHE_DIR of the tasks (default: the workers' own)")
@click.option("--exe", default=None, help="how tasks start badminima (default: this installation's badminima)")
@click.option("--merge", "merge_out", default=None, help="merge the shards into this file once all are complete")
@click.option("--force", is_flag=True, help="let --merge replace an existing file")
@click.option("--quiet", "-q", is_flag=True, help="no progress line")
@click.pass_context
@friendly_errors
def dask_cmd(ctx, run, shards, workers, threads, scheduler, connect_timeout, outdir, numba_cache, exe, merge_out,
             force, quiet):
    """Run the shards of RUN (a badminima run command such as `train --dataset xor -n 1000000`) on a Dask
    cluster, then report (and merge) them; rerun the same command to resume.

    \b
      badminima dask train -n 1000000 --shards 40 --workers 2 --merge xor.h5
      badminima dask table1 -n 100000 --shards 200 --scheduler sched.json --out-dir /scratch/t1
    """
    import hashlib
    import os
    import shlex
    from badminima.engine.cluster import dask as dask_backend
    from badminima.engine.cluster.shards import warmup_args
    name, args, params = _sharded_run(ctx, run, shards, threads)
    if scheduler and workers is not None:
        _fail("--workers sizes a LocalCluster; with --scheduler the scheduler's workers run the tasks")
    cores = available_cores()
    cap = max(1, cores // max(threads, 1))          # the LocalCluster's processes share this machine
    if workers is None:
        workers = cap
    elif workers > cap:
        say(f"note: --workers {workers} x --threads {threads} is more than the {cores} "
            f"core{'s' * (cores > 1)} available; using {cap} worker{'s' * (cap > 1)}")
        workers = cap
    workers = min(workers, shards)                          # a worker without a shard would only idle
    cache_dir_option(numba_cache)
    if outdir is not None:
        out_dir(outdir, "--out-dir")
    if merge_out is not None:
        out_file(merge_out, "--merge", result=True)
        _check_not_run_input(params, merge=merge_out)
    if outdir is None:      # one directory per run command, so another configuration never meets these shards
        tag = hashlib.sha256(f"{shlex.join(args)} --shards {shards}".encode()).hexdigest()[:8]
        outdir = os.path.join("runs", f"dask-{name}-{tag}")
    outdir = os.path.abspath(outdir)        # the workers may run elsewhere
    try:                                    # every option checked before --out-dir is made
        job = dask_backend.DaskJob(run=(name, *args), shards=shards, outdir=outdir,
                                   warmup=tuple(warmup_args(params, [name, *args], outdir)),
                                   workers=workers,
                                   threads=threads, scheduler=scheduler, connect_timeout=connect_timeout,
                                   numba_cache_dir=numba_cache, exe=tuple(split_words(exe, "--exe") or ())).validate()
    except ValueError as e:
        _fail(str(e))
    if merge_out:                           # refused before --out-dir is made
        from badminima.engine.store import StoreError, check_merge_output
        try:
            check_merge_output(merge_out, force=force, shard_dir=outdir, option="--merge")
        except StoreError as e:
            _fail(str(e), 1)      # an output that exists or cannot be written
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        _fail(f"cannot use --out-dir {outdir}: {e.strerror or e}")
    st = dask_backend.run(job, echo=say, progress=not quiet)
    click.echo(st.format())
    if not st.complete:
        _fail(f"not every shard is complete; see {os.path.join(outdir, 'logs')} and rerun the same command", 1)
    if merge_out:
        from badminima.engine.store import merge as merge_files
        click.echo(f"{merge_files(st.complete_files(), merge_out, force=force)}: the merge of {shards} shards")


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--out-dir", "output", default="report", help="output directory (report.md, CSVs, figures/)")
@click.option("--tol", type=FLOAT, default=1e-4, help="parameter tolerance for grouping minima modulo symmetry")
@click.option("--loss-tol", type=FLOAT, default=1e-2, help="final-loss gap that separates drifting plateaus")
@click.option("--pdf/--no-pdf", default=True, help="also write every figure as PDF")
@click.option("--cell", "cells", multiple=True, help="write this cell's detail: critical points, plateaus, "
              "figures (name or label; repeatable)")
@click.option("--details/--no-details", default=None, help="every cell's detail / only the --cell cells' "
              "[default: the --cell cells, or every cell of files with at most 4]")
@click.option("--cell-figures/--no-cell-figures", default=True, help="figures in the per-cell detail (losses, basins, regions/fits)")
@click.option("--dpi", type=IntIn(10, 1200), default=200, help="PNG resolution (10..1200)")
@click.option("--quiet", "-q", is_flag=True, help="no progress lines")
@friendly_errors
def report(files, output, tol, loss_tol, pdf, cells, details, cell_figures, dpi, quiet):
    """Analyse result files (any runs, shards, globs) into OUTPUT/report.md: an overview (rates, convergence,
    the paper's Table 1, clear differences), then per-cell detail where asked, with CSVs and figures."""
    from badminima.analysis.report import write_report
    out_dir(output, "--out-dir")
    path = write_report(list(files), output, tol=tol, loss_tol=loss_tol, pdf=pdf, dpi=dpi,
                        cell_figures=cell_figures, progress=not quiet, details=details, cells=cells)
    click.echo(f"report: {path}")


@main.command()
@click.argument("kind", type=click.Choice(FIGURE_KINDS))
@click.argument("files", nargs=-1, required=True)
@click.option("--figure", "output", required=True, help="figure file: .png, .pdf or .svg")
@click.option("--cell", "cells", multiple=True, help="cell name or label to draw (repeatable; default all)")
@click.option("--networks", default=None,
              help="network indices for regions/fit, at most 64, e.g. 0,5,17 (default: solved and stuck ones)")
@click.option("--point", "points", multiple=True, help="dataset weight point to draw too (regions/fit), e.g. W_hat, prop1")
@click.option("--size", default=None,
              help="figure size in inches, WxH, each in [0.5, 100] (default depends on the figure)")
@click.option("--dpi", type=IntIn(10, 1200), default=200, help="resolution, 10..1200 (PNG pixels = size x dpi)")
@click.option("--title", default=None, help="title (minimality; default: Minimality of weight points)")
@click.option("--quiet", "-q", is_flag=True, help="no progress lines")
@friendly_errors
def plot(kind, files, output, cells, networks, points, size, dpi, title, quiet):
    """One figure: KIND of FILES (result files; for minimality one JSON/CSV rows file)."""
    from badminima.analysis import figures, plots
    figures.check_output(output, files, "--figure")
    kw = figures.figure_options(size, dpi)
    try:
        nets = [int(s) for s in networks.split(",")] if networks else []
    except ValueError:
        _fail(f"bad --networks {networks!r}: expected network indices, e.g. 0,5,17")
    fig = plots.figure(kind, list(files), cells=cells, networks=nets, points=points, title=title,
                       progress=not quiet, **kw)
    try:
        path = figures.save(fig, output)
    except ValueError as e:         # e.g. an unknown image format from matplotlib
        if type(e).__name__ == "ResourceError":
            raise                       # one line from friendly_errors: the figure would not fit in memory
        _fail(f"cannot write {output}: {e}")
    click.echo(f"wrote {path}")


@main.command()
@click.option("--n-points", "-N", "n_points", type=INT64, required=True, help="number of data points N")
@click.option("--budget", "-k", type=INT64, default=1000, help="number of candidates (attempts)")
@click.option("--seed", type=INT64, default=0, help="candidate n's start depends on (seed, n) only")
@click.option("--strategy", default="joint", help="joint (points + output weights, penalties), paper "
              "(theta fixed, points descend ||grad||^2), delete (continuation from (N+1)-point parents), refine "
              "(joint from certified N-point parents)")
@click.option("--parents", multiple=True, help="delete: certified (N+1)-point, refine: N-point dataset "
              "FILE[:POINT] or glob pattern ('found/N8_*.json'), repeatable (delete, N = 9: default paper10:W_hat)")
@click.option("--ones", default=None, help="label splits: numbers of points labelled 1, e.g. 5,4 (k and N-k are one split, the labels flipped: name one)")
@click.option("--iters", type=INT64, default=None, help="optimizer iterations per candidate (default: 600 "
              "joint/delete/refine, 1000 paper)")
@click.option("--found-dir", default="runs/search/found", help="where certified datasets are exported")
@click.option("--post-workers", type=INT64, default=0, show_default=True,
              help="post-process float survivors (witness, rounding, certificate) in this many processes "
                   "(0/1: in this one; records are the same)")
@click.option("--jitter", type=FLOAT, default=None, help="delete/refine: candidate variant m moves the parent's "
              "points by m x JITTER x N(0, 1) each (default 0.05)")
@click.option("--bound", type=FLOAT, default=None, help="joint/delete/refine: bound the optimizer keeps the "
              "|hidden pre-activations| under (default 5; the screen calls a point degenerate above 6)")
@badness_options
@run_options
@friendly_errors
def search(n_points, budget, seed, strategy, parents, ones, iters, found_dir, post_workers, jitter, bound,
           strong_delta, kdstar, kconst, output, force, resume, shard, threads, chunk, quiet):
    """Search for N-point datasets with a certified bad (strict, finite, non-global) local minimum of the
    2-2-1 sigmoid network; stream every candidate and its verdict to HDF5, export certified datasets."""
    from badminima.engine.search.run import (SearchConfig, check_used, default_parents,
                                             default_path as default_search_path, format_table, parse_ones,
                                             run_search)
    out_file(output, result=True)
    out_dir(found_dir, "--found-dir")
    shard_d, threads = parse_run_options(shard, threads, chunk)
    post_workers = check_threads(post_workers, "--post-workers", minimum=0)
    parents = parents or default_parents(strategy, n_points)
    splits = parse_ones(ones) if ones is not None else ()
    kw = {k: v for k, v in (("iters", iters), ("bound", bound), ("jitter", jitter)) if v is not None}
    kw.update(badness_overrides(strong_delta, kdstar, kconst))
    check_used(strategy, [*kw, *(["ones"] if ones is not None else [])])     # given, even at its default
    cfg = SearchConfig(points=n_points, budget=budget, seed=seed, strategy=strategy, parents=tuple(parents),
                       ones=splits, found_dir=found_dir, **kw).validate()
    lone = [k for k in cfg.label_splits() if min(k, n_points - k) == 1] if strategy in ("joint", "paper") else []
    if lone and not quiet:
        say(f"note: --ones {','.join(map(str, lone))}: one class is a single point, where no strict minimum "
            "exists (docs/search.md, 'Why a lone point never deadlocks'): those candidates cannot be certified")
    ready()
    path = output or out_file(default_search_path(cfg), result=True)
    s = run_search(cfg, path, shard=shard_d, force=force, resume="auto" if resume is None else resume,
                   chunk=chunk, threads=threads, progress=not quiet,
                   post_workers=post_workers)
    click.echo(f"search N={n_points} strategy={strategy} seed={seed}: " +
               ", ".join(f"{k} {v}" for k, v in s["verdicts"].items() if v))
    click.echo(format_table([s]))
    click.echo(f"results: {path}; certified datasets: {found_dir}/ ({len(s['found'])} files)")
    if s["found"]:
        click.echo(f"next: badminima certify {_shell(s['found'][0])} --cross-check   (re-prove the best one)")


for _p in search.params:            # a search commits small chunks (each candidate may train a witness)
    if _p.name == "chunk":
        _p.help = ("candidates per committed chunk (records do not depend on it) [default: 256, fewer where "
                   "--iters is large]")


@main.command()
@click.option("--n-points", "-N", "pts", type=IntSet(), default="4-12", help="numbers of data points, e.g. 4-12 or 8,9,10")
@click.option("--budget", "-k", type=INT64, default=500, help="attempts per N and strategy")
@click.option("--seed", type=INT64, default=0, help="search seed")
@click.option("--strategies", default="joint,delete,refine", help="comma-separated: joint, paper, delete, refine "
              "(run in that order per N)")
@click.option("--paper-parent", is_flag=True, help="also delete points from the paper's paper10/W_hat at N = 9")
@click.option("--out-dir", "study_dir", default="runs/minimality", help="one result file per (N, strategy), found/ datasets")
@click.option("--json", "json_out", default=None, metavar="FILE",
              help=JSON_HELP.format(what="the table (a rows file for `badminima plot minimality`)"))
@click.option("--force", is_flag=True, help="redo (replace) existing result files")
@click.option("--threads", type=INT64, default=None, help="Numba threads (default: all cores)")
@click.option("--quiet", "-q", is_flag=True, help="no progress lines")
@badness_options
@friendly_errors
def minimality(pts, budget, seed, strategies, paper_parent, study_dir, json_out, force, threads, quiet,
               strong_delta, kdstar, kconst):
    """Is 10 really the fewest points?  Search every N (largest first): random starts, deletion by
    continuation from the certified (N+1)-point datasets found, then refinement of the best N-point ones
    (pushing delta* up); print N | attempts | float candidates |
    certified | strong-tier certified | best delta* | best L - L_const | best example."""
    import json
    from badminima.engine.train.config import ConfigError
    from badminima.engine.search.run import STRATEGY_NAMES, format_table, minimality as run_study, study_writes
    from badminima.engine.train.config import split_items
    strats = tuple(split_items(strategies, "--strategies"))
    if any(s not in STRATEGY_NAMES for s in strats):
        raise ConfigError(f"--strategies must be a comma-separated subset of {', '.join(STRATEGY_NAMES)}")
    if paper_parent and (9 not in pts or "delete" not in strats):       # an option the study would not read
        raise ConfigError("--paper-parent adds paper10's W_hat as a parent of the delete strategy at N = 9: "
                          "it needs 9 in -N and delete in --strategies")
    if budget < 1:
        raise ConfigError(f"--budget must be >= 1, got {budget}")
    threads = check_threads(threads)
    out_dir(study_dir, "--out-dir")
    out_file(json_out, "--json")
    if json_out not in (None, "-") and study_writes(study_dir, json_out):      # never over the study's own files
        _fail(f"--json {json_out} is where the study writes its result files or found/ datasets "
              f"(--out-dir {study_dir}); give another file name", 1)
    rows = run_study(pts, budget, seed, study_dir, strategies=strats, paper_parent=paper_parent, force=force,
                     threads=threads, progress=not quiet, echo=None if quiet else say,
                     overrides=badness_overrides(strong_delta, kdstar, kconst))
    if json_out != "-":
        click.echo(format_table(rows))
    cols = ["N", "attempts", "float candidates", "certified", "strong-tier certified", "best delta*",
            "best L - L_const", "best example"]
    table = [[r["points"], r["attempts"], r["float_candidates"], r["certified"], r["strong"],
              r["best_delta_star"], r["best_const_gap"], (r["best"] or {}).get("file", "-")] for r in rows]
    emit_json(json_out, json.dumps({"columns": cols, "rows": table, "details": rows}, indent=1, default=str))


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--figure", default=None, help="also draw the distribution of lambda_min per N and label split "
              "(.png, .pdf or .svg)")
@click.option("--json", "json_out", default=None, metavar="FILE", help=JSON_HELP.format(what="the table"))
@friendly_errors
def study(files, figure, json_out):
    """How close deadlock searches came to a strict minimum: per N and label split of FILES (search results,
    shards or merged), the converged non-degenerate critical points and their best lambda_min."""
    import json
    import os
    from badminima.analysis import figures
    from badminima.analysis.search_study import study_data, study_figure, study_json, study_table
    from badminima.engine.store import expand_paths
    from badminima.engine.store.paths import check_not_input
    paths = expand_paths(list(files))
    if figure is not None:
        figures.check_output(figure, paths, "--figure")
    out_file(json_out, "--json")
    if json_out not in (None, "-"):
        check_not_input(json_out, paths, what="--json")
        if figure is not None and os.path.abspath(figure) == os.path.abspath(json_out):
            _fail(f"--json {json_out} is also the --figure; give two file names")
    data = study_data(paths)
    if figure is not None:              # drawn first: a reader leaving early (| head) does not lose it
        saved = figures.save(study_figure(data), figure)
    if json_out != "-":
        click.echo(study_table(data))
        if figure is not None:
            click.echo(f"figure: {saved}")
    elif figure is not None:
        say(f"figure: {saved}")         # stdout holds the JSON alone
    emit_json(json_out, json.dumps(study_json(data), indent=1))


@main.command("five-numbers")
@click.option("--random", "count", type=IntIn(0, 10 ** 8), default=20000, help="random sets to test")
@click.option("--adversarial", type=IntIn(0, 10 ** 6), default=None,
              help="Nelder-Mead starts maximizing det M/|M|^2 (five numbers only)  [default: 20 with --numbers 5]")
@click.option("--numbers", type=click.Choice(["5", "6"]), default="5",
              help="numbers per set (with 6 the statement fails for some sets, so the check can find them)")
@click.option("--dps", type=IntIn(15, 1000), default=50, help="mpmath digits (15..1000)")
@click.option("--seed", type=IntIn(0, 2 ** 63 - 1), default=0, help="the random sets' and starts' seed")
@click.option("--quiet", "-q", is_flag=True, help="no progress lines")
@friendly_errors
def five_numbers(count, adversarial, numbers, dps, seed, quiet):
    """Check the five-number lemma of docs/search.md at high precision: for five distinct numbers and the
    annihilator of 1, t, e^t, e^-t at them, M = sum lam_i tanh(t_i/2) (1, t_i)^T (1, t_i) is indefinite."""
    import mpmath
    import numpy as np
    from badminima.analysis import five_numbers as lemma
    from badminima.engine.train.progress import Progress
    numbers = int(numbers)
    if adversarial is None:
        adversarial = 20 if numbers == 5 else 0
    elif adversarial and numbers != 5:
        _fail("--adversarial: the Nelder-Mead search is over five numbers; leave it out with --numbers 6")
    rng = np.random.default_rng(seed)
    with mpmath.workdps(dps):
        got = lemma.check(lemma.iter_sets(count, numbers, rng), Progress(count, "sets", enabled=not quiet))
        click.echo(f"{numbers} numbers, {dps} digits: {got['definite']} of {got['tested']} random sets have an "
                   "annihilator giving a definite M")
        if numbers == 5 and got["tested"]:
            click.echo(f"the proof's signs (S2 < 0 < W(2), W(-2), lam alternating) fail in {got['broken']} of them; "
                       f"its identity holds to {got['gap']:.1e} relative")
        if adversarial:
            value, t = lemma.adversarial(adversarial, rng, progress=Progress(adversarial, "starts", enabled=not quiet))
            click.echo(f"Nelder-Mead from {adversarial} starts: largest det M/|M|^2 = {value:.3g} at "
                       f"t = {np.array2string(t, precision=4)}")


@main.command()
@click.option("--json", "json_out", default=None, metavar="FILE", help=JSON_HELP.format(what="every check"))
@click.option("--markdown", is_flag=True, help="print a Markdown table instead of text")
@click.option("--no-certify", is_flag=True, help="skip the interval-arithmetic certificate of Theorem 1")
@friendly_errors
def verify(json_out, markdown, no_certify):
    """Check every quantitative claim of the paper: claim | paper | computed | verdict (exit 0 when all ran)."""
    from badminima.analysis.verify import checks_json, format_checks, format_markdown
    from badminima.engine.paper.checks import run_checks
    out_file(json_out, "--json")
    checks = run_checks(certify=not no_certify)
    if json_out != "-":
        click.echo(format_markdown(checks) if markdown else format_checks(checks))
    emit_json(json_out, checks_json(checks))


@main.command("table1")
@click.option("--networks", "-n", type=INT64, default=1000, help="networks per cell (paper scale: a few hundred; routine: 10^5)")
@click.option("--steps", type=INT64, default=10_000, help="full-batch step budget")
@click.option("--init", "init", type=InitLaw(), default="normal:1", help="init law of every weight: normal:SIGMA, uniform:A, glorot, he")
@click.option("--bias-init", type=click.Choice(["same", "zero"]), default="same", help="biases from the same law, or zero")
@click.option("--gd-lr", type=FLOAT, default=0.5, help="GD learning rate")
@click.option("--adam-lr", type=FLOAT, default=1e-3, help="Adam learning rate")
@click.option("--sgd-lr", default="0.5,0.1", help="SGD learning rates of the text claim (fXOR, h = 2)")
@click.option("--seed", type=INT64, default=0, help="run seed")
@click.option("--dtype", type=click.Choice(list(DTYPE_LANES)), default="float32",
              help="kernel precision: float32 gives the table float64 gives, in a quarter of the time (docs/reproduce.md)")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu",
              help="cpu: the SIMD kernels; cuda: one NVIDIA GPU thread per network (needs numba-cuda)")
@click.option("--claims/--no-claims", default=True, help="also check the text's claims (SGD, linear regions)")
@click.option("--sweep", is_flag=True, help="also run the protocol grid and report which protocol matches the paper best")
@click.option("--sweep-init", default=None, help="sweep init laws (LAW[:SCALE][/zero]; default: normal:1,glorot/zero,uniform:1)")
@click.option("--sweep-gd-lr", default=None, help="sweep GD learning rates (default: 0.1,0.5,1)")
@click.option("--sweep-adam-lr", default=None, help="sweep Adam learning rates (default: 0.001,0.003,0.01)")
@click.option("--sweep-steps", default=None, help="sweep step budgets, one run each (default: 1000,2500,5000,10000)")
@click.option("--sweep-networks", type=INT64, default=None, help="networks per sweep cell (default: --networks)")
@click.option("--markdown", is_flag=True, help="print the table as Markdown")
@click.option("--check-final", type=INT64, default=1000,
              help="continue up to K early-stopped networks per cell to the end of their budget and report "
                   "how many keep their outcome (0: skip)")
@click.option("--json", "json_out", default=None, metavar="FILE", help=JSON_HELP.format(what="the table (and sweep)"))
@run_options
@friendly_errors
def table1_cmd(networks, steps, init, bias_init, gd_lr, adam_lr, sgd_lr, seed, dtype, device, claims, sweep, sweep_init,
               sweep_gd_lr, sweep_adam_lr, sweep_steps, sweep_networks, markdown, check_final, json_out,
               output, force, resume, shard, threads, chunk, quiet):
    """Table 1 (48 cells: XOR/fXOR x ReLU/sigmoid x GD/Adam x h=2..7) beside the paper's, with Wilson intervals."""
    from badminima.analysis.table1 import table1_report
    import os
    from badminima.engine.paper.table1 import (Protocol, SweepGrid, default_path, parse_list, run_shard, run_table1,
                                               sweep_path)
    from badminima.engine.train.config import check_count, decimal_float, decimal_int, split_items
    out_file(output, result=True)
    out_file(json_out, "--json")
    shard_d, threads = parse_run_options(shard, threads, chunk)
    if shard_d is not None and sweep:
        _fail("--sweep cannot be sharded; shard the grid, merge, then run --sweep on one machine")
    if shard_d is not None and (json_out is not None or markdown):
        _fail(f"a shard prints no table, so {'--json' if json_out is not None else '--markdown'} has nothing to "
              f"write; merge the shards, then give it to the run without --shard, with -o MERGED")
    if not sweep and any(v is not None for v in (sweep_init, sweep_gd_lr, sweep_adam_lr, sweep_steps, sweep_networks)):
        _fail("the --sweep-* options set the protocol grid of --sweep; add --sweep")
    if sweep_networks is not None and sweep_networks < 1:
        _fail(f"--sweep-networks must be >= 1, got {sweep_networks}")
    if check_final < 0:
        _fail(f"--check-final must be >= 0, got {check_final}")
    protocol = Protocol(init=init, bias_init=bias_init, steps=steps, gd_lr=gd_lr, adam_lr=adam_lr,
                        sgd_lrs=parse_list(sgd_lr, "--sgd-lr"), seed=seed, dtype=dtype, device=device).validate()
    grid = spath = None
    check_count(networks, "--networks")
    main_path = output or default_path(protocol, networks)
    if output is None:
        out_file(main_path, "the result file", result=True)
    if sweep:
        lists = {}
        if sweep_init is not None:
            lists["inits"] = tuple(split_items(sweep_init, "--sweep-init"))
        for field, text, option, kind in (("gd_lrs", sweep_gd_lr, "--sweep-gd-lr", decimal_float),
                                          ("adam_lrs", sweep_adam_lr, "--sweep-adam-lr", decimal_float),
                                          ("budgets", sweep_steps, "--sweep-steps", decimal_int)):
            if text is not None:
                lists[field] = parse_list(text, option, kind)
        grid = SweepGrid(**lists, seed=seed, dtype=dtype, device=device).validate()
        spath = sweep_path(grid, sweep_networks or networks, main_path)
        out_file(spath, "the sweep's result file", result=True)
    for what, path in (("the result file itself", main_path), ("the sweep's result file", spath)):
        if json_out not in (None, "-") and path and os.path.realpath(json_out) == os.path.realpath(path):
            _fail(f"--json {json_out} is {what}; give the JSON another name")
    ready()
    if shard_d is not None:
        done = run_shard(protocol, networks, shard_d, path=output, force=force,
                         resume="auto" if resume is None else resume, chunk=chunk, threads=threads,
                         progress=not quiet)
        click.echo(f"table1 shard {shard_d['index']}/{shard_d['count']} complete: {done} "
                   f"(merge all shards into MERGED, then this command without --shard and with -o MERGED "
                   f"prints the table)")
        return
    out = table1_report(run_table1(protocol, networks, path=output, sweep=grid, sweep_networks=sweep_networks,
                                   with_claims=claims, check_final=check_final, force=force,
                                   resume="auto" if resume is None else resume, chunk=chunk, threads=threads,
                                   progress=not quiet), markdown=markdown)
    if json_out != "-":
        click.echo(out["text"])
    if not emit_json(json_out, out["json"]):
        click.echo(f"next: badminima report {_shell(out['path'])} --out-dir report   (per-cell minima and figures)")


@main.command()
@click.option("--networks", "-n", type=INT64, default=10_000, help="networks per Table 1 cell")
@click.option("--out-dir", "runs_dir", default="runs", help="where the result files go")
@click.option("--threads", type=INT64, default=None, help="Numba threads (default: all cores)")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu",
              help="where Table 1 trains: cpu, or cuda (one NVIDIA GPU thread per network; needs numba-cuda)")
@click.option("--quiet", "-q", is_flag=True, help="no progress line")
@friendly_errors
def reproduce(networks, runs_dir, threads, device, quiet):
    """The paper in one command: `verify` (every claim) and Table 1 at a small size, results in RUNS_DIR."""
    import os
    import time
    from badminima.analysis.table1 import table1_report
    from badminima.analysis.verify import checks_json, format_checks
    from badminima.engine.paper.checks import run_checks
    from badminima.engine.paper.table1 import Protocol, default_path, run_table1
    from badminima.engine.train.config import check_count
    from badminima.engine.train.run import check_device
    check_count(networks, "--networks")     # before the claims' minute of work
    _, threads = parse_run_options(None, threads, None)
    check_device(device)              # before the claims' minute of work
    out_dir(runs_dir, "--out-dir")
    protocol = Protocol(device=device).validate()
    path = os.path.join(runs_dir, os.path.basename(default_path(protocol, networks)))
    out_file(path, "the result file", result=True)
    for text_out in (os.path.join(runs_dir, "verify.json"), path[:-3] + ".json"):
        out_file(text_out, "the JSON file")
    t0 = time.monotonic()
    checks = run_checks()
    write_text(os.path.join(runs_dir, "verify.json"), checks_json(checks) + "\n")
    click.echo(format_checks(checks))
    t1 = time.monotonic()
    out = table1_report(run_table1(protocol, networks, path=path, threads=threads, progress=not quiet))
    write_text(path[:-3] + ".json", out["json"] + "\n")
    click.echo("")
    click.echo(out["text"])
    t2 = time.monotonic()
    click.echo(f"\nverify {t1 - t0:.1f} s, table1 {t2 - t1:.1f} s; written: {os.path.join(runs_dir, 'verify.json')}, "
               f"{path}, {path[:-3]}.json")


if __name__ == "__main__":
    main()
