"""badminima command line (click).  Thin: parse, validate at the edge, call the engine, print.

Usage errors (bad options, malformed data) exit 2 with one line; runtime errors exit 1.
Imports of the engine stay inside commands so `--help` is instant.
"""
from __future__ import annotations

import functools
import sys

import click


def _fail(msg: str, code: int = 2):
    click.echo(f"error: {msg}", err=True)
    sys.exit(code)


def friendly_errors(fn):
    """Turn the engine's known error types into a one-line message and exit code (2 bad input, 1 runtime)."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        from .engine.config import ConfigError
        from .engine.datasets import DataError
        try:
            return fn(*a, **kw)
        except (ConfigError, DataError) as e:
            _fail(str(e), 2)
        except KeyboardInterrupt:
            _fail("interrupted; committed results are kept (rerun the same command to resume)", 130)
        except Exception as e:  # noqa: BLE001 - store errors etc.: one line, never a traceback
            name = type(e).__name__
            if name in ("StoreError",):
                _fail(str(e), 1)
            raise
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="badminima")
def main():
    """Monte Carlo engine for bad local minima in tiny neural networks."""


def train_options(fn):
    """The options that define a training configuration (shared by train and the run commands)."""
    opts = [
        click.option("--dataset", default="xor", help="built-in name (xor, fxor, paper10, relu_d1..3) or a .json/.csv file"),
        click.option("--hidden", "-H", type=int, default=2, help="hidden units h"),
        click.option("--act", default="sigmoid", help="hidden activation: sigmoid, relu, tanh"),
        click.option("--opt", default="gd", help="optimizer: gd (full batch), adam (full batch), sgd (one point per step)"),
        click.option("--lr", type=float, default=0.5, help="learning rate"),
        click.option("--steps", type=int, default=10_000, help="step budget per network"),
        click.option("--init", "init", default="normal:1", help="init law: normal:SIGMA, uniform:A, glorot, he"),
        click.option("--bias-init", type=click.Choice(["same", "zero"]), default="same", help="biases from the same law, or zero"),
        click.option("--networks", "-n", type=int, default=1000, help="number of networks"),
        click.option("--seed", type=int, default=0, help="run seed; network i's start depends on (seed, i) only"),
        click.option("--dtype", default="float64", help="float64 or float32"),
        click.option("--beta1", type=float, default=0.9, help="Adam beta1"),
        click.option("--beta2", type=float, default=0.999, help="Adam beta2"),
        click.option("--eps", type=float, default=1e-8, help="Adam epsilon"),
        click.option("--gtol", type=float, default=1e-6, help="gradient norm of a finite critical point"),
        click.option("--early-exit/--no-early-exit", default=True, help="stop each network once its outcome is final"),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def build_config(dataset, hidden, act, opt, lr, steps, init, bias_init, networks, seed, dtype,
                 beta1, beta2, eps, gtol, early_exit):
    """Load and validate the dataset and the options into (TrainConfig, Dataset)."""
    from .engine.config import InitSpec, TrainConfig
    from .engine.datasets import load_dataset
    ds = load_dataset(dataset)
    cfg = TrainConfig(dataset=dataset, dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=hidden,
                      activation=act, optimizer=opt, lr=lr, steps=steps,
                      init=InitSpec.parse(init, bias_init), networks=networks, seed=seed, dtype=dtype,
                      beta1=beta1, beta2=beta2, eps=eps, gtol=gtol, early_exit=early_exit).validate()
    return cfg, ds


def default_output(cfg) -> str:
    """runs/<name>.h5 with a name that identifies the configuration (so a rerun resumes it)."""
    import hashlib
    from pathlib import Path
    tag = hashlib.sha256(cfg.to_json().encode()).hexdigest()[:8]
    stem = Path(cfg.dataset).stem
    return f"runs/train-{stem}-h{cfg.hidden}-{cfg.activation}-{cfg.optimizer}-seed{cfg.seed}-{tag}.h5"


def run_options(fn):
    """Options of every command that writes a result file."""
    opts = [
        click.option("--output", "-o", default=None, help="result file (default runs/<name>.h5)"),
        click.option("--force", is_flag=True, help="replace an existing result (only once the new run finishes)"),
        click.option("--resume/--no-resume", default=None, help="require / refuse continuing an interrupted run (default: continue a matching one)"),
        click.option("--shard", default=None, help="run shard I/N of the networks (0-based; SLURM_ARRAY_TASK_ID fills I)"),
        click.option("--threads", type=int, default=None, help="Numba threads (default: all cores)"),
        click.option("--chunk", type=int, default=16384, help="networks per committed chunk (results do not depend on it)"),
        click.option("--quiet", "-q", is_flag=True, help="no progress line"),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def parse_run_options(shard, threads, chunk):
    """Validate the execution options; returns the shard dict (or None)."""
    import os
    from .engine.store import parse_shard
    if chunk < 1:
        _fail(f"--chunk must be >= 1, got {chunk}")
    if threads is not None and threads < 1:
        _fail(f"--threads must be >= 1, got {threads}")
    if shard is not None and "/" not in shard and os.environ.get("SLURM_ARRAY_TASK_ID"):
        shard = f"{os.environ['SLURM_ARRAY_TASK_ID']}/{shard}"
    return parse_shard(shard) if shard is not None else None


@main.command()
@train_options
@run_options
@click.option("--init-weights", is_flag=True, help="also store every network's initial weights")
@friendly_errors
def train(output, force, resume, shard, threads, chunk, quiet, init_weights, **opts):
    """Train many d-h-1 networks from random starts, stream the results to HDF5, print outcome counts."""
    from .engine.runs import Cell, run_cells
    cfg, ds = build_config(**opts)
    shard_d = parse_run_options(shard, threads, chunk)
    path = output or default_output(cfg)
    counts = run_cells(path, {"command": "train", **cfg.to_dict()}, [Cell("main", cfg, ds)], shard=shard_d,
                       force=force, resume="auto" if resume is None else resume, chunk=chunk, threads=threads, keep_init=init_weights,
                       progress=not quiet)["main"]
    click.echo(f"{cfg.dataset} ({ds.n} points, {ds.kind}), {ds.d}-{cfg.hidden}-1 {cfg.activation}, "
               f"{cfg.optimizer} lr={cfg.lr:g}, {cfg.steps} steps, init {cfg.init} (bias {cfg.init.bias}), "
               f"{cfg.dtype}, seed {cfg.seed}")
    click.echo(format_counts(counts, sum(counts.values())))
    click.echo(f"results: {path}")


@main.command()
@click.argument("files", nargs=-1, required=True)
@friendly_errors
def show(files):
    """Print the configuration and per-cell outcome counts of result files (or shards)."""
    from .engine.store import show as show_files
    click.echo(show_files(list(files)))


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--output", "-o", required=True, help="merged result file")
@click.option("--force", is_flag=True, help="replace an existing output")
@friendly_errors
def merge(inputs, output, force):
    """Merge complete shards of one configuration into one file (identical to a single run)."""
    from .engine.store import merge as merge_files
    click.echo(f"merged {len(inputs)} files into {merge_files(list(inputs), output, force=force)}")


def format_counts(counts: dict[str, int], total: int) -> str:
    """Outcome | count | percent table."""
    lines = [f"{'outcome':<15}{'count':>12}{'percent':>10}"]
    for name, c in counts.items():
        lines.append(f"{name:<15}{c:>12}{100.0 * c / max(total, 1):>9.2f}%")
    lines.append(f"{'total':<15}{total:>12}")
    return "\n".join(lines)


@main.command("compile")
@click.option("--hidden", default="2-7", help="hidden sizes, e.g. 2-7 or 2,3")
@click.option("--act", default="sigmoid,relu", help="activations, comma separated")
@click.option("--opt", default="gd,adam,sgd", help="optimizers, comma separated")
@click.option("--dtype", default="float64", help="dtypes, comma separated")
@click.option("--dim", default="2", help="input dimensions, comma separated (1 = ReLU regression)")
@friendly_errors
def compile_cmd(hidden, act, opt, dtype, dim):
    """Compile (and cache on disk) every kernel a run will need, once, before a cluster fans out."""
    import time
    from .engine.warmup import parse_int_set, warm
    t0 = time.monotonic()
    variants = warm(parse_int_set(dim), parse_int_set(hidden), act.split(","), opt.split(","), dtype.split(","),
                    echo=lambda s: click.echo(s, err=True))
    click.echo(f"compiled {variants} kernel variants in {time.monotonic() - t0:.1f} s")


@main.command()
@click.argument("file")
@click.option("--point", "points", multiple=True, help="point to certify (repeatable; default: all points in FILE)")
@click.option("--witness", default=None, help="name of a point in FILE whose lower loss proves 'not global'")
@click.option("--cross-check", is_flag=True, help="re-prove with mpmath's interval arithmetic as well")
@click.option("--json-out", default=None, help="also write the full report as JSON to this file")
@friendly_errors
def certify(file, points, witness, cross_check, json_out):
    """Prove (or refuse) that FILE's weight points are local minima: Arb/Krawczyk for sigmoid/tanh nets,
    an exact rational test for ReLU regression.  FILE: a data/ JSON file or a built-in dataset name."""
    import json
    from .engine.certify_io import certify_file, format_report
    rep = certify_file(file, point_names=list(points) or None, witness=witness, cross_check=cross_check)
    click.echo(format_report(rep))
    if json_out:
        with open(json_out, "w", encoding="utf-8") as f:
            json.dump(rep, f, indent=1, allow_nan=False)


if __name__ == "__main__":
    main()
