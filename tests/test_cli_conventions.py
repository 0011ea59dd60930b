"""The command line's conventions hold for every command: option spellings, closed choices, ranges,
--json FILE|-, one-line usage errors, shell completion."""
import json
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from badminima.cli import IntSet, main


def commands():
    return sorted(main.commands.items())


def test_one_spelling_per_idea_in_every_help():
    for name, cmd in commands():
        for p in cmd.params:
            opts = set(p.opts) | set(getattr(p, "secondary_opts", []))
            assert not opts & {"--json-out", "--dir", "--runs-dir", "--output-dir", "--points"}, (name, opts)
            if "-o" in opts:         # -o is always a result file
                assert "result file" in (p.help or ""), (name, p.help)
            if "--json" in opts:
                assert "'-'" in p.help, (name, p.help)
            if any(o.endswith("-dir") for o in opts):
                assert "--out-dir" in opts or name == "search", (name, opts)


@pytest.mark.parametrize("text, want", [("2-7", [2, 3, 4, 5, 6, 7]), ("2,3", [2, 3]), ("4-5,9", [4, 5, 9]),
                                        ("3", [3]), ("7,2-3", [2, 3, 7])])
def test_integers_and_ranges_parse_one_way(text, want):
    assert IntSet().convert(text, None, None) == want


@pytest.mark.parametrize("text", ["4..12", "x", "5-2", "", "2-"])
def test_other_range_spellings_are_refused(text):
    with pytest.raises(click.BadParameter):
        IntSet().convert(text, None, None)


def test_closed_choices_are_listed_in_help():
    out = CliRunner().invoke(main, ["train", "--help"]).output
    assert "[sigmoid|relu|tanh]" in out and "[gd|adam|sgd]" in out and "[float64|float32]" in out
    out = CliRunner().invoke(main, ["compile", "--help"]).output
    assert "[sigmoid|relu|tanh],..." in out


@pytest.mark.parametrize("args, needle", [
    (["train", "--dtype", "float16"], "--dtype"),
    (["train", "--init", "cauchy:1"], "unknown init law 'cauchy'"),
    (["compile", "--opt", "gd,lbfgs"], "choose from gd, adam, sgd"),
    (["minimality", "-N", "4..12"], "not a list of integers or ranges"),
    (["certify"], "Missing argument 'FILE'"),
    (["nosuch"], "No such command 'nosuch'"),
    (["table1", "--bogus"], "No such option '--bogus'"),
])
def test_usage_errors_are_one_line_with_exit_2(args, needle):
    r = CliRunner().invoke(main, args)
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.output
    assert "--help`" in lines[0]


