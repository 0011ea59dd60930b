"""Where compiled code is cached, and what invalidates it (engine/core/jit.py)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import badminima
from badminima.engine.core import jit

PACKAGE = Path(badminima.__file__).resolve().parent


def _user_cache_env(folder) -> dict:
    """The environment of a subprocess whose user cache is `folder` (caching on, Numba's default place)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(folder)}
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("BADMINIMA_NO_CACHE", None)
    return env


def test_package_functions_cache_under_the_user_cache_not_the_package(tmp_path):
    """An installed package must not gain files (they outlive `pip uninstall` and, as a bare folder in
    site-packages, hide a later editable install)."""
    env = _user_cache_env(tmp_path)
    # a small module with cached functions, compiled from scratch into the empty user cache
    code = ("import numpy as np\n"
            "from badminima.engine.core import model\n"
            "th = np.zeros(9); x = np.zeros((4, 2)); y = np.zeros(4)\n"
            "model.evaluate(th, x, y, 2, 2, 0, 0)\n")
    before = {p for p in PACKAGE.rglob("*.nbi")}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    cached = list((tmp_path / "badminima" / "numba").rglob("model.evaluate-*.nbi"))
    assert len(cached) == 1, sorted(p.name for p in (tmp_path / "badminima").rglob("*"))
    assert {p for p in PACKAGE.rglob("*.nbi")} == before


def test_a_damaged_cache_entry_is_compiled_again(tmp_path):
    """A truncated or garbled index or data file (a disk fault, a stray write) is a cache miss for the
    package's functions, said in a note: the function compiles, the run goes on, and the new entry
    replaces the damaged one; Numba's own loader would raise from pickle."""
    import pickle
    env = _user_cache_env(tmp_path)
    code = ("import numpy as np\n"
            "from badminima.engine.core import model\n"
            "th = np.linspace(-1, 1, 9); x = np.arange(8.0).reshape(4, 2); y = np.array([0., 1, 1, 0])\n"
            "print(repr(model.evaluate(th, x, y, 2, 2, 0, 0)))\n")

    def run():
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout, "damaged entries of compiled code" in out.stderr

    want, noted = run()
    assert not noted
    [index] = (tmp_path / "badminima" / "numba").rglob("model.evaluate-*.nbi")
    [data] = index.parent.glob(index.name[:-len("nbi")] + "*.nbc")
    for path, damage in ((index, index.read_bytes()[:40]), (data, b"\x80\x05garbage")):
        path.write_bytes(damage)
        assert run() == (want, True)
        with open(index, "rb") as f:        # a whole index again, naming the data file
            pickle.load(f)
            assert data.name in pickle.loads(f.read())[1].values()


def test_a_cfunc_caches_like_the_jitted_functions():
    """The search's Jacobi sweep is a cfunc (engine/core/jit.cfunc): its cache entry is found like those
    of the jitted functions of its folder (the package's locator, or Numba's under NUMBA_CACHE_DIR), in
    the same place, keyed on the sources it may call."""
    from badminima.engine.search import jacobi9, joint_soa
    if not jit.CACHE:
        pytest.skip("BADMINIMA_NO_CACHE is set: nothing is cached")
    cache, jitted = jacobi9.sweep_c()._cache, joint_soa._jacobi._cache
    assert type(cache._impl.locator) is type(jitted._impl.locator)
    assert cache._cache_path == jitted._cache_path
    if "NUMBA_CACHE_DIR" not in os.environ:
        assert isinstance(cache._impl.locator, jit._PackageCacheLocator)
        assert Path(cache._cache_path).is_relative_to(jit.cache_root() / "numba")


def test_a_function_is_recompiled_when_a_file_it_may_call_changes(tmp_path, monkeypatch):
    """Numba's own key is the function's file; the package's also covers engine/core and the file's
    folder, whose functions a jitted function may inline."""
    from badminima.engine.search import joint_soa

    def stamp():
        loc = jit._PackageCacheLocator.from_function(joint_soa._reortho.py_func, joint_soa.__file__)
        return loc.get_source_stamp()

    first = stamp()
    assert stamp() == first
    real = jit.sources_digest
    search = Path(joint_soa.__file__).resolve().parent
    core = Path(jit.__file__).resolve().parent
    for edited in (search, core):
        monkeypatch.setattr(jit, "sources_digest", lambda f, e=edited: "edited" if Path(f) == e else real(f))
        assert stamp() != first, edited
    monkeypatch.setattr(jit, "sources_digest", real)
    assert stamp() == first


def test_sources_digest_follows_contents(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    first = jit.sources_digest.__wrapped__(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert jit.sources_digest.__wrapped__(tmp_path) != first
    (tmp_path / "a.py").write_text("x = 1\n")
    assert jit.sources_digest.__wrapped__(tmp_path) == first


def test_functions_outside_the_package_keep_numbas_own_locators(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text("def f():\n    return 1\n")
    ns = {}
    exec(compile(src.read_text(), str(src), "exec"), ns)
    assert jit._PackageCacheLocator.from_function(ns["f"], str(src)) is None


def test_a_generated_module_is_imported_without_rendering_once_indexed(tmp_path, monkeypatch):
    """A warm run imports the written kernel module through the index; a lost module is rendered anew."""
    from badminima.engine.train import codegen
    monkeypatch.setenv("BADMINIMA_KERNEL_DIR", str(tmp_path))
    calls = []

    def render():
        calls.append(1)
        return "VALUE = 42\n"

    def load():
        monkeypatch.setattr(codegen, "_LOADED", {})      # as in a new process
        return codegen.import_generated("bm_test_module", render)

    assert load().VALUE == 42 and len(calls) == 1
    assert load().VALUE == 42 and len(calls) == 1        # the index names the file: no render
    for f in tmp_path.glob("bm_test_module_*.py"):
        f.unlink()
    assert load().VALUE == 42 and len(calls) == 2
    assert len(list(tmp_path.glob("bm_test_module_*.py"))) == 1
    for entry in (tmp_path / "index").iterdir():        # a garbled entry is a miss, not a wrong import
        entry.write_text("../elsewhere.py")
    assert load().VALUE == 42 and len(calls) == 3


def test_kernel_variants_share_the_cached_helpers(tmp_path):
    """A generated kernel passes its module constants to the package's cached functions as plain int64,
    not as Numba literals: otherwise each variant compiles (and caches) them again for its own values."""
    code = ("from badminima.engine.core import model, scratch\n"
            "from badminima.engine.data.datasets import load_dataset\n"
            "from badminima.engine.train.config import TrainConfig\n"
            "from badminima.engine.train.run import train_range\n"
            "ds = load_dataset('xor')\n"
            "for h in (1, 2):\n"
            "    cfg = TrainConfig(dataset='xor', dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=h,\n"
            "                      steps=2, networks=1, finish_horizon=0.0, dtype='float32').validate()\n"
            "    train_range(cfg, ds.x, ds.y, 0, 1, threads=1)\n"
            "print([len(f.signatures) for f in (scratch.lane_arrays, scratch.lane_state32, model.init_theta)])\n")
    # the kernels compile here (an empty kernel folder), so they type their calls of the helpers
    env = {**os.environ, "BADMINIMA_KERNEL_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    assert out.stdout.split("\n")[-2] == "[1, 1, 1]", out.stdout


def test_a_damaged_generated_module_is_written_again(tmp_path, monkeypatch):
    """A generated module file that no longer holds the text its name's digest was made from (a
    truncated write, a damaged disk) is a miss: rendered and written again, not imported as it is."""
    from badminima.engine.train import codegen
    monkeypatch.setenv("BADMINIMA_KERNEL_DIR", str(tmp_path))
    text = '"""A test module."""\nX = 1\n'
    mod = codegen.import_generated("bm_test_damaged", lambda: text)
    path = Path(mod.__file__)
    codegen._LOADED.pop("bm_test_damaged")
    path.write_text(text[:10])                       # an unterminated docstring: a SyntaxError to import
    mod = codegen.import_generated("bm_test_damaged", lambda: text)
    assert mod.X == 1 and path.read_text() == text
    codegen._LOADED.pop("bm_test_damaged")


def test_no_writable_cache_folder_still_runs(tmp_path, monkeypatch, capfd):
    """Where the kernel folder cannot be written (here a file stands in its place) the generated module
    goes to a folder of this process, and Numba's last locator keeps compiled code there: the run works,
    compiling as on a first run, and says so once."""
    from badminima.engine.train import codegen
    (tmp_path / "file").write_text("in the way\n")
    monkeypatch.setenv("BADMINIMA_KERNEL_DIR", str(tmp_path / "file"))
    mod = codegen.import_generated("bm_test_scratch", lambda: "X = 2\n")
    assert mod.X == 2 and Path(mod.__file__).is_relative_to(jit.scratch_dir())
    codegen._LOADED.pop("bm_test_scratch")
    assert jit._LOCATORS._locator_classes[-1] is jit._ScratchCacheLocator
    from badminima.engine.core import model
    loc = jit._ScratchCacheLocator.from_function(model.evaluate.py_func, model.__file__)
    loc.ensure_cache_path()
    assert Path(loc.get_cache_path()).is_relative_to(jit.scratch_dir())
    # other code keeps Numba's own behaviour (no locator: its own error)
    assert jit._ScratchCacheLocator.from_function(test_no_writable_cache_folder_still_runs, __file__) is None


def test_the_scratch_folder_note_comes_once_per_command(tmp_path):
    """Without a writable cache folder the note is printed once, not again by each worker process the
    command starts (they inherit the mark), and it names both folders' variables."""
    code = ("import subprocess, sys\n"
            "from badminima.engine.core import jit\n"
            "jit.scratch_dir()\n"
            "subprocess.run([sys.executable, '-c', 'from badminima.engine.core import jit; jit.scratch_dir()'])\n")
    env = {k: v for k, v in os.environ.items() if k != "BADMINIMA_SCRATCH_NOTED"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("note: no writable cache folder (set NUMBA_CACHE_DIR, and BADMINIMA_KERNEL_DIR") == 1
