"""`badminima train` end to end through click: counts, result files, resume, refusals, bad input."""
import json
import time

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from badminima.cli import main
from badminima.engine.store import open_results

ARGS = ["train", "--dataset", "xor", "--steps", "300", "-n", "200", "-q"]


def run(args, **kw):
    return CliRunner().invoke(main, args, catch_exceptions=False, **kw)


def test_train_prints_counts_and_writes_hdf5(tmp_path):
    out = tmp_path / "r.h5"
    r = run(ARGS + ["-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "solved" in r.output and "total" in r.output and "200" in r.output
    res = open_results(str(out))
    cell = res.cell("main")
    assert len(cell["index"]) == 200 and np.array_equal(cell["index"], np.arange(200))
    printed = {ln.split()[0]: int(ln.split()[1]) for ln in r.output.splitlines()[2:9]}
    assert printed == res.counts("main")
    with h5py.File(out) as f:       # plain h5py, no badminima code needed
        assert json.loads(f.attrs["config"])["hidden"] == 2


def test_existing_result_is_not_overwritten_and_other_config_refused(tmp_path):
    out = tmp_path / "r.h5"
    assert run(ARGS + ["-o", str(out)]).exit_code == 0
    before = out.read_bytes()
    r = CliRunner().invoke(main, ARGS + ["-o", str(out)])          # the same run: reused, summary printed
    assert r.exit_code == 0 and "reusing finished results" in r.output and out.read_bytes() == before
    assert "solved" in r.output and f"results: {out}" in r.output
    r = CliRunner().invoke(main, ARGS + ["-o", str(out), "--seed", "5"])
    assert r.exit_code == 1 and "differing keys: seed" in r.output and "--force" in r.output
    assert out.read_bytes() == before
    assert run(ARGS + ["-o", str(out), "--force"]).exit_code == 0


def test_interrupted_run_resumes_to_identical_results(tmp_path):
    out_a, out_b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert run(ARGS + ["-o", str(out_a), "--chunk", "64"]).exit_code == 0
    # simulate an interruption after some chunks: a sharded-looking partial run is not needed, the
    # writer's .part survives a KeyboardInterrupt raised from the progress hook
    from badminima.engine.train import cells as runs
    calls = {"n": 0}
    orig = runs.Progress.update

    def boom(self, n):
        calls["n"] += 1
        orig(self, n)
        if calls["n"] == 2:
            raise KeyboardInterrupt
    runs.Progress.update = boom
    try:
        r = CliRunner().invoke(main, ARGS + ["-o", str(out_b), "--chunk", "64"])
    finally:
        runs.Progress.update = orig
    assert r.exit_code == 130 and not out_b.exists() and (tmp_path / "b.h5.part").exists()
    r2 = CliRunner().invoke(main, ARGS + ["-o", str(out_b), "--chunk", "100", "--threads", "1"],
                            catch_exceptions=False)
    assert r2.exit_code == 0, r2.output
    a, b = open_results(str(out_a)).cell("main"), open_results(str(out_b)).cell("main")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_sigterm_stops_at_a_safe_point_and_the_rerun_resumes(tmp_path):
    """SIGTERM (kill, scancel, a batch system's time limit) stops a run as Ctrl-C does: the committed
    chunks stay in the .part, the lock is released and removed, one line names the signal, the exit
    status is 128 + 15; the same command then resumes to the uninterrupted run's results."""
    import signal
    import subprocess
    from badminima.engine.cluster.shards import default_exe
    cmd = [*default_exe(), "train", "--dataset", "xor", "-n", "65536", "--steps", "2000", "--chunk", "16384"]
    out = tmp_path / "b.h5"
    proc = subprocess.Popen([*cmd, "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        part = tmp_path / "b.h5.part"
        deadline = time.monotonic() + 300
        while (not part.exists() or part.stat().st_size < 10 ** 6) and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be stopped"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == ("error: stopped by SIGTERM; committed results are kept "
                                            "(rerun the same command to resume)"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.h5.part"]
    r = CliRunner().invoke(main, cmd[len(default_exe()):] + ["-o", str(out), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    ref = tmp_path / "ref.h5"
    assert CliRunner().invoke(main, cmd[len(default_exe()):] + ["-o", str(ref), "-q"]).exit_code == 0
    a, b = open_results(str(ref)).cell("main"), open_results(str(out)).cell("main")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("args", [["train", "--dataset", "xor", "-n", "64", "--steps", "4000000000000"],
                                  ["search", "-N", "7", "-k", "64", "--iters", "1000000000"],
                                  ["search", "-N", "7", "-k", "64", "--iters", "1000000000", "--strategy", "paper"]],
                         ids=["train", "search-joint", "search-paper"])
def test_a_stop_signal_ends_even_a_block_of_absurd_budget(tmp_path, args):
    """The kernels look at the stop flag inside a block (training every few steps, the search's optimizers
    every iteration): SIGTERM in the middle of one block of days of work ends the command in seconds,
    as at a safe point, with the chunk in hand abandoned."""
    import signal
    import subprocess
    from badminima.engine.cluster.shards import default_exe
    out = tmp_path / "r.h5"
    extra = ["--found-dir", str(tmp_path / "found")] if args[0] == "search" else []
    proc = subprocess.Popen([*default_exe(), *args, *extra, "-q", "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        part = tmp_path / "r.h5.part"
        deadline = time.monotonic() + 300
        while not part.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)                                 # inside the first block
        assert proc.poll() is None, "the run ended before it could be stopped"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        waited = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1].startswith("error: stopped by SIGTERM"), err
    assert waited < 60, waited
    assert part.exists() and not out.exists()


@pytest.mark.parametrize("first,second", [("SIGTERM", "SIGINT"), ("SIGINT", "SIGHUP")])
def test_a_second_signal_changes_nothing(tmp_path, first, second):
    """A second stopping signal right after the first (a terminal's Ctrl-C after `timeout`'s SIGTERM,
    scancel signalling every process) neither cuts the first one's stop short nor changes its exit
    status: one line naming the first, 128 + its number, only the .part left."""
    import signal
    import subprocess
    from badminima.engine.cluster.shards import default_exe
    out = tmp_path / "r.h5"
    proc = subprocess.Popen([*default_exe(), "train", "-n", "64", "--steps", "4000000000000", "-q", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "r.h5.part").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
        proc.send_signal(getattr(signal, first))
        time.sleep(0.01)
        proc.send_signal(getattr(signal, second))
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    sig = getattr(signal, first)
    what = "interrupted" if sig == signal.SIGINT else f"stopped by {first}"
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    assert err.strip().splitlines() == [f"error: {what}; committed results are kept (rerun the same command to resume)"], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5.part"]


def test_the_stopping_signals_are_recorded_where_they_have_their_default_action():
    """install() takes SIGINT, SIGTERM and SIGHUP where they have their default handling and leaves
    an ignored one (nohup ignores SIGHUP) ignored; the first signal is the one reported, and a second
    one raises nothing."""
    import os
    import signal
    from badminima.engine.train import interrupt
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        interrupt.install()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.getsignal(signal.SIGINT) is interrupt._handler
        assert interrupt.signal_received() is None
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        os.kill(os.getpid(), signal.SIGINT)         # a second signal: the first one's stop goes on
        time.sleep(0.2)
        assert interrupt.received() and interrupt.signal_received() == signal.SIGTERM
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        interrupt.install()
        assert signal.getsignal(signal.SIGHUP) is interrupt._handler and not interrupt.received()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(5)
        assert interrupt.signal_received() == signal.SIGHUP
    finally:
        interrupt.clear()
        for s, h in old.items():
            signal.signal(s, h)


def test_resume_into_different_config_is_refused(tmp_path):
    out = tmp_path / "r.h5"
    part = tmp_path / "r.h5.part"
    from badminima.engine.train import cells as runs
    orig = runs.Progress.update

    def boom(self, n):
        raise KeyboardInterrupt
    runs.Progress.update = boom
    try:
        CliRunner().invoke(main, ARGS + ["-o", str(out), "--chunk", "50"])
    finally:
        runs.Progress.update = orig
    assert part.exists()
    r = CliRunner().invoke(main, ARGS + ["-o", str(out), "--lr", "0.1"])
    assert r.exit_code == 1 and "lr" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("args,needle", [
    (["--hidden", "0"], "--hidden"), (["--lr", "0"], "--lr"), (["--steps", "0"], "--steps"),
    (["--act", "swish"], "--act"), (["--opt", "lbfgs"], "--opt"), (["--init", "cauchy:1"], "init"),
    (["--dtype", "float16"], "dtype"), (["--dataset", "nope"], "nope"), (["--chunk", "0"], "--chunk"),
    (["--shard", "3/2"], "shard"),
])
def test_nonsense_options_exit_2_with_one_line(args, needle, tmp_path):
    r = CliRunner().invoke(main, ARGS + ["-o", str(tmp_path / "x.h5")] + args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.output


@pytest.mark.parametrize("content,needle", [
    ("x0,x1,y\n0,0,0\n1,nan,1\n", "NaN"),
    ("x0,x1,y\n0,0,0\n1,1,0\n", "class"),
    ("x0,x1,y\n0,0,0\n1,1,2\n", "0 or 1"),
    ("x0,x1,y\n0,0,0\n1,1\n", "row"),
    ("x0,x1,x2,y\n0,0,0,0\n1,1,1,1\n", "dimension"),
])
def test_malformed_data_files_exit_2(content, needle, tmp_path):
    f = tmp_path / "d.csv"
    f.write_text(content)
    r = CliRunner().invoke(main, ARGS + ["--dataset", str(f), "-o", str(tmp_path / "x.h5")])
    assert r.exit_code == 2, r.output
    assert needle.lower() in r.output.lower() and len(r.output.strip().splitlines()) == 1


def test_user_csv_dataset_trains(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("x0,x1,y\n0,0,0\n1,1,0\n0,1,1\n1,0,1\n")
    r = run(ARGS + ["--dataset", str(f), "-o", str(tmp_path / "x.h5")])
    assert r.exit_code == 0 and "4 points" in r.output


def test_shards_merge_to_the_single_run(tmp_path):
    single = tmp_path / "single.h5"
    assert run(ARGS + ["-o", str(single)]).exit_code == 0
    shards = []
    for i in range(3):
        p = tmp_path / f"s{i}.h5"
        assert run(ARGS + ["-o", str(p), "--shard", f"{i}/3", "--chunk", "50"]).exit_code == 0
        shards.append(str(p))
    merged = tmp_path / "merged.h5"
    assert run(["merge", *shards, "-o", str(merged)]).exit_code == 0
    from badminima.engine.store import diff_files
    assert diff_files(str(single), str(merged)) == []
    # inputs that do not merge are bad input (exit 2), an output that exists a refusal to act (exit 1)
    other = tmp_path / "other.h5"
    assert run(ARGS + ["-o", str(other), "--shard", "2/3", "--seed", "9"]).exit_code == 0
    for inputs, says in (([shards[0], shards[1]], "are in no input (incomplete shards)"),
                         ([shards[0], shards[1], shards[1], str(single)], "overlaps"),
                         ([shards[0], shards[1], str(other)], "are not shards of one configuration")):
        r = run(["merge", *inputs, "-o", str(tmp_path / "m2.h5")])
        assert r.exit_code == 2 and says in r.output and r.output.count("\n") == 1, r.output
    r = run(["show", shards[0], str(single)])
    assert r.exit_code == 2 and "both hold networks" in r.output, r.output
    r = run(["merge", *shards, "-o", str(single)])
    assert r.exit_code == 1 and "exists and is not the merge of these files" in r.output, r.output
    assert not (tmp_path / "m2.h5").exists()


def test_default_chunks_shrink_for_long_budgets():
    """A stop signal is honoured between chunks, so a default chunk holds a bounded amount of work: fewer
    networks (candidates) where the budget (iterations) is long, never below a block per thread."""
    from badminima.engine.search.blocks import LANES
    from badminima.engine.search.run import SEARCH_CHUNK, SearchConfig, default_search_chunk
    from badminima.engine.train.run import CHUNK_WORK, DEFAULT_CHUNK, MIN_CHUNK, default_chunk
    from types import SimpleNamespace as Cfg          # default_chunk reads the budget and the device
    chunks = {steps: default_chunk(Cfg(steps=steps, device="cpu")) for steps in (10_000, 10**6, 10**8)}
    assert chunks == {10_000: DEFAULT_CHUNK, 10**6: CHUNK_WORK // 10**6, 10**8: MIN_CHUNK}
    assert default_chunk(Cfg(steps=10**8, device="cuda")) > DEFAULT_CHUNK
    assert default_search_chunk(SearchConfig(points=7)) == SEARCH_CHUNK
    assert default_search_chunk(SearchConfig(points=7, iters=10**6)) == LANES
