"""The shipped sub-10-point deadlocks (data/deadlock_n8.json, _n9, _n8_strong) stay certified, cross-checked,
and their stored quality numbers (tier, delta*, AUC, loss gaps) are what the certified minimum gives."""
import json

import numpy as np
import pytest

from badminima.engine.certify.files import certify_file
from badminima.engine.data.datasets import load_dataset
from badminima.engine.search.run import SearchConfig

try:
    from badminima.tests import reference as ref
except ImportError:
    import reference as ref


@pytest.mark.parametrize("name,n,delta_star,tier", [("deadlock_n8", 8, 0.0071776685, "weak"),
                                                    ("deadlock_n9", 9, 0.0332334967, "weak"),
                                                    ("deadlock_n8_strong", 8, 0.0516157595, "strong")])
def test_small_deadlock_certifies_strictly_and_suboptimally(name, n, delta_star, tier):
    ds = load_dataset(name)
    assert ds.n == n and ds.d == 2
    rep = certify_file(ds.source, cross_check=True, rounding=False)
    m = rep["points"]["minimum"]
    assert m["certified"] and m["verdict"] == "strict_local_minimum_not_global"
    assert m["witness"]["margin_lower"] > 0.1
    assert m["cross_check"]["ok"] and m["cross_check"]["krawczyk"] and m["cross_check"]["positive_definite"]
    # accuracy below the majority-class rate; weak: only through outputs within 0.05 of 1/2
    q = m["quality"]
    assert q["accuracy"] < q["majority_rate"]
    theta, witness = ds.points["minimum"].theta_text, ds.points["witness"].theta_text
    p = ref.mp_outputs(theta, ds.x_text, "sigmoid")         # exact data and centre, 50 digits
    assert abs(q["delta_star"] - ref.ref_decision_margin(p, list(ds.y))) < 1e-12
    assert abs(q["delta_star"] - delta_star) < 1e-9
    assert (q["delta_star"] >= SearchConfig.strong_delta) == (tier == "strong")
    with open(ds.source, encoding="utf-8") as f:
        s = json.load(f)["search"]
    # the file records the search's own float64 values; a recomputation may round differently
    assert s["tier"] == tier and abs(s["delta_star"] - q["delta_star"]) < 1e-12 and abs(s["auc"] - q["auc"]) < 1e-12
    assert s["auc"] == ref.ref_auc(p, list(ds.y))
    L = float(ref.mp_loss(theta, ds.x_text, ds.y_text, "sigmoid", "xent"))
    assert abs(s["const_gap"] - (L - s["constant_loss"])) < 1e-9 and s["const_gap"] < 0
    Lw = float(ref.mp_loss(witness, ds.x_text, ds.y_text, "sigmoid", "xent"))
    assert abs(s["witness_gap"] - (L - Lw)) < 1e-12 and s["witness_gap"] >= m["witness"]["margin_lower"]
    assert np.allclose(s["outputs"], [float(t) for t in p], rtol=0, atol=1e-13)
