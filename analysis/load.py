"""Any set of result files -> the experiment cells they hold, ready for analysis.

Files are grouped into runs by their configuration (shards of one run go together, different runs
stay apart), each run is opened with engine.store.read.Results, and every cell of every run becomes a
`CellRef` with a short unique label built from the configuration keys that vary between the cells
("fxor sigmoid gd h=3", "... lr=0.1").  Scanning many files shows progress on stderr.
"""
from __future__ import annotations

import difflib
import functools
import re

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from badminima.engine.train.config import TrainConfig
from badminima.engine.data.datasets import SUPPORTED_D, DataError, Dataset, load_dataset
from badminima.engine.core.layout import n_params
from badminima.engine.core.model import logits_many
from badminima.engine.core.names import ACTIVATIONS, LOSSES
from badminima.engine.train.progress import Progress
from badminima.engine.store import Results, canonical_json, expand_paths, open_h5, read_meta
from badminima.engine.store.paths import shell_quote
from badminima.engine.train.limits import check_fits

#: configuration keys that never label a cell (derived from others, or bookkeeping)
_UNLABELLED = {"dataset_fingerprint", "kind", "networks"}
_BASE = ("dataset", "activation", "optimizer", "hidden")


class AnalysisError(ValueError):
    """Bad input to an analysis (unknown cell, unusable rows file, ...); one line for the user."""


@dataclass(eq=False)
class CellRef:
    """One experiment cell of one run: its configuration, counts, and lazy access to its arrays."""
    results: Results
    name: str
    config: dict
    label: str = ""
    _dataset: Dataset | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        """Networks present (committed) in the files."""
        return self.results.n_rows(self.name)

    @property
    def n_total(self) -> int:
        return self.results.n_total(self.name)

    @property
    def complete(self) -> bool:
        return self.results.complete(self.name)

    @property
    def counts(self) -> dict[str, int]:
        return self.results.counts(self.name)

    @functools.cached_property
    def optimizer_counts(self) -> dict[str, int]:
        """Counts of the optimizer's own verdicts at the end of its budget (the paper's protocol; before
        the finisher resolves what it left unresolved); the final counts for files without them."""
        if "optimizer_outcome" not in self.results.fields:
            return self.counts
        return self.results.code_counts(self.name, "optimizer_outcome")

    @property
    def hidden(self) -> int:
        return int(self.config["hidden"])

    @property
    def activation(self) -> str:
        return self.config["activation"]

    @property
    def kind(self) -> str:
        return self.config.get("kind", "classification")

    @property
    def codes(self) -> tuple[int, int]:
        """(activation code, loss code) of engine.core.model."""
        return ACTIVATIONS[self.activation], LOSSES["xent" if self.kind == "classification" else "mse"]

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.config)

    def data(self, fields=None) -> dict[str, np.ndarray]:
        """The cell's per-network arrays (engine.store.read.Results.cell), each of the point its verdict
        describes: where the finisher took a network on (finish_iters >= 0), "weights" and "loss" are
        where it stopped and "accuracy" is recomputed there (from the dataset); elsewhere they are the
        optimizer's final values as stored."""
        fields = list(self.results.fields if fields is None else fields)
        swap = [f for f in ("weights", "loss", "accuracy") if f in fields]
        extra = ["finish_iters", "finish_weights", "finish_loss"] \
            if (swap and "finish_weights" in self.results.fields) else []
        self._check_memory(fields + [f for f in extra if f not in fields])
        out = self.results.cell(self.name, fields + [f for f in extra if f not in fields])
        if extra:
            ran = out["finish_iters"] >= 0
            if "weights" in fields:
                out["weights"] = np.where(ran[:, None], out["finish_weights"], out["weights"])
            if "loss" in fields:
                out["loss"] = np.where(ran, out["finish_loss"], out["loss"])
            if "accuracy" in fields and ran.any() and self.kind == "classification":
                out["accuracy"] = np.array(out["accuracy"], dtype=np.float64)
                out["accuracy"][ran] = self._accuracy(out["finish_weights"][ran])
            for f in extra:
                if f not in fields:
                    del out[f]
        return out

    def _accuracy(self, weights) -> np.ndarray:
        """Training accuracy of each row of weights (float64, the engine's rule: logit > 0 means class 1)."""
        ds = self.dataset()
        z = logits_many(np.ascontiguousarray(weights, dtype=np.float64), np.ascontiguousarray(ds.x, dtype=np.float64),
                        ds.d, self.hidden, ACTIVATIONS[self.activation])
        return ((z > 0) == (np.asarray(ds.y) > 0.5)).mean(axis=1)

    def _check_memory(self, fields) -> None:
        """Refuse (ResourceError, one line) to read more than fits: the arrays, and about twice that
        while the files' parts are joined and sorted."""
        check_fits(self.results.read_bytes(self.name, fields), f"reading cell {self.label or self.name} "
                   f"({self.n} networks)", "analyse fewer networks at once (e.g. some shards of the run)")

    def dataset(self) -> Dataset:
        """The training data, reloaded from the configuration and checked against the stored fingerprint
        (once per cell: a report asks for it from several tables and figures)."""
        if self._dataset is not None:
            return self._dataset
        spec = self.config["dataset"]
        try:
            ds = load_dataset(spec, self.kind)
        except DataError as e:
            raise DataError(f"cell {self.label or self.name}: cannot reload its dataset: {e}") from None
        fp = self.config.get("dataset_fingerprint")
        if fp and ds.fingerprint != fp:
            raise DataError(f"cell {self.label or self.name}: dataset {spec!r} has changed since the run "
                            f"(fingerprint {ds.fingerprint} != stored {fp})")
        if n_params(ds.d, self.hidden) != self.results.n_params(self.name):
            raise DataError(f"cell {self.label or self.name}: its weights hold {self.results.n_params(self.name)} "
                            f"parameters, but a {ds.d}-{self.hidden}-1 network on {spec!r} has "
                            f"{n_params(ds.d, self.hidden)}")
        self._dataset = ds
        return ds


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        if set(v) == {"law", "scale", "bias"}:     # InitSpec
            s = f"{v['law']}:{v['scale']:g}" if v["law"] in ("normal", "uniform") else v["law"]
            return s + ("" if v["bias"] == "same" else "/zero-bias")
        return canonical_json(v)
    return str(v)


