"""Packaging: the wheel's package list covers every folder, and the package files it needs ship."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {"badminima"} | {"badminima." + ".".join(p.parent.relative_to(ROOT).parts)
                             for p in ROOT.glob("*/**/__init__.py")
                             if p.parent.relative_to(ROOT).parts[0] in ("engine", "analysis")}
    assert found == listed


def test_non_python_files_the_code_reads_ship_with_it():
    data = _pyproject()["tool"]["setuptools"]["package-data"]
    globs = {pkg: pats for pkg, pats in data.items()}
    for pkg, pats in globs.items():
        folder = ROOT.joinpath(*pkg.split(".")[1:])
        for pat in pats:
            assert list(folder.glob(pat)), (pkg, pat)
    for f in ROOT.joinpath("engine").rglob("*"):
        if f.is_file() and f.suffix in (".txt", ".sh"):
            pkg = "badminima." + ".".join(f.parent.relative_to(ROOT).parts)
            assert any(f.match(p) for p in globs.get(pkg, ())), f


def test_python_m_badminima_runs_the_cli():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "badminima", "--help"], capture_output=True, text=True, check=True)
    assert "train" in out.stdout and "table1" in out.stdout
