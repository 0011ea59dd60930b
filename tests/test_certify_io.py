"""certify_file / format_report on the built-in files and on user files."""
from __future__ import annotations

import json

import pytest

from badminima.engine.certify.files import certify_file, format_report
from badminima.engine.data.datasets import DATA_DIR, DataError


def _json_ok(rep):
    json.loads(json.dumps(rep, allow_nan=False))


def test_paper10_with_w0_as_witness():
    rep = certify_file("paper10", witness="W0")
    _json_ok(rep)
    w = rep["points"]["W_hat"]
    assert w["certified"] and w["not_global"] and w["witness_name"] == "W0"
    assert w["rounding"]["coarsest_decimals"] == 1
    assert rep["certified"] == ["W_hat"] and set(rep["not_certified"]) == {"W0", "remark2"}
    assert rep["points"]["W0"]["reason"] == "saturated units"
    txt = format_report(rep)
    assert "W_hat" in txt and "CERTIFIED" in txt and "not global" in txt and "saturated units" in txt


def test_a_loss_the_dataset_does_not_have_or_an_unused_witness_is_refused(tmp_path):
    """A sigmoid point on data declared regression (certify proves cross-entropy minima) is refused, as is
    a witness that would leave no other point to certify."""
    doc = json.loads((DATA_DIR / "deadlock_n9.json").read_text())
    doc["kind"] = "regression"
    (tmp_path / "d.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match="'minimum' is a sigmoid network on regression data"):
        certify_file(str(tmp_path / "d.json"))
    with pytest.raises(DataError, match="no point to certify besides the witness 'minimum'"):
        certify_file("deadlock_n9", witness="minimum")


def test_relu_files():
    rep = certify_file("relu_d1")
    _json_ok(rep)
    p = rep["points"]["prop1"]
    assert p["certified"] and p["witness_name"] == "prop1_witness" and p["not_global"]
    rep = certify_file("relu_d2")
    assert set(rep["certified"]) == {"prop2_global", "prop2_local"}
    assert rep["points"]["prop2_local_as_printed"]["verdict"] == "not_a_local_minimum"
    rep = certify_file("relu_d3", point_names=["prop3_worse"], witness="prop3_better")
    assert rep["all_certified"] and list(rep["points"]) == ["prop3_worse"]
    assert "descent" not in format_report(rep)
    assert "descent" in format_report(certify_file("relu_d2", point_names=["prop2_global_as_printed"]))


def test_user_file_witness_keys(tmp_path):
    f = tmp_path / "mine.json"
    src = json.loads((DATA_DIR / "paper10.json").read_text(encoding="utf-8"))
    pts = src["points"]
    src["points"] = {"best": pts["W_hat"],
                     "witness": {"hidden": 2, "activation": "sigmoid",
                                 "theta": ["6", "-4", "4", "0", "-10", "-1", "1", "0", "2"]}}
    f.write_text(json.dumps(src))
    rep = certify_file(f, cross_check=True, rounding=False)
    assert list(rep["points"]) == ["best"]                 # the point named 'witness' is not certified
    b = rep["points"]["best"]
    assert b["certified"] and b["witness_name"] == "witness" and b["cross_check"]["ok"]
    src["points"]["W0"] = pts["W0"]
    src["witness"] = "W0"                                    # top-level key wins over the 'witness' point
    f.write_text(json.dumps(src))
    rep = certify_file(str(f), point_names=["best"], rounding=False)
    assert rep["points"]["best"]["witness_name"] == "W0"
    rep = certify_file(str(f), point_names=["best"], witness=["0"] * 9, rounding=False)
    assert rep["points"]["best"]["witness_name"] == "given"
    assert rep["points"]["best"]["reason"] == "witness not lower"


def test_bad_input_raises_data_error(tmp_path):
    with pytest.raises(DataError):
        certify_file("paper10", point_names=["nope"])
    with pytest.raises(DataError):
        certify_file("paper10", witness="nope")
    with pytest.raises(DataError):
        certify_file("xor")                                  # no points
    with pytest.raises(DataError):
        certify_file(tmp_path / "missing.json")


def test_cli_certify(tmp_path):
    from click.testing import CliRunner

    from badminima.cli import main
    out = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["certify", "relu_d2", "--point", "prop2_local", "--witness", "prop2_global",
                                    "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "CERTIFIED" in res.output and "not global" in res.output
    assert json.loads(out.read_text())["points"]["prop2_local"]["not_global"] is True
    res = CliRunner().invoke(main, ["certify", "relu_d2", "--point", "nope"])
    assert res.exit_code == 2
