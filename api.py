"""The Python API: what `import badminima as bm` offers, for notebooks and scripts.

    import badminima as bm
    res = bm.train(dataset="xor", hidden=2, networks=10_000, seed=0)
    res.counts()                      # {'solved': ..., 'local_minimum': ..., ...}
    df = res.to_pandas()              # one row per network, outcome names categorical
    res = bm.open("runs/*.h5")        # any result file, shards joined

Every function validates its arguments like the command line does and raises the same one-line
errors: ConfigError (an option), DataError (a dataset), StoreError (a result file, an output path, a
full disk), ResourceError (a run that would not fit in memory), AnalysisError (a figure or report).  Heavy modules
are imported on first use, so `import badminima` stays fast.
"""
from __future__ import annotations

import copy
import os
from typing import Any, Sequence

import numpy as np

__all__ = ["train", "open", "table1", "verify", "certify", "search", "plot", "report", "load_dataset", "Results"]


def _cell_columns(config: dict) -> dict[str, Any]:
    """The settings of a training cell as flat columns (for to_pandas)."""
    init = config.get("init") if isinstance(config.get("init"), dict) else {}
    out = {k: config[k] for k in ("dataset", "hidden", "activation", "optimizer", "lr", "dtype", "seed")
           if k in config}
    if "steps" in config:
        out["budget"] = config["steps"]
    if init:
        scale = init.get("scale")
        out["init"] = f"{init.get('law')}:{scale:g}" if init.get("law") in ("normal", "uniform") \
            and isinstance(scale, (int, float)) else init.get("law")
        out["bias_init"] = init.get("bias")
    return out


def _refuse_unknown(given, known, what: str, also=()) -> None:
    """ConfigError naming the keywords of `given` that are not in `known`, with the nearest name of
    `known` or `also` (the function's own arguments) where one is close (Python's own message would be
    a TypeError)."""
    import difflib
    from badminima.engine.train.config import ConfigError
    unknown = sorted(set(given) - set(known))
    if unknown:
        def named(k):
            near = difflib.get_close_matches(k, sorted({*known, *also}), n=1)
            return repr(k) + (f" (did you mean {near[0]!r}?)" if near else "")
        raise ConfigError(f"unknown {what} option{'s' * (len(unknown) > 1)} {', '.join(map(named, unknown))}")


def _keywords(func):
    """Refuse a misspelt keyword argument of `func` (one without **options, which checks its own), or
    positional arguments beyond its positional parameters, as ConfigError (Python's are TypeErrors)."""
    import functools
    import inspect
    from badminima.engine.train.config import ConfigError, numba_threads_env
    params = inspect.signature(func).parameters.values()
    known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    own = any(p.kind == p.VAR_KEYWORD for p in params)
    shown = [n for n in positional if n != "self"]

    @functools.wraps(func)
    def checked(*args, **kwargs):
        numba_threads_env()             # a bad NUMBA_NUM_THREADS: ConfigError, not Numba's import error
        if len(args) > len(positional):
            names = f" ({', '.join(shown)})" if shown else ""
            by_name = known[len(positional):]
            raise ConfigError(f"{func.__name__}() takes {len(shown)} positional argument{'s' * (len(shown) != 1)}"
                              + (f"{names}; pass the others by name, e.g. {by_name[0]}=..." if by_name
                                 else f"{names} and no more"))
        if not own:
            _refuse_unknown(kwargs, known, f"{func.__name__}()")
        return func(*args, **kwargs)
    return checked


