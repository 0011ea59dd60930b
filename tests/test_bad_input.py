"""Bad input to every command (issue 22): each case exits non-zero with one line on stderr that names
the problem -- never a traceback -- and changes no file and leaves none behind.

The cases run in a scratch directory holding a regular file FILE, a directory DIR, a small complete
result file run.h5, a copy of it with one data chunk damaged, and data files with a number of 5000
digits.  Read-only directories and full disks are real: a read-only or tiny tmpfs mounted for the test
(root), or a directory without write permission (other users); the tests skip where neither is possible.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import h5py
import pytest
from click.testing import CliRunner

from badminima.cli import main
from badminima.engine.data.datasets import DATA_DIR
from badminima.engine.store import diff_files, open_results
from badminima.engine.train.limits import MAX_HIDDEN

TRAIN = ["train", "--dataset", "xor", "-n", "64", "--steps", "10", "-q"]
BIG = "9" * 5000            # more digits than Python reads as an integer by default (4300)
HUGE = "99999999999999999999"


def invoke(args, env=None):
    return CliRunner().invoke(main, args, env=env)


def snapshot(root) -> dict:
    """Every file and directory under root: path -> (kind, size, content digest)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = ("dir",)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.isfile(p):        # the named pipe of the cases: there, not read
                out[os.path.relpath(p, root)] = ("other",)
                continue
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = ("file", os.path.getsize(p), hashlib.sha256(fh.read()).hexdigest())
    return out


def assert_refused(r, needle: str, codes=(1, 2)):
    """Exit code in codes, nothing on stdout, one line on stderr: `error: ...` containing needle."""
    lines = r.stderr.strip().splitlines()
    assert r.exit_code in codes, (r.exit_code, r.stderr, r.stdout)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    assert needle in lines[0], (needle, lines[0])
    assert len(lines[0]) < 1000, f"a line of {len(lines[0])} characters"       # one line a reader can read
    assert r.stdout == "", r.stdout


