"""The dataset loader: built-ins load, user JSON/CSV load, malformed files fail with telling messages."""
import json
from fractions import Fraction

import numpy as np
import pytest

from badminima.engine.data.datasets import (DataError, builtin_names, load_dataset, load_point, parse_exact)
from badminima.engine.core.layout import n_params

BUILTINS = {"xor": (4, 2), "fxor": (4, 2), "paper10": (10, 2),
            "relu_d1": (5, 1), "relu_d2": (6, 1), "relu_d3": (6, 1)}


def _write_json(tmp_path, obj, name="d.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def _write_csv(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _fails(spec, *fragments, kind=None):
    """Assert loading raises a one-line DataError containing every fragment."""
    with pytest.raises(DataError) as info:
        load_dataset(spec, kind=kind)
    msg = str(info.value)
    assert "\n" not in msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


# ---------------------------------------------------------------- built-ins

@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_loads(name):
    ds = load_dataset(name)
    assert (ds.n, ds.d) == BUILTINS[name]
    assert ds.x.dtype == np.float64 and ds.x.flags.c_contiguous and ds.y.shape == (ds.n,)
    assert len(ds.x_text) == ds.n and all(len(r) == ds.d for r in ds.x_text)
    assert len(ds.fingerprint) == 64
    for point in ds.points.values():
        assert point.theta.shape == (n_params(ds.d, point.hidden),)
        assert [float(parse_exact(t)) for t in point.theta_text] == list(point.theta)


def test_builtin_names_cover_the_paper():
    assert set(BUILTINS) <= set(builtin_names())


def test_builtin_kinds_and_exact_text():
    ds = load_dataset("paper10")
    assert ds.kind == "classification" and ds.x_text[6] == ("-3.", "-4.3")
    assert list(ds.y) == [1] * 5 + [0] * 5
    assert load_dataset("relu_d1").kind == "regression"


def test_paper10_points_follow_the_index_swap():
    w_hat = load_point(load_dataset("paper10"), "W_hat")
    assert w_hat.theta_text[2] == w_hat.printed["w1,0"]  # eq. (1)'s w01 is the printed w1,0
    assert w_hat.theta_text[5] == w_hat.printed["w0,1"]
    assert w_hat.claims["mean_loss"] == "0.577738"


def test_rational_theta_is_exact():
    point = load_point(load_dataset("relu_d2"), "prop2_local")
    assert parse_exact(point.theta_text[2]) == Fraction(13, 3)
    assert point.theta[2] == 13 / 3


def test_load_point_lists_available_names():
    ds = load_dataset("relu_d1")
    with pytest.raises(DataError, match="available: prop1, prop1_witness"):
        load_point(ds, "nope")


def test_arrays_are_read_only():
    ds = load_dataset("xor")
    with pytest.raises(ValueError):
        ds.x[0, 0] = 5.0


# ---------------------------------------------------------------- user files

def test_user_json_loads_with_numbers_and_strings(tmp_path):
    spec = _write_json(tmp_path, '{"x": [[0.1, "2"], [3, -4.5e1]], "y": [0, 1]}')
    ds = load_dataset(spec)
    assert ds.kind == "classification" and ds.name == "d"
    assert ds.x_text == (("0.1", "2"), ("3", "-4.5e1"))
    assert np.array_equal(ds.x, [[0.1, 2.0], [3.0, -45.0]])


def test_user_csv_loads_any_column_order_and_comments(tmp_path):
    spec = _write_csv(tmp_path, "# comment\ny,x1,x0\n\n1, 0.4 ,2.8\n# another\n0,-0.4,-2.7\n")
    ds = load_dataset(spec)
    assert ds.x_text == (("2.8", "0.4"), ("-2.7", "-0.4"))
    assert list(ds.y) == [1.0, 0.0] and ds.kind == "classification"


def test_kind_inference_and_override(tmp_path):
    assert load_dataset(_write_csv(tmp_path, "x0,y\n1,0.5\n2,3\n")).kind == "regression"
    assert load_dataset(_write_csv(tmp_path, "x0,y\n1,0\n2,1\n", "b.csv"), kind="regression").kind == "regression"


def test_fingerprint_depends_on_data_not_spelling(tmp_path):
    a = load_dataset(_write_json(tmp_path, {"x": [["1.0"], ["2"]], "y": ["0", "1"]}, "a.json"))
    b = load_dataset(_write_csv(tmp_path, "x0,y\n1,0\n2.00,1\n", "b.csv"))
    c = load_dataset(_write_csv(tmp_path, "x0,y\n1,0\n2.5,1\n", "c.csv"))
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert load_dataset(str(tmp_path / "b.csv"), kind="classification").fingerprint != b.fingerprint


# ---------------------------------------------------------------- malformed files

def test_nan(tmp_path):
    _fails(_write_csv(tmp_path, "x0,x1,y\n1,2,0\n3,nan,1\n"), "row 2 (line 3)", "NaN")
    _fails(_write_json(tmp_path, '{"x": [[1, 2], [NaN, 1]], "y": [0, 1]}'), "row 2", "NaN")


def test_inf(tmp_path):
    _fails(_write_csv(tmp_path, "x0,y\n1,0\ninf,1\n"), "row 2", "infinite")
    _fails(_write_json(tmp_path, '{"x": [[1], [2]], "y": [0, -Infinity]}'), "row 2 y", "infinite")
    _fails(_write_json(tmp_path, '{"x": [[1], [1e400]], "y": [0, 1]}'), "overflows float64")


def test_ragged(tmp_path):
    _fails(_write_json(tmp_path, {"x": [[1, 2], [3]], "y": [0, 1]}), "ragged", "row 2 has 1")
    _fails(_write_csv(tmp_path, "x0,x1,y\n1,2,0\n3,1\n"), "row 2 (line 3) has 2 fields")


def test_wrong_dimension(tmp_path):
    _fails(_write_json(tmp_path, {"x": [[1, 2, 3], [3, 4, 5]], "y": [0, 1]}), "d=3 is not supported")
    _fails(_write_json(tmp_path, {"x": [[], []], "y": [0, 1]}), "d=0 is not supported")


def test_non_numeric(tmp_path):
    _fails(_write_json(tmp_path, {"x": [["1"], ["abc"]], "y": [0, 1]}), "row 2", "not numeric", "abc")
    _fails(_write_json(tmp_path, {"x": [[1], [True]], "y": [0, 1]}), "not a number")
    _fails(_write_json(tmp_path, {"x": [[1], ["4 + 1/3"]], "y": [0, 1]}), "not numeric")
    # a number this cannot hold is named as such, not as "not numeric"
    _fails(_write_json(tmp_path, {"x": [[1], ["1e-99999999"]], "y": [0, 1]}), "row 2", "exponent out of range")
    _fails(_write_json(tmp_path, {"x": [[1], ["3/0"]], "y": [0, 1]}), "row 2", "zero denominator")


def test_non_binary_labels(tmp_path):
    _fails(_write_json(tmp_path, {"x": [[1], [2]], "y": [0, 2.5]}, "c.json"), "found 2.5", kind="classification")
    msg = _fails(_write_json(tmp_path, {"kind": "classification", "x": [[1], [2]], "y": [0, 2.5]}))
    assert "labels must be 0 or 1 for classification, found 2.5" in msg


def test_single_class(tmp_path):
    _fails(_write_csv(tmp_path, "x0,x1,y\n1,0,1\n2,0,1\n3,0,1\n"), "only one class present")


def test_too_few_points_and_empty(tmp_path):
    _fails(_write_json(tmp_path, {"x": [[1]], "y": [0.5]}), "at least 2 points")
    _fails(_write_json(tmp_path, {"x": [], "y": []}), "empty")
    _fails(_write_csv(tmp_path, "x0,y\n"), "empty")
    _fails(_write_csv(tmp_path, "# nothing\n", "e.csv"), "empty")


def test_length_mismatch(tmp_path):
    _fails(_write_json(tmp_path, {"x": [[1], [2], [3]], "y": [0, 1]}), "3 rows but y has 2")


def test_missing_csv_column(tmp_path):
    _fails(_write_csv(tmp_path, "x0,x1\n1,2\n"), "no 'y' column")
    _fails(_write_csv(tmp_path, "x0,x2,y\n1,2,0\n", "b.csv"), "lacks column(s) x1")
    _fails(_write_csv(tmp_path, "x0,label\n1,0\n", "c.csv"), "unexpected column 'label'")


def test_not_json_and_missing_keys(tmp_path):
    _fails(_write_json(tmp_path, "{'x': [1, 2]"), "not valid JSON", "line 1")
    _fails(_write_json(tmp_path, {"x": [[1], [2]]}, "b.json"), "missing required key 'y'")
    _fails(_write_json(tmp_path, [1, 2], "c.json"), "top level must be a JSON object")


def test_missing_file_and_unknown_name(tmp_path):
    _fails(str(tmp_path / "absent.json"), "file not found")
    _fails("no_such_builtin", "no built-in dataset or file", "paper10")
    _fails(_write_json(tmp_path, "x", "d.txt"), "unsupported file type")


def test_bad_weight_point(tmp_path):
    base = {"x": [[1], [2]], "y": [0, 1]}
    bad_len = dict(base, points={"p": {"hidden": 1, "activation": "relu", "theta": [1, 2, 3]}})
    _fails(_write_json(tmp_path, bad_len, "a.json"), "point 'p'", "4 entries, got 3")
    bad_act = dict(base, points={"p": {"hidden": 1, "activation": "gelu", "theta": [1, 2, 3, 4]}})
    _fails(_write_json(tmp_path, bad_act, "b.json"), "activation must be one of")
    bad_h = dict(base, points={"p": {"hidden": 0, "activation": "relu", "theta": [1]}})
    _fails(_write_json(tmp_path, bad_h, "c.json"), "hidden must be a positive integer")
    for h in ("1", 1.0, True):          # a JSON string, a float literal, a boolean: not an integer
        bad_h = dict(base, points={"p": {"hidden": h, "activation": "relu", "theta": [1, 2, 3, 4]}})
        _fails(_write_json(tmp_path, bad_h, "c.json"), "hidden must be a positive integer")


def test_a_witness_must_name_a_point_of_the_file(tmp_path):
    """A 'witness' (of the file or of a point) is the point certify uses to prove "not global": a
    misspelt or mistyped one is refused rather than silently proving less."""
    pts = {"p": {"hidden": 1, "activation": "relu", "theta": [1, 2, 3, 4]},
           "q": {"hidden": 1, "activation": "relu", "theta": [0, 2, 3, 4]}}
    base = {"x": [[1], [2]], "y": [0, 1], "points": pts}
    assert load_dataset(_write_json(tmp_path, dict(base, witness="q"), "ok.json")).witness == "q"
    _fails(_write_json(tmp_path, dict(base, witness="r"), "a.json"), "'witness' names no point", "'r'", "p, q")
    _fails(_write_json(tmp_path, dict(base, witness=3), "b.json"), "'witness' must name a point")
    bad = dict(base, points=dict(pts, q=dict(pts["q"], witness="P")))
    _fails(_write_json(tmp_path, bad, "c.json"), "point 'q'", "'witness' names no point", "'P'")
    bad = dict(base, points=dict(pts, q=dict(pts["q"], witness="q")))
    _fails(_write_json(tmp_path, bad, "d.json"), "point 'q'", "names the point itself")


# ---------------------------------------------------------------- exact parsing

def test_parse_exact_decimal_rational_and_scientific():
    assert parse_exact("4.2") == Fraction(21, 5)
    assert parse_exact("-13/6") == Fraction(-13, 6)
    assert parse_exact("1e-3") == Fraction(1, 1000)  # scientific notation is still an exact decimal
    assert parse_exact(" -3. ") == -3 and parse_exact(".5") == Fraction(1, 2)


@pytest.mark.parametrize("text", ["4 + 1/3", "nan", "inf", "1/0", "", "1.5/2", "0x10", "1_000", "1e99999999"])
def test_parse_exact_rejects(text):
    with pytest.raises(DataError):
        parse_exact(text)