def cell_labels(configs: list[dict], names: list[str] | None = None) -> list[str]:
    """Short unique labels: dataset, activation, optimizer, h, then every other key that varies."""
    varying = []
    keys = sorted({k for c in configs for k in c} - _UNLABELLED - set(_BASE))
    for k in keys:
        if len({canonical_json(c.get(k)) for c in configs}) > 1:
            varying.append(k)
    def build(keys):
        out = []
        for c in configs:
            ds = Path(str(c.get("dataset", "?"))).stem
            parts = [ds, str(c.get("activation", "?")), str(c.get("optimizer", "?")), f"h={c.get('hidden', '?')}"]
            if "dataset" not in c and "strategy" in c:          # a deadlock search's cell
                parts = ["search", f"N={c.get('points', '?')}", str(c["strategy"])]
            out.append(" ".join(parts + [f"{k}={_short(c.get(k))}" for k in keys]))
        return out
    labels = build(varying)
    if len(set(labels)) < len(labels) and len({canonical_json(c.get("networks")) for c in configs}) > 1:
        labels = build(varying + ["networks"])      # runs told apart by their size alone
    seen: dict[str, int] = {}
    for lb in labels:
        seen[lb] = seen.get(lb, 0) + 1
    if names is not None:
        labels = [f"{lb} [{n}]" if seen[lb] > 1 else lb for lb, n in zip(labels, names)]
    count: dict[str, int] = {}
    out = []
    for lb in labels:                       # still equal (same config twice): number them
        count[lb] = count.get(lb, 0) + 1
        out.append(lb if labels.count(lb) == 1 else f"{lb} #{count[lb]}")
    return out