def damage_a_chunk(src: str, dst: str) -> None:
    """Copy a result file and flip bytes inside one compressed chunk of its weights (its Fletcher-32
    checksum then fails on reading)."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r") as f:
        info = f["cells/main/weights"].id.get_chunk_info(0)
    with open(dst, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        b = fh.read(8)
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes(x ^ 0xFF for x in b))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """The directory the cases run in (and must leave as they found it)."""
    d = tmp_path_factory.mktemp("bad_input")
    (d / "FILE").write_text("a regular file\n")
    (d / "DIR").mkdir()
    (d / "DIR" / "inside").write_text("kept\n")
    r = CliRunner().invoke(main, TRAIN + ["-o", str(d / "run.h5")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    damage_a_chunk(str(d / "run.h5"), str(d / "corrupt.h5"))
    (d / "big.csv").write_text(f"x0,x1,y\n0,0,0\n1,{BIG},1\n0,1,1\n")
    pts = json.loads((DATA_DIR / "paper10.json").read_text(encoding="utf-8"))
    pts["points"]["W_hat"]["theta"][0] = BIG
    (d / "bigpoint.json").write_text(json.dumps(pts))
    (d / "bigexp.csv").write_text(f"x0,x1,y\n0,0,0\n1,1e{BIG},1\n0,1,1\n")
    (d / "wide.csv").write_text("y," + ",".join(f"x{k}" for k in range(100_000)) + "\n")
    (d / "longfield.csv").write_text("x0,x1,y\n0,0,0\n1," + "1" * 200_000 + ",1\n")
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    os.mkfifo(d / "fifo.h5")
    (d / "dangling.h5").symlink_to(d / "nowhere" / "x.h5")
    (d / "four.csv").write_text("x0,x1,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n")
    shutil.copy(d / "run.h5", d / "edited.h5")        # a result file whose stored configuration was edited
    with h5py.File(d / "edited.h5", "r+") as f:
        for obj in (f, f["cells/main"]):
            obj.attrs["config"] = obj.attrs["config"].replace('"sigmoid"', '"softplus"')
    shutil.copy(d / "run.h5", d / "wide.h5")          # ... and one whose width no longer fits its weights
    with h5py.File(d / "wide.h5", "r+") as f:
        for obj in (f, f["cells/main"]):
            obj.attrs["config"] = obj.attrs["config"].replace('"hidden":2', '"hidden":5')
    return d


# (arguments, text the one line must contain); {s} is the scratch directory, the cases run in it
CASES = [
    # output paths that cannot be written: refused before any work
    (TRAIN + ["-o", "FILE/x.h5"], "FILE is not a directory"),
    (TRAIN + ["-o", "/proc/x.h5"], "/proc is not writable"),
    (TRAIN + ["-o", "DIR"], "is a directory"),
    (TRAIN + ["--force", "-o", "DIR"], "is a directory"),
    (TRAIN + ["--force", "-o", "{s}/DIR"], "is a directory"),
    (TRAIN + ["-o", ""], "-o is empty"),
    (TRAIN + ["-o", "   "], "-o is empty"),
    (TRAIN + ["-o", "DIR/" + "n" * 300 + ".h5"], "longer than the file system allows"),
    (["table1", "-n", "64", "-o", "FILE/t.h5"], "FILE is not a directory"),
    (["table1", "-n", "64", "--json", "DIR"], "is a directory"),
    (["table1", "-n", "64", "-o", ""], "-o is empty"),
    (["search", "-N", "8", "-k", "4", "-o", "FILE/s.h5"], "FILE is not a directory"),
    (["search", "-N", "8", "-k", "4", "--found-dir", "FILE"], "exists and is not a directory"),
    (["search", "-N", "8", "-k", "4", "-o", ""], "-o is empty"),
    (["merge", "run.h5", "-o", "FILE/m.h5"], "FILE is not a directory"),
    (["merge", "run.h5", "-o", "DIR"], "is a directory"),
    (["merge", "run.h5", "-o", ""], "-o is empty"),
    (["report", "run.h5", "--out-dir", "FILE"], "exists and is not a directory"),
    (["report", "run.h5", "--out-dir", "FILE/sub"], "FILE is not a directory"),
    (["report", "run.h5", "--out-dir", ""], "--out-dir is empty"),
    (["plot", "losses", "run.h5", "--figure", "DIR"], "is a directory"),
    (["plot", "losses", "run.h5", "--figure", "FILE/p.png"], "FILE is not a directory"),
    (["verify", "--json", "DIR"], "is a directory"),
    (["verify", "--json", "FILE/v.json"], "FILE is not a directory"),
    (["certify", "relu_d1", "--json", "DIR"], "is a directory"),
    (["certify", "relu_d1", "--json", "FILE/c.json"], "FILE is not a directory"),
    (["minimality", "-N", "8", "-k", "1", "--out-dir", "FILE"], "exists and is not a directory"),
    (["minimality", "-N", "8", "-k", "1", "--json", "DIR"], "is a directory"),
    (["reproduce", "--out-dir", "FILE"], "exists and is not a directory"),
    (["slurm", "train", "--shards", "2", "--script", "DIR"], "is a directory"),
    (["slurm", "train", "--shards", "2", "--script", "FILE/j.sh"], "FILE is not a directory"),
    (["dask", "train", "--shards", "2", "--out-dir", ""], "--out-dir is empty"),
    # an existing complete result of another configuration: the differing keys are named
    (["train", "--dataset", "xor", "-n", "64", "--steps", "20", "-q", "-o", "run.h5"], "differing keys: steps"),
    # numbers out of range: one line, no .part / .part.tmp left
    (TRAIN + ["--steps", HUGE, "-o", "o.h5"], "out of range"),
    (TRAIN + ["--networks", HUGE, "-o", "o.h5"], "out of range"),
    (TRAIN + ["--hidden", HUGE, "-o", "o.h5"], "out of range"),
    (TRAIN + ["--chunk", HUGE, "-o", "o.h5"], "out of range"),
    (TRAIN + ["--seed", BIG, "-o", "o.h5"], "a number of 5000 characters"),
    (TRAIN + ["--steps", str(2 ** 62 + 1), "-o", "o.h5"], "--steps must be in [1, 2^62]"),
    (TRAIN + ["--hidden", "100000", "-o", "o.h5"], f"--hidden must be <= {MAX_HIDDEN}"),
    (TRAIN + ["--hidden", str(MAX_HIDDEN + 1), "-o", "o.h5"], f"--hidden must be <= {MAX_HIDDEN}"),
    (["table1", "--networks", HUGE], "out of range"),
    (["search", "-N", "8", "--budget", HUGE], "out of range"),
    (["compile", "--hidden", "2-100000"], f"--hidden must be <= {MAX_HIDDEN}"),
    (["compile", "--sizes", "1-100000"], "point counts must be at least 2, got 1"),    # not the 10^5 values
    # memory: refused before compiling or allocating
    (TRAIN[:-3] + ["-n", str(2 ** 40), "--chunk", str(2 ** 40), "-o", "o.h5"], "of memory"),
    # numbers of more than 4300 digits in data files and weight points
    (["train", "--dataset", "big.csv", "-n", "64", "-o", "o.h5"], "a number of 5000 characters"),
    (["train", "--dataset", "bigexp.csv", "-n", "64", "-o", "o.h5"], "characters"),
    (["certify", "bigpoint.json"], "a number of 5000 characters"),
    # data files built to be slow or deep: a header of 10^5 columns (quadratic before), a field over the
    # csv module's limit, JSON nested 10^5 deep
    (["train", "--dataset", "wide.csv", "-n", "64", "-o", "o.h5"], "d=100000 is not supported"),
    (["train", "--dataset", "longfield.csv", "-n", "64", "-o", "o.h5"], "not a readable CSV file"),
    (["train", "--dataset", "deep.json", "-n", "64", "-o", "o.h5"], "nested too deeply"),
    # a named pipe where a result file is expected: refused, not waited on
    (["show", "fifo.h5"], "not a regular file"),
    (["merge", "fifo.h5", "-o", "m.h5"], "not a regular file"),
    (["train", "-n", "64", "-o", "fifo.h5"], "it exists and is not a regular file"),
    # an output through a symbolic link to nothing: refused, named as such
    (["train", "-n", "64", "-o", "dangling.h5"], "it is a symbolic link to"),
    # an output named as a writer's own file (another run writing X keeps its rows in X.part)
    (["train", "-n", "64", "-o", "x.h5.part"], "a result writer's own file"),
    (["table1", "-n", "64", "--sweep", "--sweep-steps", ",".join(map(str, range(1, 60)))], "at most 1000"),
    (["merge", "run.h5", "-o", "m.h5.lock"], "a result writer's own file"),
    # a cluster script or merge never replaces the run's own dataset, --force or not
    (["slurm", "train", "--dataset", "four.csv", "-n", "256", "--shards", "2", "--script", "four.csv"],
     "it is four.csv, which this command reads"),
    (["dask", "train", "--dataset", "four.csv", "-n", "256", "--shards", "2", "--merge", "four.csv", "--force"],
     "it is four.csv, which this command reads"),
    (["table1", "-n", "64", "--json", "dangling.h5"], "which does not exist"),
    (["plot", "losses", "edited.h5", "--figure", "f.png"], "not a valid training run"),
    (["report", "edited.h5", "--out-dir", "rep"], "unknown activation 'softplus'"),
    (["plot", "minimality", "FILE", "--figure", "FILE"], "it is FILE, which this command reads"),
    (["plot", "losses", "run.h5", "--figure", ""], "--figure is empty: give a file name"),
    (["plot", "losses", "run.h5", "--figure", "-"], "--figure -: a figure is not written to standard output"),
    (["study", "run.h5", "--figure", "-"], "--figure -: a figure is not written to standard output"),
    (["report", "wide.h5", "--out-dir", "rep"], "its weights hold 9 parameters, which no d-5-1 network has"),
    (["plot", "regions", "wide.h5", "--figure", "f.png"], "its configuration does not describe its data"),
    # smaller ones
    (["certify", "paper10", "--point", "W_hat", "--witness", "W_hat"], "cannot be its own witness"),
    (["show", "corrupt.h5"], "corrupt data in /cells/main/weights"),
    (["search", "-N", "9", "-k", "2", "-o", "run.h5"], "holds a finished run of another command (train, not search)"),
    # a text output (JSON, figure, script) never replaces a result file
    (["show", "run.h5", "--json", "run.h5"], "is an HDF5 result file"),
    (["certify", "relu_d1", "--json", "run.h5"], "is an HDF5 result file"),
    (["plot", "losses", "run.h5", "--figure", "run.h5"], "is an HDF5 result file"),
    (["slurm", "train", "--shards", "2", "--script", "run.h5"], "is an HDF5 result file"),
    # refused before any work: reproduce's -n before the claims, a figure's format before it is drawn
    (["reproduce", "-n", "0", "--out-dir", "rr"], "--networks must be >= 1, got 0"),
    (["plot", "losses", "run.h5", "--figure", "p.xyz"], "format 'xyz' is not supported"),
    # an option the optimizer does not read, a scale left out after the colon
    (TRAIN + ["-o", "t.h5", "--opt", "gd", "--beta1", "0.5"], "--beta1 is an Adam option"),
    (TRAIN + ["-o", "t.h5", "--opt", "sgd", "--eps", "1e-6"], "--eps is an Adam option"),
    (TRAIN + ["-o", "t.h5", "--init", "uniform:"], "nothing after the colon"),
    *([(["plot", "losses", "run.h5", "--figure", "p.pgf"], "format 'pgf' is not supported")]
      if not shutil.which("xelatex") else []),     # matplotlib writes PGF through a LaTeX run
    (["plot", "losses", "run.h5", "--figure", "p.png", "--size", "0x3"], "bad figure size '0x3'"),
    # cluster options: malformed, out of range, or breaking the script
    (["slurm", "train", "--shards", "2", "--script", "j.sh", "--warmup", '"unclosed'], "no closing quotation"),
    (["slurm", "train", "--shards", "2", "--script", "j.sh", "--exe", '"unclosed'], "--exe"),
    (["slurm", "train", "-n", "8", "--shards", "0", "--script", "j.sh"], "--shards must be >= 1, got 0"),
    (["slurm", "train", "--shards", "2", "--script", "j.sh", "--poll", "0"], "--poll must be positive"),
    (["slurm", "train", "--shards", "2", "--script", "j.sh", "--timeout", "-1"], "--timeout must be positive"),
    (["slurm", "train", "--shards", "2", "--script", "j.sh", "--max-requeues", "-1"], "--max-requeues must be >= 0"),
    (["slurm", "train", "--shards", "2", "--script", "j.sh", "--partition", "a;b"], "bad partition"),
    (["slurm", "train", "-n", "1000000", "--shards", "20000", "--max-array-size", "1", "--script", "j.sh"],
     "needs 20000 array submissions"),
    (["status", "DIR", "--shards", "0"], "--shards must be >= 1"),
    (["status", "FILE"], "FILE is not a result file (*.h5)"),
    # the run command's own options, checked before a script is written or a task started
    (["slurm", "train", "--hidden", "0", "--shards", "2", "--script", "j.sh"], "--hidden must be >= 1"),
    (["slurm", "table1", "-n", "0", "--shards", "2", "--script", "j.sh"], "--networks must be >= 1, got 0"),
    (["slurm", "table1", "-n", "512", "--sweep", "--shards", "2", "--script", "j.sh"], "--sweep cannot be sharded"),
    (["slurm", "train", "-n", "256", "--shards", "2", "--script", "j.sh", "--numba-cache", "FILE"],
     "--numba-cache 'FILE' is not a directory"),
    (["slurm", "search", "-N", "3", "-k", "512", "--shards", "2", "--script", "j.sh"], "4-64"),
    (["slurm", "train", "-n", "256", "--shards", "2", "--script", "j.sh", "--warmup", "--bogus"],
     "'--bogus' is not a badminima command"),
    (["slurm", "train", "-n", "256", "--shards", "2", "--script", "j.sh", "--warmup", "compile -h"],
     "--warmup must run a command, not ask for its --help"),
    (["slurm", "train", "-n", "256", "--shards", "2", "--script", "j.sh", "--warmup", "compile --hidden two"],
     "in --warmup `compile --hidden two`: Invalid value for '--hidden'"),
    (["slurm", "train", "-n", "256", "--shards", "2", "--script", "j.sh", "--warmup", "compile --hidden 0"],
     "in --warmup `compile --hidden 0`: --hidden must be >= 1, got 0"),
    (["slurm", "train", "-n", "256", "--shards", "2", "--script", "j.sh", "--warmup", "train --lr -1"],
     "in --warmup `train --lr -1`: --lr must be"),
    (["dask", "train", "--lr", "-1", "--shards", "2", "--out-dir", "d"], "--lr must be positive"),
    (TRAIN + ["--shard", "3/2", "-o", "o.h5"], "bad shard '3/2': expected I/N"),
    (TRAIN + ["--shard", "\uff11/\uff12", "-o", "o.h5"], "bad shard"),
    (TRAIN + ["--shard", "3", "-o", "o.h5"], "takes I from SLURM_ARRAY_TASK_ID, which is not set here"),
    (["plot", "minimality", "fifo.h5", "--figure", "m.png"], "fifo.h5: not a regular file"),
    # names that are empty or a directory
    (["show", "DIR"], "DIR: is a directory, not a result file"),
    (["show", ""], "a result file name is empty"),
    (["plot", "minimality", "DIR", "--figure", "m.png"], "DIR: is a directory; give the rows file"),
    (["train", "--dataset", "DIR", "-n", "64", "-o", "o.h5"], "DIR: is a directory, not a data file"),
    (["train", "--dataset", "", "-n", "64", "-o", "o.h5"], "the dataset name is empty"),
    # other values
    (["minimality", "-N", "0-100000", "-k", "1"], "got 0, 1, 2, 3, 65, 66, ... (99940 values)"),
    (["search", "-N", "8", "-k", "2", "--post-workers", "-1"], "--post-workers must be >= 0"),
    (["search", "-N", "8", "-k", "2", "--iters", "0"], "--iters must be >= 1, got 0"),
    (["search", "-N", "8", "-k", "2", "--strong-delta", "0.7"], "--strong-delta must be below 1/2"),
    (["search", "-N", "7", "-k", "2", "--ones", ""], "--ones must be comma-separated integers, got ''"),
    (["search", "-N", "6", "-k", "2", "--ones", "2,4"], "--ones names a label split twice (k and N - k ones"),
    (["search", "-N", "7", "-k", "2", "--parents", "data/deadlock_n8.json"],
     "--parents is used only by the delete and refine strategies, not by joint"),
    (["search", "-N", "7", "-k", "2", "--strategy", "paper", "--bound", "5.9"],
     "--bound is used only by the joint, delete and refine strategies, not by paper"),
    (["search", "-N", "7", "-k", "2", "--jitter", "0.05"],        # given, even at its default
     "--jitter is used only by the delete and refine strategies, not by joint"),
    (["search", "-N", "7", "-k", "2", "--strategy", "delete", "--parents", "data/deadlock_n8.json", "--ones", "3"],
     "--ones is used only by the joint and paper strategies, not by delete"),
    (["report", "run.h5", "--loss-tol", "inf", "--out-dir", "rep"], "--loss-tol must be positive and finite"),
]


@pytest.mark.parametrize("args, needle", CASES, ids=[" ".join(a)[:60] + f" [{i}]" for i, (a, _) in enumerate(CASES)])
def test_bad_input_is_one_line_and_changes_nothing(scratch, monkeypatch, args, needle):
    monkeypatch.chdir(scratch)
    args = [a.replace("{s}", str(scratch)) for a in args]
    before = snapshot(scratch)
    r = invoke(args)
    assert_refused(r, needle)
    assert snapshot(scratch) == before


@pytest.mark.parametrize("args", [["show", "nope.h5"], ["report", "nope.h5", "--out-dir", "rep"], ["status", "nope.h5"],
                                  ["plot", "losses", "nope*.h5", "--figure", "f.png"], ["merge", "DIR", "-o", "m.h5"],
                                  ["certify", "nope.json"], ["train", "--dataset", "nope.csv", "-n", "4", "-o", "o.h5"]])
def test_an_input_file_that_is_not_there_is_bad_input(scratch, monkeypatch, args):
    """A name that names no input file (missing, a folder, a glob matching nothing) exits 2, like any bad
    input, for result files and datasets alike."""
    monkeypatch.chdir(scratch)
    r = invoke(args)
    assert_refused(r, "", codes=(2,))


@pytest.mark.parametrize("run", [["train", "-n", "256", "--steps", "10"],
                                 ["table1", "-n", "256", "--steps", "10", "--no-claims", "--check-final", "0"],
                                 ["search", "-N", "8", "-k", "16"]])
def test_slurm_checks_the_run_command_without_running_it(scratch, monkeypatch, run):
    """slurm invokes every command with --shard (main's run commands) only up to ready(): the script
    is written and nothing else (a run command without ready() would train here, into runs/)."""
    from badminima.cli import main
    assert {c for c, cmd in main.commands.items() if "shard" in {p.name for p in cmd.params}} == \
        {"train", "table1", "search"}
    monkeypatch.chdir(scratch)
    before = snapshot(scratch)
    script = f"check-{run[0]}.sh"
    r = invoke(["slurm", *run, "--shards", "2", "--script", script, "--no-warmup"])
    assert r.exit_code == 0, r.output
    after = snapshot(scratch)
    assert script in after and {k: v for k, v in after.items() if k != script} == before


def test_slurm_does_not_clamp_the_tasks_threads_to_this_machine(scratch, monkeypatch):
    """The check-only run of a task's command on the submitting machine counts its cores for nothing:
    no note that --threads is clamped, and the script keeps --threads 8."""
    monkeypatch.chdir(scratch)
    r = invoke(["slurm", "train", "-n", "100000", "--threads", "8", "--shards", "4", "--cpus-per-task", "8",
                "--script", "threads.sh", "--no-warmup", "--max-array-size", "1000"])
    assert r.exit_code == 0, r.output
    assert "note:" not in r.output and "--threads 8" in (scratch / "threads.sh").read_text()


def test_show_reads_every_value_unless_told_not_to(scratch, monkeypatch):
    monkeypatch.chdir(scratch)
    assert invoke(["show", "run.h5"]).exit_code == 0
    r = invoke(["show", "--no-verify", "corrupt.h5"])
    assert r.exit_code == 0 and "64 networks" in r.stdout


def test_a_memory_limit_refuses_what_would_not_fit(scratch, monkeypatch):
    """BADMINIMA_MEMORY_LIMIT stands for a small machine: the same run fits with smaller chunks."""
    monkeypatch.chdir(scratch)
    before = snapshot(scratch)
    args = ["train", "--dataset", "xor", "-n", "1000000", "--steps", "10", "-q", "-o", "m.h5"]
    r = invoke(args + ["--chunk", "1000000"], env={"BADMINIMA_MEMORY_LIMIT": "100M"})
    assert_refused(r, "use a smaller --chunk")
    assert "1000000 networks per chunk x 9 parameters" in r.stderr and snapshot(scratch) == before
    from badminima.engine.train.limits import ResourceError, check_train_memory
    monkeypatch.setenv("BADMINIMA_MEMORY_LIMIT", "100M")
    check_train_memory(2, 2, 4, 1_000_000, 16384)                   # the default chunk fits
    with pytest.raises(ResourceError):
        check_train_memory(2, 2, 4, 1_000_000, 1_000_000)


def test_more_threads_than_cores_are_clamped_with_a_note(tmp_path):
    from badminima.cli import available_cores
    r = invoke(TRAIN + ["--threads", "100000", "-o", str(tmp_path / "t.h5")])
    assert r.exit_code == 0, r.output
    assert f"note: --threads 100000 is more than the {available_cores()} core" in r.stderr
    # where NUMBA_NUM_THREADS allows fewer threads than there are cores, the note names that limit
    r = invoke(TRAIN + ["--threads", "100000", "-o", str(tmp_path / "t1.h5")], env={"NUMBA_NUM_THREADS": "1"})
    assert r.exit_code == 0, r.output
    assert available_cores() < 2 or "note: --threads 100000 is more than NUMBA_NUM_THREADS=1; using 1" in r.stderr


def test_hidden_limit_is_stated_in_help():
    r = invoke(["train", "--help"])
    assert f"1..{MAX_HIDDEN}" in r.stdout


def test_every_usage_error_is_one_line():
    for args in (["train", "--hidden", "two"], ["train", "--bogus"], ["nosuchcommand"], ["plot", "nokind", "x"]):
        r = invoke(args)
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr


# ----------------------------------------------------------------------------------------------------
# a read-only directory and a full disk, for real

def _mount_tmpfs(path, options: str) -> bool:
    path.mkdir(exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _umount(path):
    subprocess.run(["umount", str(path)], capture_output=True)
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory no one can create files in: a read-only tmpfs (root) or mode 0555 (other users)."""
    d = tmp_path / "ro"
    if _mount_tmpfs(d, "ro,size=1m"):
        yield d
        _umount(d)
        return
    if os.geteuid() == 0:
        pytest.skip("root cannot be kept out of a directory without mounting a read-only file system")
    d.chmod(0o555)
    yield d
    d.chmod(0o755)


@pytest.mark.parametrize("args", [TRAIN + ["-o", "{ro}/x.h5"], TRAIN + ["-o", "{ro}/new/x.h5"],
                                  ["verify", "--json", "{ro}/v.json"], ["report", "{run}", "--out-dir", "{ro}/rep"],
                                  ["merge", "{run}", "-o", "{ro}/m.h5"]])
def test_an_unwritable_directory_is_refused_before_any_work(readonly_dir, scratch, args):
    args = [a.replace("{ro}", str(readonly_dir)).replace("{run}", str(scratch / "run.h5")) for a in args]
    r = invoke(args)
    assert_refused(r, "not writable", codes=(1,))
    assert os.listdir(readonly_dir) == []


@pytest.fixture
def small_disk(tmp_path):
    """mount(size) mounts a tmpfs of that size at the returned folder (root only; skips otherwise)."""
    d = tmp_path / "fs"
    state = {"mounted": False}

    def mount(size: str, remount: bool = False):
        if remount:
            ok = subprocess.run(["mount", "-o", f"remount,size={size}", str(d)], capture_output=True).returncode == 0
        else:
            ok = state["mounted"] = _mount_tmpfs(d, f"size={size}")
        if not ok:
            pytest.skip("cannot mount a small tmpfs here (needs root)")
        return d
    yield mount
    if state["mounted"]:
        _umount(d)


RUN_20K = ["train", "--dataset", "xor", "-n", "20000", "--steps", "50", "--chunk", "2000", "-q"]


@pytest.fixture(scope="module")
def reference_20k(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref20k") / "r.h5"
    assert CliRunner().invoke(main, RUN_20K + ["-o", str(out)]).exit_code == 0
    return str(out)


@pytest.mark.parametrize("size, phase", [("1500k", "streaming"), ("6500k", "finishing")])
def test_a_full_disk_is_one_line_and_the_rerun_resumes(small_disk, reference_20k, size, phase):
    """The disk fills while chunks stream into the .part (1.5 MB) or while the finished file is
    written beside the complete .part (6.5 MB): one line, no temporary file left, the committed rows
    kept; with space again the same command resumes to the file an undisturbed run writes."""
    fs = small_disk(size)
    out = str(fs / "r.h5")
    r = invoke(RUN_20K + ["-o", out])
    assert_refused(r, "disk full while writing", codes=(1,))
    assert "rerun the same command to resume" in r.stderr
    assert sorted(os.listdir(fs)) == ["r.h5.part"]                     # no .tmp, .part.tmp, .lock, probe
    committed = open_results(out + ".part").n_rows("main")
    assert (committed < 20000) if phase == "streaming" else (committed == 20000)
    small_disk("20m", remount=True)
    r = invoke(RUN_20K + ["-o", out])
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(fs)) == ["r.h5"] and diff_files(reference_20k, out) == []


def test_a_file_size_limit_is_one_line_and_the_rerun_resumes(tmp_path, reference_20k):
    """A write past the file size limit (ulimit -f) leaves a .part shorter than its superblock says,
    which HDF5 refuses to open: the command says so in one line (h5py's error on close was a
    traceback), and the rerun pads the .part with zeros, keeps the committed rows and ends with the file
    an undisturbed run writes (it used to refuse the .part as truncated)."""
    import resource
    import sys
    out = str(tmp_path / "r.h5")
    cmd = [sys.executable, "-m", "badminima"] + RUN_20K + ["-o", out]
    limit = 1_500_000

    def capped():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, preexec_fn=capped)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "file size limit reached while writing" in lines[0] and "rerun the same command to resume" in lines[0]
    assert os.path.getsize(out + ".part") == limit
    with pytest.raises(OSError, match="truncated file"):
        h5py.File(out + ".part", "r")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "padded with zeros" in p.stderr, p.stderr
    assert sorted(os.listdir(tmp_path)) == ["r.h5"] and diff_files(reference_20k, out) == []


def test_status_check_reads_every_value_of_complete_shards(tmp_path):
    """`status --check` says a sharded run is ready to merge only if every stored value reads back: a
    complete shard with a damaged chunk is one line and exit 1 (plain `status` still lists the shards)."""
    shards = tmp_path / "sh"
    for i in range(2):
        r = CliRunner().invoke(main, TRAIN + ["--shard", f"{i}/2", "-o", str(shards / f"shard-000{i}.h5")])
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["status", str(shards), "--check"])
    assert r.exit_code == 0 and "all complete" in r.stdout
    damage_a_chunk(str(shards / "shard-0001.h5"), str(shards / "damaged.h5"))
    os.replace(shards / "damaged.h5", shards / "shard-0001.h5")
    r = CliRunner().invoke(main, ["status", str(shards), "--check"])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and r.stdout == "" and len(lines) == 1, r.output
    assert lines[0].startswith(f"error: {shards / 'shard-0001.h5'}: corrupt data in /cells/main/weights")
    assert CliRunner().invoke(main, ["status", str(shards)]).exit_code == 0
