"""Every `badminima ...` command in the README's and docs' code blocks parses: its command exists and
takes those options (a renamed option must be renamed in the docs too); every option the prose names
exists, and every link between the pages resolves."""
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


DOC_PAGES = DOCS + [ROOT / "data" / "README.md"]


def _options(cmd) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}


def test_options_named_in_the_docs_prose_exist():
    """`badminima CMD ... --opt` written inline in the prose (often partial commands, so not parsed whole):
    every long option it names is one of CMD's, or of the run command that slurm/dask shard."""
    wrong = []
    for path in DOC_PAGES:
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
        for m in re.finditer(r"`badminima ([a-z0-9]+)([^`]*)`", text):
            cmd = main.commands.get(m.group(1))
            if cmd is None:
                continue
            words = m.group(2).split()
            run = next((main.commands[w] for w in words if w in main.commands), None)
            known = _options(cmd) | (_options(run) if run is not None and m.group(1) in ("slurm", "dask") else set())
            for w in words:
                opt = re.match(r"--[a-z0-9-]+", w)
                if opt and opt.group(0) not in known:
                    wrong.append(f"{path.name}: `badminima {m.group(1)}{m.group(2)}`: {opt.group(0)}")
    assert wrong == []


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_docs_resolve():
    """Every relative link of the README, docs/ and data/README.md names a file of the repository, and
    an anchor names a heading of that file."""
    broken = []
    for path in DOC_PAGES:
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue                                    # https:, mailto:
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{path.name}: {target}")
            elif anchor and dest.suffix == ".md":
                heads = {_anchor(h) for h in re.findall(r"^#+ (.+)$", dest.read_text(), flags=re.M)}
                if anchor not in heads:
                    broken.append(f"{path.name}: {target} (no such heading)")
    assert broken == []


def test_every_option_the_docs_name_exists():
    """Each `--option` written in the docs' prose is an option of some badminima command or benchmark
    (a renamed or invented one, like `--dir` for `--out-dir`, fails here)."""
    known = {"--help"} | _options(main) | {o for c in main.commands.values() for o in _options(c)}
    for bench in (ROOT / "benchmarks").glob("*.py"):
        known |= set(re.findall(r"add_argument\(\s*\"(--[a-z0-9-]+)\"", bench.read_text()))
    unknown = set()
    for path in DOC_PAGES:
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
        for span in re.findall(r"`([^`]+)`", text):
            if re.search(r"pip |pytest|-n auto", span):
                continue                                    # pip's and pytest's own options
            for opt in re.findall(r"(?<![\w=-])(--[a-z0-9][a-z0-9-]*[a-z0-9])(?![\w*-])", span):
                if opt not in known:
                    unknown.add(f"{path.name}: {opt} in `{span[:60]}`")
    assert sorted(unknown) == []
