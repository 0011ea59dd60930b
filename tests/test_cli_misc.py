"""`badminima compile` and the progress line."""
from click.testing import CliRunner

from badminima.cli import main
from badminima.engine.progress import Progress


def test_compile_warms_the_named_variants():
    r = CliRunner().invoke(main, ["compile", "--hidden", "2", "--act", "sigmoid", "--opt", "gd,adam"])
    assert r.exit_code == 0, r.output
    assert "compiled 2 kernel variants" in r.output


def test_compile_rejects_nonsense():
    r = CliRunner().invoke(main, ["compile", "--hidden", "two"])
    assert r.exit_code == 2 and "integers" in r.output
    r = CliRunner().invoke(main, ["compile", "--act", "swish", "--hidden", "2"])
    assert r.exit_code == 2 and "activation" in r.output


def test_progress_line_reports_done_rate_and_time_left():
    p = Progress(1000, enabled=False)
    p.update(250)
    line = p.line()
    assert line.startswith("250/1000 networks (25.0%)") and "/s" in line and "left" in line