@pytest.mark.parametrize("args, needle", [
    (["minimality", "-N", "6_0", "-k", "1"], "not a list of integers"),
    (["minimality", "-N", "\u0661\u0662", "-k", "1"], "not a list of integers"),      # Arabic-Indic 12
    (["minimality", "-N", "6,", "-k", "1"], "has an empty item"),
    (["minimality", "-N", "8", "--strategies", "joint,", "-k", "1"], "has an empty item"),
    (["compile", "--act", "sigmoid,,relu"], "has an empty item"),
    (["train", "-n", "1_0"], "is not an integer"),
    (["table1", "-n", "10", "--sgd-lr", "0.1,,0.2"], "has an empty item"),
    (["table1", "-n", "10", "--shard", "1_0/20"], "bad shard"),
    (["search", "-N", "6", "-k", "1", "--ones", "3,"], "--ones"),
    (["search", "-N", "6", "-k", "1", "--ones", "\u0663"], "--ones"),
    (["minimality", "-N", "6-8", "-k", "1", "--paper-parent"], "needs 9 in -N"),
    (["five-numbers", "--random", "1_0"], "is not an integer"),
    (["table1", "-n", "10", "--sweep", "--sweep-init", "normal:1,,glorot"], "has an empty item"),
    (["table1", "-n", "10", "--sweep", "--sweep-init", "glorot/"], "nothing after the slash"),
    (["table1", "-n", "10", "--sweep", "--sweep-steps", "1_000"], "--sweep-steps"),
    (["five-numbers", "--dps", "\u0662\u0660"], "is not an integer"),
    (["five-numbers", "--dps", "14"], "is not in the range 15..1000"),
    (["train", "-n", "1", "--lr", "1_0"], "'1_0' is not a number"),
    (["train", "-n", "1", "--lr", "\uff15"], "is not a number"),                # full-width 5
    (["train", "-n", "1", "--init", "normal:0_5"], "init scale must be a number"),
    (["table1", "-n", "10", "--sgd-lr", "0.1,0_2"], "--sgd-lr must be a comma-separated list of numbers"),
    (["table1", "-n", "10", "--sweep", "--sweep-adam-lr", "1e-3,\u0661"], "--sweep-adam-lr"),
    (["plot", "losses", "run.h5", "--figure", "f.png", "--size", "1_0x4"], "bad figure size"),
    (["slurm", "train", "--shards", "2", "--poll", "1_0"], "'1_0' is not a number"),
])
def test_numbers_and_lists_are_written_one_way(args, needle):
    """Numbers in ASCII digits only (not 1_0 or other scripts' digits, which Python's int() and float()
    read), lists without empty items, on every option that takes them: one line, exit 2, no work."""
    r = CliRunner().invoke(main, args)
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.output


def test_json_dash_prints_only_json(tmp_path):
    r = CliRunner().invoke(main, ["certify", "relu_d1", "--json", "-"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)                      # nothing else on stdout
    assert isinstance(rep, dict) and rep
    r = CliRunner().invoke(main, ["certify", "relu_d1", "--json", str(tmp_path / "c.json")])
    again = json.loads((tmp_path / "c.json").read_text())
    assert r.exit_code == 0 and again["certified"] == rep["certified"] and again["points"].keys() == rep["points"].keys()
    assert f"json: {tmp_path / 'c.json'}" in r.output


def test_shell_completion_lists_choices():
    env = {**os.environ, "_BADMINIMA_COMPLETE": "bash_complete", "COMP_WORDS": "badminima train --act s",
           "COMP_CWORD": "3"}
    p = subprocess.run([sys.executable, "-c", "from badminima.cli import main; main(prog_name='badminima')"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert "sigmoid" in p.stdout and "relu" not in p.stdout, p.stdout + p.stderr
    env.update(COMP_WORDS="badminima compile --opt gd,a", COMP_CWORD="3")
    p = subprocess.run([sys.executable, "-c", "from badminima.cli import main; main(prog_name='badminima')"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert "gd,adam" in p.stdout, p.stdout + p.stderr


def test_every_option_that_cannot_parse_its_value_is_one_line_naming_it():
    """Every option of every command with a typed value (integers, numbers, lists, names, laws,
    choices), given a value of no such type, is refused in one line that names the option, exit 2,
    before any work; the positional arguments are placeholders the command never reaches."""
    placeholders = {"certify": ["x.json"], "report": ["x.h5"], "plot": ["losses", "x.h5"], "show": ["x.h5"],
                    "merge": ["x.h5"], "status": ["x"], "dask": ["train"], "slurm": ["train"]}
    checked = 0
    for name, cmd in commands():
        if isinstance(cmd, click.Group):
            continue
        for p in cmd.params:
            if not isinstance(p, click.Option) or p.is_flag or isinstance(p.type, click.types.StringParamType):
                continue
            for bad in ("abc", "1e999x"):
                r = CliRunner().invoke(main, [name, *placeholders.get(name, []), p.opts[0], bad])
                lines = r.output.strip().splitlines()
                assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (name, p.opts, r.output)
                assert any(o in lines[0] for o in p.opts), (name, p.opts, lines[0])
                checked += 1
    assert checked > 100
