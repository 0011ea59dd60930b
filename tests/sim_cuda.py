"""The CUDA kernels under Numba's CUDA simulator, against the CPU kernels network by network.

Run by tests/test_cuda.py in a subprocess with NUMBA_ENABLE_CUDASIM=1 (the simulator must be chosen
before numba.cuda is first imported, so it cannot share a process with the rest of the suite); its
name keeps the outer pytest from collecting it.  Alone: NUMBA_ENABLE_CUDASIM=1 python -m pytest -q
tests/sim_cuda.py.  The simulator runs every CUDA thread as Python code: sizes stay tiny.
"""
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from badminima.engine.core.model import init_many
from badminima.engine.core.names import INIT_LAWS
from badminima.engine.core.outcomes import DIVERGED, SOLVED
from badminima.engine.data.datasets import load_dataset
from badminima.engine.train.run import hyper, train_range

from conftest import make_cfg

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 (tests/test_cuda.py runs this file so)", allow_module_level=True)

from badminima.engine.cuda.codegen import load_kernel_module  # noqa: E402
from badminima.engine.cuda.launch import simulated, submit  # noqa: E402

# the simulator computes with NumPy scalars, which warn where a GPU silently overflows to inf
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


def test_the_simulator_is_on():
    assert simulated()


def _dataset(n: int, seed: int = 3):
    """A 2-d classification dataset of n points (n > 16: the kernel's loop over shared memory)."""
    from types import SimpleNamespace
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return SimpleNamespace(name=f"rand{n}", x=X, y=(X[:, 0] * X[:, 1] > 0).astype(float), kind="classification",
                           fingerprint="test", n=n, d=2)


@pytest.mark.parametrize("law", ["normal", "uniform", "glorot", "he"])
@pytest.mark.parametrize("zero_bias", [False, True])
def test_kernel_starts_are_the_cpu_starts_bit_for_bit(law, zero_bias):
    """With a budget of 0 steps the kernel returns the start it drew from (seed, index): init_theta's
    values exactly, for a range (start offset 5) and for a list of network indices."""
    ds = load_dataset("xor")
    for dtype in ("float64",):
        mod = load_kernel_module(2, 3, "sigmoid", "xent", "gd", dtype, 4)
        cfg = make_cfg(ds, hidden=3, steps=1)
        law_code = INIT_LAWS[law]
        for ids in (np.zeros(0, np.int64), np.array([7, 2, 1000003], np.int64)):
            n = 6 if ids.size == 0 else ids.size
            th0 = np.zeros((0, 13))
            res = submit(mod, ds.x, ds.y, 42, 5, n, ids, th0, law_code, 1.5, zero_bias, hyper(cfg, ds.x), 0, 16,
                         threads=2).result()
            want = (init_many(42, 5, 5 + n, 2, 3, law_code, 1.5, zero_bias) if ids.size == 0 else
                    np.concatenate([init_many(42, int(i), int(i) + 1, 2, 3, law_code, 1.5, zero_bias) for i in ids]))
            assert np.array_equal(res[3], want)
            assert np.all(res[1] == 0)


def _compare(cfg, ds, n, ids=None, rtol=1e-9, atol=1e-12):
    """train_range on both devices: the same outcome codes, step counts and first solved steps, and
    close weights wherever they are finite."""
    from dataclasses import replace
    cpu = train_range(cfg, ds.x, ds.y, 0, n, ids=ids, keep_init=True)
    gpu = train_range(replace(cfg, device="cuda"), ds.x, ds.y, 0, n, ids=ids, keep_init=True)
    assert np.array_equal(gpu["init_weights"], cpu["init_weights"])
    for key in ("index", "optimizer_outcome", "outcome", "steps", "solved_at"):
        assert np.array_equal(gpu[key], cpu[key]), (key, gpu[key], cpu[key])
    fin = np.isfinite(cpu["weights"])
    assert np.array_equal(fin, np.isfinite(gpu["weights"]))
    np.testing.assert_allclose(gpu["weights"][fin], cpu["weights"][fin], rtol=rtol, atol=atol)
    return cpu, gpu


@pytest.mark.parametrize("act,opt,dtype,init", [("sigmoid", "gd", "float64", "normal:1"),
                                                ("sigmoid", "gd", "float32", "uniform:1"),
                                                ("relu", "adam", "float64", "glorot"),
                                                ("relu", "adam", "float32", "normal:1"),
                                                ("tanh", "sgd", "float64", "he")])
