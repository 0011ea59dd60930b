"""The shipped sub-10-point deadlocks (data/deadlock_n8.json, _n9) stay certified, cross-checked."""
import pytest

from badminima.engine.certify_io import certify_file
from badminima.engine.datasets import load_dataset


@pytest.mark.parametrize("name,n", [("deadlock_n8", 8), ("deadlock_n9", 9)])
def test_small_deadlock_certifies_strictly_and_suboptimally(name, n):
    ds = load_dataset(name)
    assert ds.n == n and ds.d == 2
    rep = certify_file(ds.source, cross_check=True, rounding=False)
    m = rep["points"]["minimum"]
    assert m["certified"] and m["verdict"] == "strict_local_minimum_not_global"
    assert m["witness"]["margin_lower"] > 0.1
    assert m["cross_check"]["ok"] and m["cross_check"]["krawczyk"] and m["cross_check"]["positive_definite"]
    # strong tier: accuracy below the majority-class rate, like the paper's example
    assert m["quality"]["accuracy"] < m["quality"]["majority_rate"]
