"""`badminima compile` and the progress line."""
import os
from pathlib import Path
import subprocess
import sys

import pytest
from click.testing import CliRunner

import badminima

from badminima.cli import main
from badminima.engine.train.progress import Progress
from conftest import survivors


def test_compile_warms_the_named_variants(tmp_path, monkeypatch):
    # full-batch kernels: one specialized to 4 points (XOR) and one for any size; SGD: one.  An empty
    # cache: all three are compiled (in worker processes), then a rerun finds them cached.  Variants the
    # suite does not load elsewhere (with -n 0 this process would hold their modules already)
    monkeypatch.setenv("BADMINIMA_KERNEL_DIR", str(tmp_path))
    args = ["compile", "--hidden", "1", "--act", "tanh", "--opt", "gd,sgd", "--sizes", "4", "--dtype", "float64"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "3 kernel variants ready (3 compiled, 0 already cached)" in r.stdout
    assert "gd float64 4 points" in r.stderr and "gd float64 any size" in r.stderr and "sgd" in r.stderr
    assert "compiling kernels for 3 variants" in r.stderr and "compiled 3/3" in r.stderr
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0 and "(0 compiled, 3 already cached)" in r.stdout


def test_compile_workers_build_only_the_kernel_and_the_caller_the_rest(tmp_path):
    """A worker compiles its variant's kernel alone; the classification and finisher, the same for every
    variant, are compiled once by the caller (warm_outcomes), not once per worker process."""
    code = ("from badminima.engine.core.classify import classify\n"
            "from badminima.engine.train.finish import finish_claimed\n"
            "from badminima.engine.train.precompile import Variant, compile_variant, warm_outcomes\n"
            "v = Variant(2, 1, 'sigmoid', 'xent', 'gd', 'float64', 4)\n"
            "compile_variant(v)\n"
            "print(len(classify.signatures), len(finish_claimed.signatures))\n"
            "warm_outcomes(v)\n"
            "print(len(classify.signatures), len(finish_claimed.signatures))\n")
    env = {**os.environ, "BADMINIMA_KERNEL_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    assert out.stdout.split("\n")[:2] == ["0 0", "1 1"], out.stdout


def test_compile_defaults_to_the_paper_dataset_sizes():
    from badminima.engine.train.warmup import paper_sizes
    assert paper_sizes(2) == [4, 10] and paper_sizes(1) == [5, 6]


def test_compile_rejects_nonsense():
    r = CliRunner().invoke(main, ["compile", "--hidden", "two"])
    assert r.exit_code == 2 and "integers" in r.output
    r = CliRunner().invoke(main, ["compile", "--act", "swish", "--hidden", "2"])
    assert r.exit_code == 2 and "choose from sigmoid, relu, tanh" in r.output
    r = CliRunner().invoke(main, ["compile", "--hidden", "2", "--sizes", "1"])
    assert r.exit_code == 2 and "at least 2" in r.output


def test_progress_line_reports_done_rate_and_time_left():
    p = Progress(1000, enabled=False)
    p.t0 = 100.0
    p.idle(5.0)             # waiting for kernels to compile: left out of the rate and the time left
    # the first chunk carries the start-up (kernels loaded or compiled): no rate from it alone ...
    p.update(250)
    assert p.line(110.0) == "250/1000 networks (25.0%), starting"
    # ... then the rate from there on
    p.first = (108.0, 250)
    p.update(200)
    assert p.line(112.0) == "450/1000 networks (45.0%), 50/s, 11 s left"
    p.first = None          # a progress without that first point: the rate from the start, less the wait
    assert p.line(114.0).endswith("50/s, 11 s left")
    p.floor = lambda: 40.0  # kernels still compiling for about 40 s: the work cannot end before
    assert p.line(114.0).endswith("50/s, 40 s left")
    p.floor = lambda: float("inf")
    assert p.line(114.0).endswith("50/s, -")
    p.floor = None
    # the compiler's own estimate, which a training run's progress takes as that floor
    import time
    from badminima.engine.train.precompile import Precompiler
    with Precompiler([], progress=False) as pre:
        assert pre.seconds_left() == 0.0
        pre.total, pre.t0 = 4, time.monotonic() - 10.0
        assert pre.seconds_left() == float("inf")
        pre.done = 1
        assert 30.0 <= pre.seconds_left() < 31.0
    p.done = 1000
    assert p.line(115.0).startswith("1000/1000") and p.line(115.0).endswith("100/s, 0 s left")


def test_a_ctrl_c_that_a_library_swallows_is_not_lost():
    """Python raises a SIGINT's KeyboardInterrupt wherever the main thread runs Python code; inside a
    weakref callback (h5py frees its objects through one) the interpreter drops it, printing "Exception
    ignored" and a traceback.  The handler of engine/train/interrupt.py records the signal, the drop is
    silent, and the next safe point (Progress.update) raises."""
    import sys
    import signal
    import time
    import weakref

    from badminima.engine.train import interrupt

    class Obj:
        pass

    def callback(_):                     # a SIGINT arriving while a library's callback runs
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)                 # the handler runs here, inside the callback, and is swallowed

    old, old_hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    # Python's own handler, whatever this process inherited (a background job starts with SIGINT
    # ignored, which install() rightly keeps)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    dropped = []
    sys.unraisablehook = lambda info: dropped.append(info.exc_type)     # what the interpreter would print
    interrupt.install()
    try:
        obj = Obj()
        ref = weakref.ref(obj, callback)
        del obj                          # runs the callback: the KeyboardInterrupt is dropped ...
        assert ref() is None and interrupt.received()
        assert dropped == []             # ... silently: no "Exception ignored" and traceback
        with pytest.raises(KeyboardInterrupt):
            Progress(10, enabled=False).update(1)       # ... and raised at the next safe point
        interrupt.install()                             # a new command starts with a clean record
        Progress(10, enabled=False).update(1)
    finally:
        signal.signal(signal.SIGINT, old)
        sys.unraisablehook = old_hook


def test_an_error_raised_while_unwinding_from_ctrl_c_exits_130(tmp_path, monkeypatch):
    """h5py turns a KeyboardInterrupt raised inside some of its callbacks into a SystemError: after a
    Ctrl-C any error is reported as the interruption it is (exit 130, one line)."""
    from badminima.engine.train import cells as runs
    from badminima.engine.train import interrupt

    def boom(self, n):
        interrupt._received.set()
        raise SystemError("<cyfunction FastRLock.__exit__> returned a result with an exception set")
    monkeypatch.setattr(runs.Progress, "update", boom)
    r = CliRunner().invoke(main, ["train", "--dataset", "xor", "-n", "64", "--steps", "10", "-q", "-o",
                                  str(tmp_path / "r.h5")])
    assert not interrupt.received()                     # reported, then forgotten
    assert r.exit_code == 130 and r.stderr.strip().splitlines() == [
        "error: interrupted; committed results are kept (rerun the same command to resume)"], r.stderr


def test_a_ctrl_c_names_what_a_rerun_does(tmp_path, monkeypatch):
    """Ctrl-C in a command that resumes says so; in one that only reads and writes whole outputs
    (report, plot, show, merge, ...) it says that nothing was left half-written, not "rerun to resume"."""
    from badminima.analysis import report as rep
    out = tmp_path / "r.h5"
    assert CliRunner().invoke(main, ["train", "-n", "64", "--steps", "10", "-q", "-o", str(out)]).exit_code == 0

    def stop(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(rep, "_write", stop)
    r = CliRunner().invoke(main, ["report", str(out), "--out-dir", str(tmp_path / "rep"), "-q"])
    assert r.exit_code == 130 and r.stderr.strip().splitlines() == [
        "error: interrupted; no output was left half-written"], r.stderr


def test_pool_workers_exit_with_the_process_that_started_them(tmp_path):
    """The kernel precompiler's and the search's worker processes (engine/train/threads.process_pool)
    exit when their parent is SIGKILLed mid-run; a plain ProcessPoolExecutor's would wait for work for
    ever."""
    import signal
    import subprocess
    import sys
    import threading
    import time
    code = ("import os, time\n"
            "from badminima.engine.train.threads import process_pool\n"
            "pool = process_pool(2)\n"
            "futs = [pool.submit(time.sleep, 0.5) for _ in range(2)]\n"
            "print(*pool._processes, flush=True)\n"
            "time.sleep(600)\n")

    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, p.kill)         # the read below never hangs the suite
    watchdog.start()
    try:
        pids = [int(t) for t in p.stdout.readline().split()]
        assert len(pids) == 2
        time.sleep(1)                   # the workers idle, waiting for work
        assert all(os.path.exists(f"/proc/{w}") for w in pids), "workers ended before their parent"
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert not survivors(pids), "pool workers outlived the killed process"
    finally:
        watchdog.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()


def test_pool_workers_do_not_run_the_callers_script_again(tmp_path):
    """A spawned child imports the parent's main script again unless it is guarded by `if __name__ ==
    "__main__"`; a user's script calling bm.train (whose first run compiles in such workers) rarely is.
    process_pool's workers import only the package."""
    import subprocess
    import sys
    script = tmp_path / "user_script.py"
    script.write_text("import sys, threading, time\n"
                      "print('script body', flush=True)\n"
                      "from badminima.engine.train.threads import process_pool\n"
                      "marker, seen = 1, []\n"
                      "def look():                  # another thread sees the script's module all along\n"
                      "    t = time.monotonic() + 1\n"
                      "    while time.monotonic() < t:\n"
                      "        seen.append(getattr(sys.modules['__main__'], 'marker', None))\n"
                      "th = threading.Thread(target=look); th.start()\n"
                      "pool = process_pool(2)\n"
                      "print(sorted(pool.map(abs, range(-4, 0))), flush=True)\n"
                      "pool.shutdown(); th.join()\n"
                      "print(set(seen), flush=True)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ["script body", "[1, 2, 3, 4]", "{1}"]


_SECOND_SIGNAL = """
import signal, sys
from badminima.engine.train import interrupt
interrupt.install()
seen = []

def tracer(frame, event, arg):          # a second SIGTERM at every line of the first handler's set()
    if event == "call" and frame.f_code.co_name == "set" and not seen:
        def line(frame, event, arg):
            if event == "line":
                seen.append(frame.f_lineno)
                try:
                    interrupt._handler(signal.SIGTERM, frame)
                except KeyboardInterrupt:
                    pass
            return line
        return line
    return None

sys.settrace(tracer)
try:
    interrupt._handler(signal.SIGTERM, None)
except KeyboardInterrupt:
    pass
sys.settrace(None)
print(len(seen), interrupt.signal_received().name)
"""


def test_a_second_signal_inside_the_first_handler_never_blocks():
    """A stopping signal arriving while the handler of the first one records it (timeout and scancel
    signal the process, then its group) must not block: the record takes no lock."""
    p = subprocess.run([sys.executable, "-c", _SECOND_SIGNAL], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines, name = p.stdout.split()
    assert int(lines) >= 1 and name == "SIGTERM"


def test_a_dying_pool_after_a_signal_is_silent(monkeypatch):
    """The InvalidStateError a process pool's manager thread raises when the signal's process group also
    killed its workers prints nothing once a signal arrived; other thread errors, and that one without
    a signal, go to the previous hook."""
    import threading
    from concurrent.futures import InvalidStateError
    from badminima.engine.train import interrupt
    seen = []
    monkeypatch.setattr(interrupt, "_previous_threads", lambda args: seen.append(args.exc_type))
    args = lambda exc: threading.ExceptHookArgs((exc, exc(), None, None))      # noqa: E731
    interrupt._thread_exception(args(InvalidStateError))
    interrupt._received.set()
    try:
        interrupt._thread_exception(args(InvalidStateError))
        interrupt._thread_exception(args(RuntimeError))
    finally:
        interrupt.clear()
    assert seen == [InvalidStateError, RuntimeError]


def _run(cmd: str, cwd) -> subprocess.CompletedProcess:
    """A shell command line with `badminima` as this Python's module."""
    return subprocess.run(["bash", "-c", cmd.replace("badminima", f"{sys.executable} -m badminima")], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_closed_or_full_standard_streams_and_odd_environments(tmp_path):
    """A closed or full stderr never stops a run (progress is best effort, and no file takes fd 2); a
    reader that leaves early (`| head`) ends a command quietly with the SIGPIPE status; NUMBA_NUM_THREADS
    below 1 is one line."""
    from badminima.engine.store import diff_files
    train = "badminima train -n 64 --steps 20 -o {} "
    for i, redirect in enumerate(("2>&-", "2>/dev/full", ">&- 2>&-")):
        p = _run(train.format(f"r{i}.h5") + redirect, tmp_path)
        assert p.returncode == 0, p.stderr
        assert not (tmp_path / f"r{i}.h5.part").exists() and diff_files(str(tmp_path / "r0.h5"), str(tmp_path / f"r{i}.h5")) == []
    for args in (["show", "r0.h5", "--json", "-"], ["--help"], ["train", "--help"], ["--version"]):
        with subprocess.Popen([sys.executable, "-m", "badminima", *args], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
            p.stdout.close()                        # the reader is gone before the command writes
            assert p.wait(timeout=120) == 141 and p.stderr.read() == "", args
    # a full stdout is named as such (not "disk full": no file of the command failed), after the work
    p = _run(train.format("full.h5") + ">/dev/full", tmp_path)
    assert p.returncode == 1 and p.stderr.strip().splitlines()[-1] == \
        "error: cannot write to standard output: No space left on device" and (tmp_path / "full.h5").exists()
    for value in ("0", "abc", "", "1_0", "2147483648"):    # Numba: import error, warnings, a failure mid-run
        p = _run(f"NUMBA_NUM_THREADS='{value}' " + train.format("t.h5"), tmp_path)
        assert p.returncode == 2 and p.stderr.strip().splitlines() == [
            f"error: NUMBA_NUM_THREADS={value}: the number of threads must be an integer in 1-4096 (or unset: one "
            f"per core)"], p.stderr


def test_names_the_shell_and_result_files_cannot_take(tmp_path, monkeypatch):
    """An output name that is not valid UTF-8 is one line; such an input (a result file, a dataset) is
    read, and its name recorded escaped, never a traceback from h5py or a report half-made; printed
    commands quote the names they hold; an output over PATH_MAX is refused before any folder is made;
    --workers is clamped to the cores like --threads."""
    import shutil
    monkeypatch.chdir(tmp_path)
    run = lambda *a: CliRunner().invoke(main, list(a))          # noqa: E731
    r = run("train", "-n", "64", "--steps", "20", "-o", "-x y.h5")
    assert r.exit_code == 0 and "next: badminima report './-x y.h5' --out-dir report" in r.output
    for args in (["train", "-n", "64", "--steps", "20", "-o", "r\udcff.h5"], ["report", "./-x y.h5", "--out-dir", "r\udcff"]):
        r = run(*args)
        assert r.exit_code == 1 and r.stderr.strip().splitlines()[-1].endswith(
            "the name is not valid UTF-8, and result files, reports and scripts record paths as text; rename it"), \
            (args, r.output)
    assert sorted(os.listdir()) == ["-x y.h5"]
    shutil.copy("-x y.h5", "q\udcff.h5")
    shutil.copy(Path(badminima.__file__).parent / "data" / "xor.json", "x\udcff.json")
    for args in (["report", "q\udcff.h5", "--out-dir", "rr"], ["merge", "q\udcff.h5", "-o", "m.h5"],
                 ["train", "--dataset", "x\udcff.json", "-n", "64", "--steps", "20", "-o", "d.h5"]):
        r = run(*args)
        assert r.exit_code == 0, (args, r.output, r.exception)
    p = subprocess.run([sys.executable, "-m", "badminima", "show", "q*.h5"], capture_output=True, timeout=120,
                       env={**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"})
    assert p.returncode == 0 and p.stdout.startswith(b"q\\udcff.h5: complete"), p.stderr
    assert "q\\udcff.h5" in Path("rr/report.md").read_text()
    for p in ("m.h5", "d.h5", "q\udcff.h5"):
        os.remove(p)
    shutil.rmtree("rr")
    deep = "/".join(["d" * 200] * 25) + "/x.h5"                 # over PATH_MAX: refused before any folder is made
    r = run("train", "-n", "64", "--steps", "20", "-o", deep)
    assert r.exit_code == 1 and "the path is longer than the file system allows" in r.stderr
    assert len(r.stderr) < 400 and sorted(os.listdir()) == ["-x y.h5", "x\udcff.json"]
    # an output folder within PATH_MAX but too deep for the files made inside it: refused before any work
    near = os.path.join(*["d" * 200] * 19, "r" * (4000 - len(str(tmp_path)) - 19 * 201))
    for args in (["report", "./-x y.h5", "--out-dir", near], ["search", "-N", "7", "-k", "4", "--iters", "5",
                                                             "-o", "s.h5", "--found-dir", near]):
        r = run(*args)
        assert r.exit_code == 1 and "the path leaves no room for the files made inside it" in r.stderr, r.output
        assert len(r.stderr) < 400 and sorted(os.listdir()) == ["-x y.h5", "x\udcff.json"], args
    r = run("merge", "./-x y.h5", str(tmp_path / "-x y.h5"), "-o", "m.h5")      # one file named twice: merged once
    assert r.exit_code == 0 and "m.h5: the merge of 1 file\n" in r.output
    r = run("compile", "--hidden", "2", "--act", "sigmoid", "--opt", "gd", "--dtype", "float64", "--sizes", "4",
            "--workers", "999")
    assert r.exit_code == 0 and "note: --workers 999 is more than the" in r.stderr


def test_a_json_output_may_be_a_device_or_a_pipe(tmp_path, monkeypatch):
    """`--json` naming /dev/null, a named pipe (or a shell's `>(jq .)`) is written to directly, the same
    JSON as `--json -`, and /dev/stdout after the text printed there (a redirected stdout's file is
    not replaced); a figure or a result file there is still refused (no file to replace)."""
    import json
    import threading
    monkeypatch.chdir(tmp_path)
    run = lambda *a: CliRunner().invoke(main, list(a))          # noqa: E731
    assert run("train", "-n", "64", "--steps", "20", "-o", "r.h5", "-q").exit_code == 0
    want = json.loads(run("show", "r.h5", "--json", "-").output)
    r = run("show", "r.h5", "--json", os.devnull)
    assert r.exit_code == 0 and f"json: {os.devnull}" in r.output, r.output
    os.mkfifo("pipe")
    got = []
    reader = threading.Thread(target=lambda: got.append(Path("pipe").read_text()))
    reader.start()
    r = run("show", "r.h5", "--json", "pipe")
    reader.join(60)
    assert r.exit_code == 0 and json.loads(got[0]) == want and Path("pipe").exists()
    for args in (["plot", "losses", "r.h5", "--figure", os.devnull], ["train", "-n", "64", "-o", os.devnull]):
        r = run(*args)
        assert r.exit_code == 1 and "it exists and is not a regular file" in r.output, args
    # this process's own descriptor, redirected to a file: written after the text, not replacing it
    with open("out.txt", "w") as fh:
        p = subprocess.run([sys.executable, "-m", "badminima", "show", "r.h5", "--json", "/dev/stdout"], stdout=fh,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    text = Path("out.txt").read_text()
    assert p.returncode == 0 and text.startswith("r.h5: complete"), (p.stderr, text[:200])
    body = text[text.index("\n{") + 1:text.rindex("}") + 1]
    assert json.loads(body) == want and text.endswith("}\njson: /dev/stdout\n")
    p = subprocess.run([sys.executable, "-m", "badminima", "show", "r.h5", "--json", "/dev/fd/9"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and p.stderr.strip() == ("error: cannot write --json /dev/fd/9: it names descriptor 9, "
                                                      "which is not open"), p.stderr


def test_the_command_line_freezes_its_objects_before_the_interpreter_collects_them(tmp_path):
    """The last atexit step of a command (success or error) freezes the garbage collector's objects, so
    the interpreter's final collections skip what Numba made (bench_cold.py's warm row measures it; engine/train/gcpolicy.py)."""
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, flush=True))\n"
            "from badminima.cli import main\n"
            "sys.argv = ['badminima'] + sys.argv[1:]\n"
            "main()\n")
    for args, rc in ((["show", "--help"], 0), (["show", str(tmp_path / "none.h5")], 2)):
        p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == rc and p.stdout.rstrip().endswith("frozen True"), (p.stdout, p.stderr)


def test_ctrl_c_while_the_command_line_loads_is_one_line():
    """A Ctrl-C that lands while `badminima` is still importing its command line (its first ~0.1 s)
    ends it with the interrupt's one line and exit 130, not a traceback: the import raises here."""
    script = ("import sys, importlib.abc\n"
              "class Stop(importlib.abc.MetaPathFinder):\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name == 'badminima.cli':\n"
              "            raise KeyboardInterrupt\n"
              "sys.meta_path.insert(0, Stop())\n"
              "from badminima.__main__ import main\n"
              "main()\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 130 and r.stderr == "error: interrupted; no output was left half-written\n", r.stderr
