"""The GPU backend without a GPU: the CUDA kernels under Numba's CUDA simulator against the CPU
(tests/sim_cuda.py, in a subprocess), the generated sources, the one-line failure where no GPU is,
and CPU configurations unchanged by the new `device` field."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from badminima.engine.cuda.codegen import render
from badminima.engine.train.config import TrainConfig

from conftest import make_cfg

HERE = Path(__file__).resolve().parent


def _cuda_importable() -> bool:
    try:
        return importlib.util.find_spec("numba.cuda") is not None
    except ImportError:
        return False


@pytest.mark.skipif(not _cuda_importable(), reason="numba.cuda is not importable (pip install -e '.[test]' "
                                                   "installs numba-cuda, whose simulator these tests use)")
def test_cuda_kernels_under_the_simulator():
    """tests/sim_cuda.py in a fresh process with NUMBA_ENABLE_CUDASIM=1 (the simulator is chosen when
    numba.cuda is first imported, so it cannot run inside this process)."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", str(HERE / "sim_cuda.py")],
                       cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout, r.stdout[-2000:]


def test_kernels_compile_for_a_real_gpu():
    """Three variants compiled to sm_90 PTX by numba-cuda without a GPU (benchmarks/bench_gpu.py
    --ptx --quick; all 108 variants without --quick): the simulator runs Python, not CUDA."""
    r = subprocess.run([sys.executable, str(HERE.parent / "benchmarks" / "bench_gpu.py"), "--ptx", "--quick"],
                       cwd=HERE.parent, capture_output=True, text=True, timeout=900)
    if r.returncode == 3:
        pytest.skip(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.skipif(not _cuda_importable(), reason="numba.cuda is not importable (pip install -e '.[test]')")
def test_the_gpu_benchmark_runs_every_section_under_the_simulator(tmp_path):
    """benchmarks/bench_gpu.py --smoke (toy sizes) under the simulator: the script a lent GPU's short
    time goes to runs every section to its end, figures and JSON included."""
    import json
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    out = tmp_path / "b.json"
    r = subprocess.run([sys.executable, str(HERE.parent / "benchmarks" / "bench_gpu.py"), "--smoke", "--json", str(out)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert {"starts", "kernels", "host", "agree", "table1"} <= set(res)
    assert not any("error" in v for v in res.values() if isinstance(v, dict))
    assert res["starts"]["uniform"]["differ"] == 0 and res["table1"]["networks"] == 2


@pytest.mark.parametrize("opt", ["gd", "adam", "sgd"])
@pytest.mark.parametrize("n_points", [4, 20])
def test_every_variant_renders_valid_python(opt, n_points):
    for act in ("sigmoid", "relu", "tanh"):
        for loss, d in (("xent", 2), ("mse", 1)):
            for dtype in ("float64", "float32"):
                for h in (1, 7):
                    text = render(d, h, act, loss, opt, dtype, n_points)
                    compile(text, f"<{act} {loss} {opt} {dtype} h{h} n{n_points}>", "exec")
                    assert "np.sqrt(" not in text          # numba-cuda has no NumPy ufuncs on scalars


def test_device_cuda_fails_in_one_line_where_it_cannot_run(tmp_path):
    from badminima.cli import main
    from badminima.engine.cuda.launch import unavailable
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or unavailable() is None:
        pytest.skip("a GPU (or the simulator) is available here")
    out = tmp_path / "r.h5"
    r = CliRunner().invoke(main, ["train", "-n", "4", "--steps", "2", "--device", "cuda", "-o", str(out), "-q"])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --device cuda: "), r.output
    assert not any(tmp_path.iterdir())              # refused before any file was opened
    r = CliRunner().invoke(main, ["table1", "-n", "1", "--device", "cuda", "-o", str(out), "-q"])
    assert r.exit_code == 2 and r.output.startswith("error: --device cuda: ")


def test_cpu_configs_and_default_names_are_what_they_were(xor):
    """`device` is stored only when it is cuda: CPU result files, their default names and Table 1's
    file names stay those of the runs made before the GPU backend (so they are found and reused)."""
    from badminima.engine.store import config_tag
    from badminima.engine.paper.table1 import Protocol, SweepGrid, default_path, sweep_path
    cfg = make_cfg(xor)
    assert "device" not in cfg.to_dict() and TrainConfig.from_dict(cfg.to_dict()) == cfg
    gpu = make_cfg(xor, device="cuda")
    assert gpu.to_dict()["device"] == "cuda" and TrainConfig.from_dict(gpu.to_dict()) == gpu
    assert default_path(Protocol(), 10000) == "runs/table1-468e9d3ec2.h5"
    assert sweep_path(SweepGrid(), 1000) == "runs/table1-sweep-e5621ef545.h5"
    assert default_path(Protocol(device="cuda"), 10000) != default_path(Protocol(), 10000)
    from badminima.cli import build_config
    c, _ = build_config("xor", 2, "sigmoid", "gd", 0.5, 10000, "normal:1", "same", 1000, 0, "float64", 0.9, 0.999,
                        1e-8, 1e-6, True, 100.0)
    assert config_tag(c.to_dict()) == "f1212d78"


def test_device_is_validated(xor):
    from badminima.engine.train.config import ConfigError
    with pytest.raises(ConfigError, match="--device must be cpu or cuda"):
        make_cfg(xor, device="tpu")


def test_large_networks_are_classified_and_finished_on_the_host(xor):
    """A GPU thread's local memory holds the scratch of at most MAX_P = 64 parameters (h = 15 on 2-d
    data); larger networks of a cuda run go to the host's threads, CPU runs never to the GPU."""
    import numpy as np
    from badminima.engine.cuda.exact import MAX_P, bucket
    from badminima.engine.train.run import _exact_on_gpu
    cuda, cpu = make_cfg(xor, hidden=15, device="cuda"), make_cfg(xor, hidden=15)
    assert MAX_P == 64 and [bucket(P) for P in (9, 16, 17, 29, 33, 64)] == [16, 16, 32, 32, 64, 64]
    assert _exact_on_gpu(cuda, np.empty((1, 61))) and not _exact_on_gpu(cuda, np.empty((1, 65)))
    assert not _exact_on_gpu(cpu, np.empty((1, 9)))
