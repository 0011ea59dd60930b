"""Exact local-minimality test for 1-D ReLU regression: the paper's propositions, kinks, and no false minima."""
from __future__ import annotations

import random
from fractions import Fraction as F

import pytest

from badminima.engine.certify.relu import REASON_NOT_MIN, REASON_WITNESS, REASON_ZERO_V, certify_relu, relu_loss
from badminima.engine.data.datasets import load_dataset


def _load(name):
    ds = load_dataset(name)
    return ds, list(ds.x_text), list(ds.y_text)


def _check_descent(x, y, theta, r):
    """A rejection must come with an exact, verifiable descent step."""
    assert r["verdict"] == "not_a_local_minimum" and r["reason"] == REASON_NOT_MIN
    d = r["descent"]
    xs = [F(row[0] if isinstance(row, (list, tuple)) else row) for row in x]
    ys = [F(t) for t in y]
    th = [F(t) for t in theta]
    cand = [a + F(d["t"]) * F(b) for a, b in zip(th, d["direction"])]
    assert relu_loss(xs, ys, cand) == F(d["loss_after"]) < relu_loss(xs, ys, th)


def test_prop1_local_not_global():
    ds, x, y = _load("relu_d1")
    th = ds.points["prop1"].theta_text                 # (v, w, b, c) = (1, 1, -3, 0)
    wit = ds.points["prop1_witness"].theta_text        # (1, -7, -4, 0)
    r = certify_relu(x, y, th, witness=wit)
    assert r["certified"] and r["local_minimum"] and r["not_global"]
    assert r["loss"] == "18" and r["witness"]["loss"] == "14" and r["witness"]["margin"] == "4"
    assert r["units"][0]["kink_x"] == ["3"]            # data point x3 = 3 sits on the kink
    assert r["strict"] is False
    assert r["verdict"] == "local_minimum_not_global"


def test_prop1_rescaled_copies_are_minima_too():
    _, x, y = _load("relu_d1")
    for s in (F(1, 3), F(2), F(7, 5)):
        th = [F(1) * s, F(1) / s, F(-3) / s, F(0)]
        r = certify_relu(x, y, th)
        assert r["certified"] and r["loss"] == "18"


def test_prop1_witness_wrong_way_round():
    ds, x, y = _load("relu_d1")
    r = certify_relu(x, y, ds.points["prop1_witness"].theta_text, witness=ds.points["prop1"].theta_text)
    assert r["local_minimum"] and not r["certified"] and r["reason"] == REASON_WITNESS


@pytest.mark.parametrize("point,loss", [("prop2_global", "0"), ("prop2_local", "8/3")])
def test_prop2_corrected_minima(point, loss):
    ds, x, y = _load("relu_d2")
    r = certify_relu(x, y, ds.points[point].theta_text)
    assert r["certified"] and r["loss"] == loss


def test_prop2_local_not_global():
    ds, x, y = _load("relu_d2")
    r = certify_relu(x, y, ds.points["prop2_local"].theta_text, witness=ds.points["prop2_global"].theta_text)
    assert r["certified"] and r["not_global"]


@pytest.mark.parametrize("point", ["prop2_global_as_printed", "prop2_local_as_printed"])
def test_prop2_as_printed_rejected(point):
    ds, x, y = _load("relu_d2")
    th = ds.points[point].theta_text
    r = certify_relu(x, y, th)
    assert not r["certified"] and r["local_minimum"] is False
    _check_descent(x, y, th, r)


def test_prop3_both_minima_and_order():
    ds, x, y = _load("relu_d3")
    rb = certify_relu(x, y, ds.points["prop3_better"].theta_text, witness=None)
    rw = certify_relu(x, y, ds.points["prop3_worse"].theta_text, witness=ds.points["prop3_better"].theta_text)
    assert rb["certified"] and rb["loss"] == "1/6"
    assert rw["certified"] and rw["loss"] == "2/3" and rw["not_global"]


@pytest.mark.parametrize("delta", [(0, F(1)), (1, F(1, 10)), (2, F(-1, 2)), (3, F(1, 100))])
def test_obvious_non_minima(delta):
    ds, x, y = _load("relu_d1")
    th = [F(t) for t in ds.points["prop1"].theta_text]
    th[delta[0]] += delta[1]
    r = certify_relu(x, y, th)
    assert not r["certified"]
    _check_descent(x, y, th, r)


KINK_X = ["-1", "0", "1"]


def test_kink_residual_descent_only_on_one_side():
    # unit relu(x) (v=1, w=1, b=0), c=0; x=0 sits on the kink with residual -1.  The gradient with the
    # convention relu'(0)=0 vanishes, yet raising b activates x=0 and lowers the loss.
    y = ["-1", "1", "1"]
    th = ["1", "1", "0", "0"]
    r = certify_relu(KINK_X, y, th)
    assert not r["certified"]
    _check_descent(KINK_X, y, th, r)


def test_kink_residual_on_the_harmless_side_is_a_minimum():
    y = ["1", "-1", "1"]      # residual +1 on the kink: activating it only hurts
    th = ["1", "1", "0", "0"]
    r = certify_relu(KINK_X, y, th)
    assert r["certified"]
    _sample_no_descent(KINK_X, y, th)