def test_xor_matches_the_cpu_network_by_network(act, opt, dtype, init):
    ds = load_dataset("xor")
    lr = {"gd": 0.5, "adam": 0.05, "sgd": 0.5}[opt]
    cfg = make_cfg(ds, hidden=2, activation=act, optimizer=opt, lr=lr, steps=120, dtype=dtype, init=init,
                   networks=9, finish_horizon=0)
    f32 = dtype == "float32"
    _compare(cfg, ds, 9, rtol=1e-4 if f32 else 1e-9, atol=1e-4 if f32 else 1e-12)


def test_networks_by_index_with_host_starts_match_the_cpu():
    """A list of network indices (as the finality check trains) with a normal law, whose starts the
    host draws for the GPU."""
    ds = load_dataset("xor")
    cfg = make_cfg(ds, hidden=2, steps=40, networks=8, finish_horizon=0)
    cpu, gpu = _compare(cfg, ds, 3, ids=np.array([3, 0, 7], np.int64))
    assert list(gpu["index"]) == [3, 0, 7]


def test_certified_early_stops_match_the_cpu():
    """Networks that the finality certificate stops before their budget stop at the same step."""
    ds = load_dataset("xor")
    cfg = make_cfg(ds, hidden=2, lr=2.0, steps=3000, init="uniform:3", networks=8, finish_horizon=0)
    cpu, gpu = _compare(cfg, ds, 3, ids=np.array([0, 5, 1], np.int64))
    assert list(cpu["steps"]) == [2240, 2368, 3000] and list(gpu["optimizer_outcome"][:2]) == [SOLVED, SOLVED]


def test_regression_divergence_and_refill_match_the_cpu():
    """ReLU regression at a large step: some networks diverge and stop at their first block's test
    (step 15) while the rest run their whole budget; with 4 threads for 12 networks every thread
    takes several, refilled as they stop."""
    ds = load_dataset("relu_d1")
    cfg = make_cfg(ds, hidden=2, activation="relu", lr=0.5, steps=100, networks=12, finish_horizon=0)
    cpu, gpu = _compare(cfg, ds, 12)
    assert np.sum(gpu["optimizer_outcome"] == DIVERGED) == 3 and sorted(set(gpu["steps"])) == [15, 100]


@pytest.mark.parametrize("name,act,h", [("xor", "sigmoid", 2), ("xor", "relu", 3), ("relu_d1", "relu", 2)])
def test_classification_and_finisher_on_the_gpu_match_the_cpu(name, act, h):
    """The classification's and the finisher's CUDA kernels (engine/cuda/exact.py) on the CPU's end states
    of short runs: the same outcomes, losses, accuracies, gradient norms and lambda_min as classify, and
    the same verdicts, iterations, losses, lambda_min and end points as finish_many, on the CPU's threads
    (under the simulator both run the same compiled code), with 4 threads for more networks than that
    and only the networks the optimizer left unresolved finished; a train_range on the GPU uses both."""
    from dataclasses import replace
    from badminima.engine.core.flow import MAX_ITER, STALL
    from badminima.engine.core.names import ACTIVATIONS, LOSSES
    from badminima.engine.cuda.exact import finish_cuda
    from badminima.engine.train.finish import finish_many
    from badminima.engine.train.run import _classified, flow_time
    ds = load_dataset(name)
    X, y = np.array(ds.x), np.array(ds.y)   # writable, as outcomes() hands them over: the signatures cached
    cfg = make_cfg(ds, hidden=h, activation=act, lr=0.5, steps=200, networks=24)
    end = train_range(replace(cfg, finish_horizon=0), ds.x, ds.y, 0, 24)
    raw = np.where(end["steps"] < cfg.steps, end["optimizer_outcome"], 6).astype(np.int8)
    cpu_cls = _classified(cfg, end["weights"], raw, X, y)
    gpu_cls = _classified(replace(cfg, device="cuda"), end["weights"], raw, X, y)
    for key in cpu_cls:
        assert np.array_equal(cpu_cls[key], gpu_cls[key], equal_nan=True), key
    assert np.array_equal(cpu_cls["outcome"], end["outcome"])
    todo = np.isin(end["outcome"], (4, 6))
    assert todo.sum() > 4
    res = []
    for run in (finish_many, finish_cuda):
        outs = (np.full(end["weights"].shape, np.nan), end["outcome"].copy(), np.full(24, -1, np.int32),
                np.full(24, np.nan), np.full(24, np.nan))
        run(end["weights"], todo, cfg.finish_horizon * flow_time(cfg), X, y, ds.d, h, ACTIVATIONS[act], LOSSES[cfg.loss], cfg.gtol, cfg.xtol,
            cfg.solve_tol, cfg.wmax, cfg.drift_gtol, cfg.drift_wmin, cfg.eig_tol, MAX_ITER, STALL, *outs)
        res.append(outs)
    for a, b in zip(*res):
        assert np.array_equal(a, b, equal_nan=True)
    assert np.all(res[1][2][todo] >= 0) and np.all(res[1][2][~todo] == -1)
    assert len(set(res[1][1][todo])) > (name == "xor")   # XOR: several verdicts, not one repeated
    gpu = train_range(replace(cfg, device="cuda"), ds.x, ds.y, 0, 24)
    assert np.array_equal(gpu["finish_iters"] >= 0, todo)


