"""Runs: one or many experiment cells trained chunk by chunk and streamed to a result file.

This is where progress, interruption and resumption live; the kernels stay pure.  A rerun of the same
command continues from the last committed chunk of every cell and gives the same file as an
uninterrupted run (tests/test_cli_train.py interrupts and resumes runs to check it; tests/test_store.py
SIGKILLs the writer).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from badminima.engine.train.config import ConfigError, TrainConfig
from badminima.engine.data.datasets import Dataset
from badminima.engine.core.layout import n_params
from badminima.engine.train import interrupt
from badminima.engine.train.limits import check_train_memory
from badminima.engine.train.precompile import Precompiler, variant_of
from badminima.engine.core.say import say
from badminima.engine.train.progress import Progress
from badminima.engine.store import RunComplete, RunWriter, open_results
from badminima.engine.store.paths import check_not_input
from badminima.engine.train.run import default_chunk, require_device, thread_count, train


@dataclass(frozen=True)
class Cell:
    """One experiment cell: a training configuration on a dataset."""
    name: str
    config: TrainConfig
    data: Dataset


def run_cells(path: str, run_config: dict, cells: list[Cell], *, shard: dict | None = None,
              force: bool = False, resume: bool | str = "auto", chunk: int | None = None,
              threads: int | None = None, keep_init: bool = False, progress: bool = True,
              command: str | None = None) -> dict[str, dict[str, int]]:
    """Train every cell into `path` (resuming what is committed); returns per-cell outcome counts.

    A finished file of exactly this run is reused as it is (a different one is refused, naming the
    differing keys, unless force).  CPU kernel variants not yet in the cache compile in worker
    processes (engine/train/precompile.py) while the cells whose kernels are ready train (CUDA kernels
    compile when first launched).  chunk: networks per committed chunk (default:
    engine/train/run.default_chunk of the configuration)."""
    names = [c.name for c in cells]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"two cells of this run are named {', '.join(map(repr, twice))}: one name holds one cell")
    for c in cells:
        require_device(c.config)          # before any file is opened
    config = dict(run_config)
    if shard is not None:
        config["shard"] = shard
    for c in cells:             # refused before a file is made or a kernel compiled
        check_train_memory(c.data.d, c.config.hidden, c.data.n, c.config.networks,
                           chunk or default_chunk(c.config), keep_init,
                           thread_count(threads), what=f"cell {c.name}" if len(cells) > 1 else "this run")
    check_not_input(path, [c.data.source for c in cells if c.data.source], what="the output", beside=("", ".part"))
    spec = {c.name: (c.config.to_dict(), c.config.networks, n_params(c.data.d, c.config.hidden)) for c in cells}
    try:
        writer = RunWriter.open(path, config, spec, command=command, force=force, resume=resume,
                                init_weights=keep_init, training=True, threads=threads,
                                append_rows=max(chunk or default_chunk(c.config) for c in cells))
    except RunComplete:
        say(f"reusing finished results in {path}")
        res = open_results(path)
        return {c.name: res.counts(c.name) for c in cells}
    with writer:
        todo = sum(writer.remaining(c.name) for c in cells)
        total = sum(writer.range(c.name)[1] - writer.range(c.name)[0] for c in cells)
        pending = [c for c in cells if writer.remaining(c.name)]
        variants = {c.name: variant_of(c.config, c.data.d, c.data.n) for c in pending if c.config.device == "cpu"}
        interrupt.check()               # a Ctrl-C lost while the file was opened
        with Precompiler(variants.values(), progress=progress) as pre:
            prog = Progress(total, enabled=progress, done=total - todo, floor=pre.seconds_left)
            try:
                while pending:
                    # the first cell whose kernel is compiled trains while the others' compile (a CUDA
                    # cell has no CPU variant: always ready)
                    c = next((c for c in pending if pre.ready(variants.get(c.name))), pending[0])
                    pending.remove(c)
                    t = time.monotonic()
                    pre.wait(variants.get(c.name))
                    prog.idle(time.monotonic() - t)
                    prog.label = f"networks (cell {c.name})" if len(cells) > 1 else "networks"
                    start, stop = writer.next_index(c.name), writer.range(c.name)[1]
                    for res in train(c.config, c.data.x, c.data.y, start, stop, chunk=chunk, threads=threads,
                                     keep_init=keep_init):
                        writer.append(c.name, res)
                        prog.update(len(res["index"]))
            finally:
                prog.close()
        counts = {c.name: writer.counts(c.name) for c in cells}
    return counts