def test_negative_output_weight_mirrors():
    # f -> -f with y -> -y: same verdicts, v's sign decides which side of the kink is active
    th_neg = ["-1", "1", "0", "0"]
    assert not certify_relu(KINK_X, ["1", "-1", "-1"], th_neg)["certified"]
    assert certify_relu(KINK_X, ["-1", "1", "-1"], th_neg)["certified"]


def test_all_data_on_the_kink_w_b_zero():
    x = ["-2", "-1", "1", "3"]
    y = ["0", "0", "0", "0"]
    assert certify_relu(x, y, ["1", "0", "0", "0"])["certified"]              # perfect fit
    y = ["1", "-1", "0", "0"]
    th = ["1", "0", "0", "0"]
    r = certify_relu(x, y, th)
    assert r["units"][0]["cells"] == 8                                         # 4 lines -> 8 sectors
    assert not r["certified"]
    _check_descent(x, y, th, r)


def test_zero_output_weight():
    x, y = ["-1", "0", "1"], ["0", "0", "1"]
    dead = ["0", "1", "-5", "1/3"]       # v = 0 and dead everywhere: irrelevant; c = mean(y) is optimal
    assert certify_relu(x, y, dead)["certified"]
    live = ["0", "1", "5", "1/3"]        # v = 0 on a live unit, dL/dv = 2 sum e relu(a) = -2 != 0
    r = certify_relu(x, y, live)
    assert not r["certified"]
    _check_descent(x, y, live, r)
    # v = 0 on a live unit with dL/dv = 0: second order in (v, w, b) is beyond the test -> inconclusive
    r = certify_relu(x, ["0", "1", "0"], live)
    assert not r["certified"] and r["local_minimum"] is None and r["reason"] == REASON_ZERO_V


def _sample_no_descent(x, y, th, trials=400, seed=0):
    rng = random.Random(seed)
    xs = [F(t) for t in x]
    ys = [F(t) for t in y]
    th = [F(t) for t in th]
    L0 = relu_loss(xs, ys, th)
    for _ in range(trials):
        eps = F(1, 10 ** rng.randint(2, 5))
        cand = [a + F(rng.randint(-100, 100), 100) * eps for a in th]
        assert relu_loss(xs, ys, cand) >= L0


def test_random_points_never_falsely_minima():
    """Random small problems, kinks on data half the time: every 'local minimum' survives random local
    probing, every rejection carries a verified descent step."""
    rng = random.Random(1)
    seen = {"local_minimum": 0, "not_a_local_minimum": 0}
    for _ in range(250):
        n, h = rng.randint(2, 5), rng.randint(1, 2)
        xs = [F(rng.randint(-3, 3)) for _ in range(n)]
        th = []
        for _j in range(h):
            v = F(rng.choice([-2, -1, 1, 2]))
            w = F(rng.randint(-2, 2))
            b = -w * rng.choice(xs) if rng.random() < 0.6 else F(rng.randint(-3, 3))
            if rng.random() < 0.1:
                w = b = F(0)
            th += [v, w, b]
        th.append(F(rng.randint(-2, 2)))
        ys = []
        for x in xs:
            f = th[-1] + sum(th[3 * j] * max(F(0), th[3 * j + 1] * x + th[3 * j + 2]) for j in range(h))
            ys.append(f + F(rng.choice([0, 0, 0, 1, -1])))
        r = certify_relu(xs, ys, th)
        seen[r["verdict"]] = seen.get(r["verdict"], 0) + 1
        if r["verdict"] == "local_minimum":
            _sample_no_descent(xs, ys, th, trials=100, seed=rng.randint(0, 10 ** 6))
        else:
            _check_descent(xs, ys, th, r)
    assert seen["local_minimum"] > 20 and seen["not_a_local_minimum"] > 100


def test_bad_input():
    r = certify_relu([["1", "2"], ["3", "4"]], ["0", "1"], ["1", "1", "1", "1", "0"])
    assert r["reason"] == "bad input" and not r["certified"]
    r = certify_relu(["1", "2"], ["0", "1"], ["1", "1"])
    assert r["reason"] == "bad input"


def test_long_rationals_are_written_exactly():
    """Numbers of 2200 digits (inside the data files' 4000-character limit) give a loss and residuals of
    more than Python's 4300-digit limit on int -> str; the report still writes them exactly."""
    import sys
    ds, x, y = _load("relu_d1")
    th = list(ds.points["prop1"].theta_text)
    th[2] = "1/" + "3" * 2200
    wide = [th[0], "3" * 1949 + "/1" + "0" * 1948, "1/" + "3" * 3900, th[3]]   # 3900 digits: the messages too
    assert certify_relu(x, y, wide, witness=th)["verdict"] == "not_a_local_minimum"
    r = certify_relu(x, y, th)
    assert sys.get_int_max_str_digits() == 4300                 # the guard is back after the report
    xs = [F(row[0] if isinstance(row, (list, tuple)) else row) for row in x]
    ys, tq = [F(v) for v in y], [F(v) for v in th]
    exact = relu_loss(xs, ys, tq)
    assert exact.denominator > 10 ** 4300
    sys.set_int_max_str_digits(0)                               # to read the report's long numbers back
    try:
        assert F(r["loss"]) == exact and [F(e) for e in r["residuals"]][0] != 0
        _check_descent(x, y, th, r)
    finally:
        sys.set_int_max_str_digits(4300)
