"""The package layout: dependencies point one way (the engine never imports the analysis), and the engine's
names and kernel codes come from one table."""
import ast
from pathlib import Path

from badminima.engine.core import names

ENGINE = Path(__file__).resolve().parents[1] / "engine"


def _imports(path: Path, engine: Path = ENGINE) -> list[str]:
    """Every module a file under `engine` imports, absolute or relative (resolved against the file's package)."""
    package = ["badminima", *path.relative_to(engine.parent).parts[:-1]]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out += [mod] + [f"{mod}.{a.name}" for a in node.names]
    return out


def test_engine_never_imports_the_analysis():
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) > 30
    bad = [(str(f.relative_to(ENGINE.parent)), m) for f in files for m in _imports(f)
           if m == "badminima.analysis" or m.startswith("badminima.analysis.")]
    assert bad == []


def test_the_import_walk_sees_analysis_imports(tmp_path):
    f = tmp_path / "engine" / "paper" / "probe.py"
    f.parent.mkdir(parents=True)
    f.write_text("from ...analysis import wilson\nimport badminima.analysis.stats\n")
    assert _imports(f, tmp_path / "engine") == ["badminima.analysis", "badminima.analysis.wilson",
                                                "badminima.analysis.stats"]


def test_kernel_codes_never_change():
    """Generated kernels and stored results use these codes: renumbering would silently change them."""
    assert names.ACTIVATIONS == {"sigmoid": 0, "relu": 1, "tanh": 2}
    assert names.LOSSES == {"xent": 0, "mse": 1}
    assert names.OPTIMIZERS == {"gd": 0, "adam": 1, "sgd": 2}
    assert names.INIT_LAWS == {"normal": 0, "uniform": 1, "glorot": 2, "he": 3}
    assert {d: names.lanes_for(d) for d in names.DTYPE_LANES} == {"float64": 32, "float32": 64}
