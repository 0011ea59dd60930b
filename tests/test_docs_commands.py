"""Every `badminima ...` command in the README's and docs' code blocks parses: its command exists and
takes those options (a renamed option must be renamed in the docs too)."""
import re
import shlex
from pathlib import Path

import click
import pytest

from badminima.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_commands():
    """(file, command line) for each badminima command inside a fenced code block."""
    out = []
    for path in DOCS:
        in_block, pending = False, ""
        for line in path.read_text().split("\n"):
            if line.lstrip().startswith("```"):
                in_block, pending = not in_block, ""
                continue
            if not in_block:
                continue
            line = pending + line.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            for part in re.split(r"&&|;|\|\|?", line.split(" #")[0]):
                words = part.split()
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):   # VAR=value prefixes
                    words = words[1:]
                if words[:1] == ["badminima"] and len(words) > 1:
                    out.append((path.name, " ".join(words)))
    return out


def _args(command: str) -> list[str]:
    # shell variables and substitutions stand for numbers in these examples; "..." for elided options
    words = shlex.split(re.sub(r"\$\([^)]*\)|\$\w+", "1", command))[1:]
    return [w for w in words if w not in ("...", "…")]


def test_the_docs_show_commands():
    assert len(documented_commands()) > 30


@pytest.mark.parametrize("where, command", documented_commands())
def test_a_documented_command_parses(where, command):
    args = _args(command)
    if args and args[0] in ("-h", "--help", "--version"):
        return
    cmd = main.commands.get(args[0])
    assert cmd is not None, f"{where}: no command {args[0]!r}"
    with click.Context(main) as parent:
        try:
            ctx = cmd.make_context(args[0], args[1:], parent=parent)
        except click.exceptions.Exit:
            return
        except click.ClickException as e:
            pytest.fail(f"{where}: `{command}`: {e.format_message()}")
        run = ctx.params.get("run")
        if run:                                  # dask / slurm: the run command they shard
            sub = main.commands.get(run[0])
            assert sub is not None, f"{where}: no run command {run[0]!r}"
            try:
                sub.make_context(run[0], list(run[1:]), parent=parent)
            except click.ClickException as e:
                pytest.fail(f"{where}: run command of `{command}`: {e.format_message()}")