def _check_config(cell: CellRef, files) -> None:
    """AnalysisError unless the cell's stored configuration is a valid training configuration (the
    figures and tables read its activation, width and dataset from it)."""
    from badminima.engine.train.config import ConfigError
    where = f"{files[0]}{' ...' if len(files) > 1 else ''}: cell {cell.name!r}"
    try:
        cfg = cell.train_config().validate()
    except (ConfigError, KeyError, TypeError, ValueError) as e:
        raise AnalysisError(f"{where} holds a configuration that is not a valid training run "
                            f"({type(e).__name__}: {e})") from None
    stored = cell.results.n_params(cell.name)
    if not any(n_params(d, cfg.hidden) == stored for d in SUPPORTED_D):
        raise AnalysisError(f"{where}: its weights hold {stored} parameters, which no d-{cfg.hidden}-1 network "
                            f"has (d in {SUPPORTED_D}): its configuration does not describe its data")


def load_cells(paths_or_globs, *, progress: bool = True, opened: list[Results] | None = None) -> list[CellRef]:
    """Every cell of every run in the given files (paths or globs; shards of one run are joined);
    `opened`: the files already opened one by one (their metadata are not read again)."""
    paths = [] if opened is not None else expand_paths(paths_or_globs)
    groups: dict[str, list] = {}
    prog = Progress(len(paths), "files", enabled=progress and len(paths) > 1)
    try:
        for p, meta in _metas(paths, opened):
            if meta.config.get("command") == "search":
                raise AnalysisError(f"{p} holds a deadlock search, not trained networks: `report` and `plot` "
                                    f"take training results (a search's summary: `badminima show {shell_quote(p)}`)")
            groups.setdefault(canonical_json(meta.identity()), []).append(meta)
            prog.update(1)
    finally:
        prog.close()
    cells = []
    for metas in groups.values():
        res = Results(metas)
        for name in res.cells:
            cells.append(CellRef(res, name, res.cell_config(name)))
            _check_config(cells[-1], res.files)
    names = [c.name for c in cells]
    for c, lb in zip(cells, cell_labels([c.config for c in cells], names)):
        c.label = lb
    return cells


def _metas(paths, opened):
    """(path, metadata) of each file: those of `opened`, else read from each path in turn."""
    if opened is not None:
        yield from ((m.path, m) for res in opened for m in res.metas)
        return
    for p in paths:
        with open_h5(p) as f:
            yield p, read_meta(f, p)


def _words(c: CellRef) -> set[str]:
    return set(c.label.split()) | set(re.split(r"[-_\s]+", c.name)) | {c.name}


def match_cell(cells: list[CellRef], query: str) -> CellRef:
    """The one cell that `query` names: its name, its label, or any words of its label that no other
    cell's label also has ('xor sigmoid gd h=2').  None or several: an error naming the closest few."""
    exact = [c for c in cells if query in (c.name, c.label)]
    if len(exact) == 1:
        return exact[0]
    words = query.split()
    hits = [c for c in cells if words and all(w in _words(c) for w in words)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        shown = "; ".join(c.label for c in hits[:4]) + (f"; and {len(hits) - 4} more" if len(hits) > 4 else "")
        raise AnalysisError(f"--cell {query!r} matches {len(hits)} cells ({shown}); add a word to pick one")
    close = difflib.get_close_matches(query, [c.label for c in cells], n=3, cutoff=0.0)
    raise AnalysisError(f"no cell matches {query!r}; closest: {'; '.join(close)}")


def select_cells(cells: list[CellRef], wanted) -> list[CellRef]:
    """The cells named by `wanted` (each resolved by match_cell), or all cells if it is empty."""
    if not wanted:
        return list(cells)
    return list(dict.fromkeys(match_cell(cells, w) for w in wanted))


def read_cells(cells: list[CellRef], fields, *, progress: bool = True) -> list[dict[str, np.ndarray]]:
    """The given fields of several cells, with a progress line counted in networks."""
    total = sum(c.n for c in cells)
    prog = Progress(total, "networks read", enabled=progress and total > 0)
    out = []
    try:
        for c in cells:
            out.append(c.data(fields))
            prog.update(c.n)
    finally:
        prog.close()
    return out


__all__ = ["AnalysisError", "CellRef", "cell_labels", "load_cells", "match_cell", "select_cells", "read_cells"]
