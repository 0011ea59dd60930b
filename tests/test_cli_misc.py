"""`badminima compile` and the progress line."""
from click.testing import CliRunner

from badminima.cli import main
from badminima.engine.train.progress import Progress


def test_compile_warms_the_named_variants(tmp_path, monkeypatch):
    # full-batch kernels: one specialized to 4 points (XOR) and one for any size; SGD: one.  An empty
    # cache: all three are compiled (in worker processes), then a rerun finds them cached.
    monkeypatch.setenv("BADMINIMA_KERNEL_DIR", str(tmp_path))
    args = ["compile", "--hidden", "1", "--act", "sigmoid", "--opt", "gd,sgd", "--sizes", "4", "--dtype", "float64"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "3 kernel variants ready (3 compiled, 0 already cached)" in r.stdout
    assert "gd float64 4 points" in r.stderr and "gd float64 any size" in r.stderr and "sgd" in r.stderr
    assert "compiling kernels for 3 variants" in r.stderr and "compiled 3/3" in r.stderr
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0 and "(0 compiled, 3 already cached)" in r.stdout


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
    p.update(250)
    line = p.line()
    assert line.startswith("250/1000 networks (25.0%)") and "/s" in line and "left" in line