def test_work_counter_refills_every_thread():
    """2 threads, 12 networks: each thread draws networks until the counter passes the end, and every
    network lands at its own index whatever thread trained it."""
    ds = load_dataset("relu_d1")
    cfg = make_cfg(ds, hidden=2, activation="relu", lr=0.5, steps=100, networks=12, finish_horizon=0)
    mod = load_kernel_module(1, 2, "relu", "mse", "gd", "float64", ds.n)
    th0 = init_many(cfg.seed, 0, 12, 1, 2, 0, 1.0, False)
    p = submit(mod, ds.x, ds.y, cfg.seed, 0, 12, np.zeros(0, np.int64), th0, 0, 1.0, False, hyper(cfg, ds.x), 100, 16,
               threads=2)
    code, steps, first, theta = p.result()
    assert p.counter.copy_to_host()[0] == 12 + p.threads and p.threads == 2
    cpu = train_range(cfg, ds.x, ds.y, 0, 12)
    assert np.array_equal(steps, cpu["steps"])


def test_loop_over_shared_memory_matches_the_cpu():
    """A 20-point dataset: the kernel loops over the points in shared memory (no unrolling)."""
    ds = _dataset(20)
    cfg = make_cfg(ds, hidden=2, lr=0.5, steps=40, networks=5, finish_horizon=0)
    _compare(cfg, ds, 5)


def test_cli_train_on_cuda_shards_merge_and_resume(tmp_path, monkeypatch):
    """`train --device cuda`: the file records the device; shards merged and an interrupted run
    resumed give the one-process file's results."""
    from badminima.cli import main
    from badminima.engine.store import open_results
    from conftest import interrupt_shard
    run = ["train", "-n", "10", "--steps", "30", "--device", "cuda", "--finish-horizon", "0"]
    r = CliRunner().invoke(main, [*run, "-q", "--chunk", "4", "-o", str(tmp_path / "one.h5")])
    assert r.exit_code == 0, r.output
    for i in range(2):
        r = CliRunner().invoke(main, [*run, "-q", "--chunk", "3", "--shard", f"{i}/2", "-o", str(tmp_path / f"s{i}.h5")])
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["merge", str(tmp_path / "s0.h5"), str(tmp_path / "s1.h5"), "-o", str(tmp_path / "m.h5")])
    assert r.exit_code == 0, r.output
    interrupt_shard(monkeypatch, run, "0/1", tmp_path / "res.h5", chunk=4)
    r = CliRunner().invoke(main, [*run, "-q", "--chunk", "4", "--shard", "0/1", "-o", str(tmp_path / "res.h5")])
    assert r.exit_code == 0, r.output
    one = open_results(str(tmp_path / "one.h5"))
    assert one.cell_config("main")["device"] == "cuda" and one.config["device"] == "cuda"
    want = one.cell("main")
    for name in ("m.h5", "res.h5"):
        got = open_results(str(tmp_path / name)).cell("main")
        for k in want:
            assert np.array_equal(got[k], want[k], equal_nan=True), (name, k)


def test_python_api_and_table1_take_the_device(tmp_path):
    import badminima as bm
    from badminima.engine.store import open_results
    res = bm.train(dataset="xor", networks=5, steps=20, device="cuda", finish_horizon=0)
    assert res.config()["device"] == "cuda" and sum(res.counts().values()) == 5
    out = bm.table1(networks=1, steps=3, device="cuda", check_final=0, claims=False, output=str(tmp_path / "t.h5"))
    stored = open_results(out["path"])
    assert stored.config["protocol"]["device"] == "cuda"
    assert all(stored.cell_config(c)["device"] == "cuda" for c in stored.cells)


if __name__ == "__main__":
    sys.exit(pytest.main(["-q", __file__]))