class Results:
    """The per-network results of a run: one or more cells, each a dict of NumPy arrays.

    `res.cells` names the cells; `res.data(cell)` (or `res[field]` for a one-cell run) gives the
    arrays; `res.counts()` the outcome counts; `res.to_pandas()` a DataFrame.  Backed by result files
    (bm.open, bm.train(output=...)) or held in memory (bm.train without output).
    """

    def __init__(self, store=None, memory: dict | None = None, configs: dict | None = None):
        self._store = store                   # engine.store Results, or None
        # cell -> {field: array}: read-only views, since res[field] hands them out (the caller's arrays
        # stay as they were)
        self._memory = {c: {k: _read_only(v) for k, v in arrays.items()} for c, arrays in (memory or {}).items()}
        self._configs = configs or {}
        self.cells = list(store.cells) if store is not None else list(self._memory)
        self.path = None if store is None else (store.files[0] if len(store.files) == 1 else list(store.files))

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else " (in memory)"
        return f"<badminima Results: {len(self.cells)} cell(s), {sum(self.n(c) for c in self.cells)} networks{where}>"

    def _cell(self, cell: str | None) -> str:
        from badminima.engine.core.say import name_some
        from badminima.engine.store import StoreError
        if cell is None:
            if len(self.cells) != 1:
                raise StoreError(f"this run has {len(self.cells)} cells; name one (cells: {name_some(self.cells)})")
            return self.cells[0]
        if cell not in self.cells and isinstance(cell, str):     # a label or words of one, as --cell takes
            from types import SimpleNamespace
            from badminima.analysis.load import AnalysisError, cell_labels, match_cell
            labels = cell_labels([self.config(c) for c in self.cells], self.cells)
            try:
                return match_cell([SimpleNamespace(name=c, label=lb) for c, lb in zip(self.cells, labels)], cell).name
            except AnalysisError as e:
                raise StoreError(str(e).removeprefix("--cell ")) from None
        if cell not in self.cells:
            raise StoreError(f"no cell {cell!r}; cells are: {name_some(self.cells)}")
        return cell

    @property
    def fields(self) -> list[str]:
        """Names of the per-network arrays."""
        if self._store is not None:
            return list(self._store.fields)
        return list(next(iter(self._memory.values()), ()))

    @_keywords
    def n(self, cell: str | None = None) -> int:
        """Networks stored for the cell."""
        c = self._cell(cell)
        return self._store.n_rows(c) if self._store is not None else len(self._memory[c]["index"])

    @_keywords
    def config(self, cell: str | None = None) -> dict:
        """The cell's configuration (as stored in the file)."""
        c = self._cell(cell)
        return copy.deepcopy(self._store.cell_config(c) if self._store is not None else self._configs[c])

    @_keywords
    def data(self, cell: str | None = None, fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The cell's arrays (all fields, or those named), rows in network order."""
        c = self._cell(cell)
        fields = _as_list(fields, "fields")
        if self._store is not None:
            return self._store.cell(c, fields)
        d = self._memory[c]
        for k in fields or ():
            if k not in d:
                from badminima.engine.store import StoreError
                raise StoreError(f"no field {k!r}; fields are: {', '.join(d)}")
        return {k: d[k] for k in (d if fields is None else fields)}

    def __getitem__(self, field: str) -> np.ndarray:
        if not isinstance(field, str):
            from badminima.engine.store import StoreError
            raise StoreError(f"index Results with one field name (res['outcome']), or use res.data(cell, fields) "
                             f"for several; got {field!r}")
        return self.data(None, [field])[field]

    def __contains__(self, field) -> bool:
        return field in self.fields

    def __iter__(self):
        """The field names, as for a dict of arrays (res[field])."""
        return iter(self.fields)

    @_keywords
    def counts(self, cell: str | None = None, optimizer: bool = False) -> dict[str, int]:
        """Outcome name -> networks; optimizer=True counts the optimizer's own verdicts (before the
        finisher), which is what Table 1 counts."""
        from badminima.engine.core.outcomes import NAMES
        _check_flags(optimizer=optimizer)
        fld = "optimizer_outcome" if optimizer else "outcome"
        codes = self._search_verdicts(cell)
        if codes is not None:
            from badminima.engine.search.run import verdict_counts
            from badminima.engine.store import StoreError
            if optimizer:
                raise StoreError("a deadlock search has no optimizer outcomes: counts() counts its verdicts")
            return verdict_counts(codes)
        if self._store is not None:     # the file's own counts, or the field counted block by block
            c = self._cell(cell)
            return self._store.code_counts(c, fld) if optimizer else self._store.counts(c)
        from badminima.engine.store import count_outcomes
        k = count_outcomes(self.data(cell, [fld])[fld], fld)
        return {name: int(k[code]) for code, name in NAMES.items()}

    def _search_verdicts(self, cell: str | None):
        """A deadlock search's verdict codes (checked), or None for training results."""
        if self.config(cell).get("command") != "search":
            return None
        from badminima.engine.search.run import VERDICTS
        from badminima.engine.store import outcome_codes
        return outcome_codes(self.data(cell, ["verdict"])["verdict"], "verdict", n_codes=len(VERDICTS), kind="verdict")

    @_keywords
    def to_pandas(self, cell: str | None = None, weights: bool = False):
        """One row per network: the scalar fields, outcome names as a categorical, the cell's settings
        as columns; weights=True adds one column per parameter (v0, w00, w01, b0, ..., c)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas") from None
        from badminima.engine.core.outcomes import NAMES
        from badminima.engine.store import outcome_codes
        _check_flags(weights=weights)
        c = self._cell(cell)
        scalar = self._store.scalar_fields if self._store is not None else \
            [k for k, v in self._memory[c].items() if v.ndim == 1]
        d = self.data(c, scalar + (["weights"] if weights and "weights" in self.fields else []))
        cols = {k: v for k, v in d.items() if v.ndim == 1}
        cats = pd.CategoricalDtype(list(NAMES.values()))
        for k in ("outcome", "optimizer_outcome"):
            if k in cols:
                cols[k] = pd.Categorical.from_codes(outcome_codes(cols[k], k), dtype=cats)
        verdicts = self._search_verdicts(c)
        if verdicts is not None:            # a deadlock search: its verdicts by name
            from badminima.engine.search.run import VERDICTS
            cols["verdict"] = pd.Categorical.from_codes(verdicts, dtype=pd.CategoricalDtype(list(VERDICTS.values())))
        first = [k for k in ("index", "verdict", "outcome", "optimizer_outcome") if k in cols]
        df = pd.DataFrame({k: cols[k] for k in first + [k for k in cols if k not in first]})
        conf = self.config(c)
        for k, v in _cell_columns(conf).items():
            df[k] = v
        df.insert(0, "cell", c)
        hidden = conf.get("hidden", 2 if verdicts is not None else None)     # a search: the 2-2-1 network
        if weights and "weights" in d and hidden is not None:
            for j, name in enumerate(_param_names(hidden, d["weights"].shape[1])):
                df[name] = d["weights"][:, j]
        return df


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of a (a stays writable)."""
    v = a.view()
    v.setflags(write=False)
    return v


def _param_names(hidden, n_params: int) -> list[str]:
    """The weight columns' names (v0, w00, ..., c) of networks with `hidden` units and n_params = h (d + 2)
    + 1 parameters; StoreError where the two do not fit (a damaged file)."""
    from badminima.engine.core.layout import param_names
    ok = isinstance(hidden, int) and not isinstance(hidden, bool) and hidden >= 1
    if not (ok and (n_params - 1) % hidden == 0 and (n_params - 1) // hidden - 2 >= 1):
        from badminima.engine.store import StoreError
        raise StoreError(f"the cell's config says hidden = {hidden!r}, which does not fit its {n_params} parameters "
                         f"per network: the file is damaged")
    return param_names((n_params - 1) // hidden - 2, hidden)


def _check_run_args(output, threads) -> str | None:
    """output (a result file path that can be written) and threads (None or an integer >= 1), checked
    before any work like the command line's -o and --threads; returns output as a string (or None)."""
    from badminima.engine.train.config import check_count
    if threads is not None:
        check_count(threads, "threads")
    if output is None:
        return None
    from badminima.engine.store.paths import WRITER_SUFFIX, check_output_file
    return check_output_file(output, what="output", suffix=WRITER_SUFFIX)


def _known_options(cls, options: dict, what: str, func, derived: tuple = ()) -> None:
    """Refuse keyword options (the **options of `func`) that are not fields of the config dataclass
    `cls`, or are fields the function sets itself (`derived`, e.g. from the dataset), naming them."""
    import dataclasses
    import inspect
    from badminima.engine.train.config import ConfigError
    _refuse_unknown(options, [f.name for f in dataclasses.fields(cls)], what,
                    also=[n for n in inspect.signature(func).parameters if n not in ("options", "protocol")])
    fixed = sorted(set(options) & set(derived))
    if fixed:
        raise ConfigError(f"{', '.join(map(repr, fixed))}: set from the dataset, not an option")


@_keywords
def load_dataset(name: str, kind: str | None = None):
    """A built-in dataset (xor, fxor, paper10, relu_d1..3) or a .json/.csv file, validated."""
    from badminima.engine.data.datasets import load_dataset as load
    return load(name, kind)


def _dataset_name(ds) -> str:
    """The name a Dataset was loaded by (its built-in name, or its file), which the result file records to
    reload it; DataError if reloading by that name would not give the same data (e.g. another kind)."""
    from badminima.engine.data.datasets import DataError, builtin_names, fingerprint
    try:                                    # from the arrays themselves: an edited copy keeps the old field
        held = fingerprint(np.asarray(ds.x), np.asarray(ds.y), ds.kind)
    except (TypeError, ValueError, AttributeError):
        held = None
    for name in ((ds.name,) if ds.name in builtin_names() else ()) + (ds.source,):
        try:
            if load_dataset(name).fingerprint == held:
                return name
        except DataError:
            pass
    raise DataError(f"dataset {ds.name!r} ({ds.kind}) cannot be reloaded from its name or file as it is; "
                    f"pass the name or path instead (a file records how to reload its data)")


def _config(dataset, hidden, activation, optimizer, lr, steps, networks, seed, dtype, init, bias_init,
            early_exit, finish_horizon, extra):
    from badminima.engine.data.datasets import DataError, Dataset
    from badminima.engine.train.config import InitSpec, TrainConfig
    _known_options(TrainConfig, extra, "training", train, derived=("kind", "dataset_fingerprint"))
    if isinstance(dataset, Dataset):            # bm.load_dataset(...)'s result: named as it was loaded
        dataset = _dataset_name(dataset)
    if not isinstance(dataset, (str, os.PathLike)):
        raise DataError(f"dataset must be a built-in name, a .json/.csv path or a Dataset, got "
                        f"{type(dataset).__name__}")
    dataset = os.fspath(dataset)
    ds = load_dataset(dataset)
    if lr is None:
        lr = 1e-3 if optimizer == "adam" else 0.5
    cfg = TrainConfig(dataset=str(dataset), dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=hidden,
                      activation=activation, optimizer=optimizer, lr=lr, steps=steps, networks=networks,
                      seed=seed, dtype=dtype, init=InitSpec.parse(init, bias_init), early_exit=early_exit,
                      finish_horizon=finish_horizon, **extra).validate().check_data(ds.x)
    return cfg, ds


@_keywords
def train(dataset: str = "xor", *, hidden: int = 2, activation: str = "sigmoid", optimizer: str = "gd",
          lr: float | None = None, steps: int = 10_000, networks: int = 1000, seed: int = 0,
          dtype: str = "float64", init: str = "normal:1", bias_init: str = "same", early_exit: bool = True,
          finish_horizon: float = 100.0, device: str = "cpu", output: str | None = None,
          threads: int | None = None, progress: bool = False, force: bool = False, init_weights: bool = False,
          **options) -> Results:
    """Train `networks` d-h-1 networks from their random starts and classify how each run ended.

    Arguments mean what the `badminima train` options of the same names mean (lr defaults to 0.5,
    Adam 1e-3); `options` takes the rest of the configuration (beta1, beta2, eps, gtol, ...);
    device="cuda" trains on an NVIDIA GPU (pip install 'badminima[cuda]', docs/gpu.md).  With
    `output` the results stream to that HDF5 file (an interrupted run resumes, a finished one is
    reused, and one of another run refused unless force=True, which replaces it once this one has
    finished); without, they are kept in memory.  init_weights=True also keeps every network's initial
    weights (the field "init_weights"), as `--init-weights` does."""
    hidden, lr, steps, networks, seed, finish_horizon, threads, early_exit = map(
        _as_python, (hidden, lr, steps, networks, seed, finish_horizon, threads, early_exit))
    options = {k: _as_python(v) for k, v in options.items()}
    _check_flags(progress=progress, force=force, init_weights=init_weights)
    output = _check_run_args(output, threads)
    cfg, ds = _config(dataset, hidden, activation, optimizer, lr, steps, networks, seed, dtype, init, bias_init,
                      early_exit, finish_horizon, {**options, "device": device})
    if output is not None:
        from badminima.engine.train.cells import Cell, run_cells
        run_cells(output, {"command": "train", **cfg.to_dict()}, [Cell("main", cfg, ds)], threads=threads,
                  keep_init=init_weights, progress=progress, force=force, command="badminima.train (Python API)")
        return open(output)
    from badminima.engine.train.limits import check_fits, chunk_bytes
    from badminima.engine.train.progress import Progress
    from badminima.engine.train.run import require_device, train as train_chunks
    require_device(cfg)
    check_fits(2 * chunk_bytes(ds.d, cfg.hidden, cfg.networks, init_weights),
               f"keeping {cfg.networks} networks in memory", "pass output=FILE to stream them to a result file instead")
    parts = []
    prog = Progress(cfg.networks, enabled=progress)
    try:
        for chunk in train_chunks(cfg, ds.x, ds.y, threads=threads, keep_init=init_weights):
            parts.append(chunk)
            prog.update(len(chunk["index"]))
    finally:
        prog.close()
    from badminima.engine.store import BASE_FIELDS, TRAINING_FIELDS
    order = {k: i for i, k in enumerate(BASE_FIELDS + TRAINING_FIELDS)}      # a result file's field order
    data = {k: np.concatenate([p[k] for p in parts]) for k in sorted(parts[0], key=lambda k: order.get(k, len(order)))}
    return Results(memory={"main": data}, configs={"main": cfg.to_dict()})


@_keywords
def open(paths) -> Results:                       # noqa: A001 - bm.open mirrors the builtin on purpose
    """Open result files (a path, a glob pattern, Results backed by files, or a list of them); shards of
    one run are joined."""
    from badminima.engine.store import open_results
    return Results(store=open_results(_files(paths) if _holds_results(paths) else paths))


@_keywords
def table1(networks: int = 10_000, *, steps: int = 10_000, dtype: str = "float32", seed: int = 0,
           device: str = "cpu", output: str | None = None, check_final: int = 1000, claims: bool = True, threads: int | None = None,
           progress: bool = False, force: bool = False, **protocol) -> dict:
    """Table 1 of the paper (48 cells) at `networks` per cell, run or reused like `badminima table1`.

    Returns {"text": the printed table, "rows": one dict per cell (ours %, Wilson interval, the
    paper's %, difference, ...), "results": Results of the file, "path", "json"}.  `protocol` takes the
    other Protocol fields (init, bias_init, gd_lr, adam_lr, sgd_lrs); device="cuda" trains on a GPU."""
    import json as _json

    from badminima.analysis.table1 import table1_report
    from badminima.engine.paper.table1 import Protocol, run_table1
    networks, steps, seed, check_final, threads = map(_as_python, (networks, steps, seed, check_final, threads))
    protocol = {k: _as_python(v) for k, v in protocol.items()}
    _check_flags(progress=progress, force=force)
    output = _check_run_args(output, threads)
    _known_options(Protocol, protocol, "Table 1 protocol", table1)
    prot = Protocol(steps=steps, dtype=dtype, seed=seed, device=device, **protocol).validate()
    out = table1_report(run_table1(prot, networks, path=output, check_final=check_final, with_claims=claims,
                                   threads=threads, progress=progress, force=force))
    return {"text": out["text"], "rows": _json.loads(out["json"])["cells"], "path": out["path"],
            "results": open(out["path"]), "json": out["json"]}


@_keywords
def verify(certify: bool = True) -> list[dict]:
    """Every checkable claim of the paper (what `badminima verify` prints), one dict per check with
    claim, paper's value, computed value and verdict."""
    import json as _json

    from badminima.analysis.verify import checks_json
    from badminima.engine.paper.checks import run_checks
    _check_flags(certify=certify)
    return _json.loads(checks_json(run_checks(certify=certify)))["checks"]


@_keywords
def certify(file, points: Sequence[str] | None = None, witness: str | None = None,
            cross_check: bool = False) -> dict:
    """Prove (or refuse) that the weight points of a dataset file are strict local minima, and with a
    witness that they are not global; the report `badminima certify --json` writes."""
    from badminima.engine.certify.files import certify_file
    from badminima.engine.data.datasets import DataError, Dataset
    _check_flags(cross_check=cross_check)
    if isinstance(file, Dataset):               # bm.load_dataset(...)'s result, as train takes it
        file = _dataset_name(file)
    if not isinstance(file, (str, os.PathLike)):
        raise DataError(f"file must be a dataset name or path (or a Dataset), got {type(file).__name__}")
    if witness is not None and not isinstance(witness, str):
        from badminima.engine.train.config import ConfigError
        raise ConfigError(f"witness must be the name of a point of the file, got {witness!r}")
    return certify_file(file, point_names=_as_list(points, "points") or None, witness=witness,
                        cross_check=cross_check)


def _as_list(x, what: str) -> list | None:
    """A name or path, or a sequence of them, as a list (one name is not split into its characters);
    None stays None; anything else is a ConfigError naming the argument `what`."""
    from badminima.engine.train.config import ConfigError
    if x is None:
        return None
    if isinstance(x, (str, os.PathLike)):
        return [x]
    items = list(x) if hasattr(x, "__iter__") and not isinstance(x, (bytes, dict)) else None
    if items is None or not all(isinstance(v, (str, os.PathLike)) for v in items):
        raise ConfigError(f"{what} must be a name or path, or a list of them, got {x!r}")
    return items


def _as_python(v):
    """NumPy scalars and arrays as Python numbers and tuples (configs are stored as JSON), and paths as
    strings; anything else as it is."""
    if isinstance(v, np.ndarray) and v.ndim == 0:       # a 0-d array is a number, as np.int64(2) is
        v = v[()]
    if isinstance(v, np.generic):
        from badminima.engine.train.config import python_number
        return python_number(v)
    if isinstance(v, (np.ndarray, list, tuple)):
        return tuple(_as_python(x) for x in (v.tolist() if isinstance(v, np.ndarray) else v))
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    return v


def _check_flags(**flags) -> None:
    """ConfigError unless each keyword is True or False (a string such as "no" would count as true)."""
    from badminima.engine.train.config import ConfigError
    for name, v in flags.items():
        if not isinstance(v, (bool, np.bool_)):
            raise ConfigError(f"{name} must be True or False, got {v!r}")


def _holds_results(source) -> bool:
    """Whether `source` is Results, or a list holding some (which stand for their files)."""
    return isinstance(source, Results) or (isinstance(source, (list, tuple))
                                           and any(isinstance(s, Results) for s in source))


def _files(source) -> list:
    """Result file paths of `source`: Results backed by files, or paths and glob patterns as given, or
    a list of them."""
    if isinstance(source, (list, tuple)) and _holds_results(source):
        return [p for s in source for p in _files(s)]
    if isinstance(source, Results):
        if source.path is None:
            from badminima.engine.store import StoreError
            raise StoreError("these results are held in memory, in no file; train with output=FILE to open, draw "
                             "or report them")
        out = []
        for m in source._store.metas:       # the files opened (as named, unless the cwd moved), still this run
            source._store.reopen(m).close()
            out.append(m.path if os.path.abspath(m.path) == m.where else m.where)
        return out
    if source is None:
        from badminima.engine.train.config import ConfigError
        raise ConfigError("source must be Results backed by files, or result file paths or glob patterns, got None")
    return _as_list(source, "source")


@_keywords
def plot(kind: str, source, *, output: str | None = None, cells: Sequence[str] = (), networks: Sequence[int] = (),
         points: Sequence[str] = (), size: tuple[float, float] | None = None, dpi: int = 200,
         title: str | None = None, progress: bool = False):
    """The figure `badminima plot KIND` draws (regions, fit, convergence, losses, basins, minimality) as a
    matplotlib Figure, which a notebook shows inline; with `output` it is also written there (.png,
    .pdf, .svg).  source: Results backed by files, or result file paths/globs (minimality: a rows file)."""
    from badminima.analysis import figures, plots
    from badminima.engine.train.config import ConfigError
    files = _files(source)
    if output is not None:
        figures.check_output(output, files, "output")
    kw = figures.figure_options(size, dpi)
    if isinstance(networks, np.ndarray) and networks.ndim == 0:
        networks = networks.item()
    if isinstance(networks, (int, np.integer)) and not isinstance(networks, (bool, np.bool_)):
        networks = [networks]
    elif networks is None:
        networks = ()
    elif not isinstance(networks, (list, tuple, range, np.ndarray)):
        raise ConfigError(f"networks must be a network index or a list of them, got {networks!r}")
    plots.check_network_count(len(networks))
    networks = _as_python(networks)
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in networks):
        raise ConfigError(f"networks must be network indices (integers), got {networks!r}")
    _check_flags(progress=progress)
    if title is not None and not isinstance(title, str):
        raise ConfigError(f"title must be a string, got {type(title).__name__} {title!r}")
    fig = plots.figure(kind, files, cells=_as_list(cells, "cells") or (), networks=networks,
                       points=_as_list(points, "points") or (),
                       title=title, progress=progress, **kw)
    if output is not None:
        figures.save(fig, output)
    return fig


@_keywords
def report(source, out_dir: str = "report", *, cells: Sequence[str] = (), details: bool | None = None,
           pdf: bool = True, cell_figures: bool = True, tol: float = 1e-4, loss_tol: float = 1e-2, dpi: int = 200,
           progress: bool = False) -> str:
    """Write the report `badminima report` writes (out_dir/report.md with its CSVs and figures: rates with
    Wilson intervals, Table 1 where it applies, distinct minima and plateaus per cell); returns its path."""
    from badminima.analysis.report import write_report
    from badminima.engine.store.paths import check_output_dir
    _check_flags(pdf=pdf, cell_figures=cell_figures, progress=progress)
    if details is not None:
        _check_flags(details=details)
    check_output_dir(out_dir, what="out_dir")
    return str(write_report(_files(source), out_dir, tol=tol, loss_tol=loss_tol, pdf=pdf, dpi=dpi,
                            cell_figures=cell_figures, progress=progress, details=details,
                            cells=_as_list(cells, "cells")))


@_keywords
def search(points: int, *, budget: int = 1000, seed: int = 0, strategy: str = "joint", output: str | None = None,
           found_dir: str = "runs/search/found", threads: int | None = None, progress: bool = False,
           force: bool = False, **options) -> dict:
    """Search for `points`-point datasets with a certified bad local minimum of the 2-2-1 sigmoid network
    (like `badminima search`); returns the search summary (verdict counts, best example, exported files)
    with "results" (the candidates' Results).  `options` takes the other SearchConfig fields."""
    from badminima.engine.search.run import (SearchConfig, check_used, default_parents, default_path, parse_ones,
                                             run_search)
    points, budget, seed, threads, found_dir = map(_as_python, (points, budget, seed, threads, found_dir))
    options = {k: _as_python(v) for k, v in options.items()}
    if isinstance(options.get("ones"), str):         # '4,3' as the command line spells it
        options["ones"] = parse_ones(options["ones"])
    for k in ("parents", "ones", "decimals"):         # None: the default; one value stands for a list of one
        if k in options and options[k] is None:
            del options[k]
        if isinstance(options.get(k), (str, int, os.PathLike)) and not isinstance(options.get(k), bool):
            options[k] = (options[k],)
    if isinstance(options.get("parents"), (list, tuple)):    # paths as the command line spells them
        options["parents"] = tuple(os.fspath(p) if isinstance(p, os.PathLike) else p for p in options["parents"])
    default = default_parents(strategy, points)     # as on the command line: deletion to 9 points from the
    if not options.get("parents") and default:      # paper's minimum
        options["parents"] = default
    _check_flags(progress=progress, force=force)
    output = _check_run_args(output, threads)
    _known_options(SearchConfig, options, "search", search)
    check_used(strategy, options)                   # an option given, even at its default, that it ignores
    cfg = SearchConfig(points=points, budget=budget, seed=seed, strategy=strategy, found_dir=found_dir,
                       **options).validate()
    path = output or default_path(cfg)
    if output is None:
        _check_run_args(path, None)
    summary = run_search(cfg, path, threads=threads, progress=progress, force=force,
                         command="badminima.search (Python API)")
    return {**summary, "path": path, "results": open(path)}
