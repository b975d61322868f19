"""``calaudit compare``, ``--group-by``, ``--find-segments`` and ``--target-accuracy``
through the command line: the documented JSON, and one-line errors for bad input.

The shipped ``sample_data/ad_review`` files are simulated with a known planted
problem (vendor A is overconfident on mobile ads in French; vendor B's rows are
shuffled): see ``sample_data/make_vendor_sample.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clitools import error_line, invoke

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"
VENDOR_A = SAMPLES / "ad_review" / "vendor_a.csv"
VENDOR_B = SAMPLES / "ad_review" / "vendor_b.csv"


def _json(result) -> dict:
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return json.loads(result.stdout)


# ------------------------------------------------------------------ run: segments and routing


def test_group_by_gives_one_object_per_segment_with_the_documented_keys():
    document = _json(invoke("run", VENDOR_A, "--group-by", "channel", "--group-by", "language", "--bootstrap", "200",
                            "--json", "-"))
    frame = pd.read_csv(VENDOR_A)
    segments = document["groups"]
    assert {(s["column"], s["value"]) for s in segments} == {
        *(("channel", v) for v in frame["channel"].unique()), *(("language", v) for v in frame["language"].unique())}
    for segment in segments:
        assert {"column", "value", "n", "metrics", "intervals", "p_value", "p_adjusted", "flagged"} <= set(segment)
        assert segment["n"] == int((frame[segment["column"]] == segment["value"]).sum())
        if not segment["too_small"]:
            low, high = segment["intervals"]["ece"]["low"], segment["intervals"]["ece"]["high"]
            assert low <= segment["metrics"]["ece"] <= high
            assert segment["p_value"] <= segment["p_adjusted"] <= 1.0
    (test,) = document["group_tests"]
    assert test["tested"] == sum(not s["too_small"] for s in segments)
    assert test["correction"] in ("holm", "benjamini-hochberg")


def test_group_by_segment_metrics_equal_an_audit_of_the_segment_alone(tmp_path):
    frame = pd.read_csv(VENDOR_A)
    document = _json(invoke("run", VENDOR_A, "--group-by", "channel", "--bootstrap", "0", "--json", "-"))
    mobile = next(s for s in document["groups"] if s["value"] == "mobile")
    alone = tmp_path / "mobile.csv"
    frame[frame["channel"] == "mobile"].to_csv(alone, index=False)
    audit = _json(invoke("run", alone, "--bootstrap", "0", "--json", "-"))
    for name in ("accuracy", "ece", "brier", "nll"):
        assert mobile["metrics"][name] == pytest.approx(audit["metrics"][name], rel=1e-9, abs=1e-12)


def test_find_segments_finds_the_planted_pair_and_says_how_many_were_tested():
    document = _json(invoke("run", VENDOR_A, "--find-segments", "--bootstrap", "200", "--json", "-"))
    (test,) = document["group_tests"]
    assert test["found_by"] == "search"
    assert test["tested"] > 20  # every level of channel and language, budget quartiles, and their pairs
    flagged = [s for s in document["groups"] if s["flagged"]]
    assert any("mobile" in s["value"] and "fr" in s["value"] for s in flagged), [
        (s["column"], s["value"]) for s in flagged]


def test_routing_is_reported_for_the_default_and_the_asked_targets():
    default = _json(invoke("run", VENDOR_A, "--bootstrap", "0", "--json", "-"))
    assert [t["target"] for t in default["routing"]["targets"]] == [0.9, 0.95, 0.99]
    asked = _json(invoke("run", VENDOR_A, "--bootstrap", "0", "--target-accuracy", "0.8", "--json", "-"))
    (target,) = asked["routing"]["targets"]
    assert target["target"] == 0.8
    assert {"target", "achievable", "threshold", "fast_track_share", "fast_track_accuracy",
            "fast_track_accuracy_low", "review_share", "method"} <= set(target)
    assert "aurc" in asked["routing"]["risk_coverage"]
    frame = pd.read_csv(VENDOR_A)
    columns = [c for c in frame if c.startswith("prob_")]
    proba = frame[columns].to_numpy()
    # Vendor A's 37 most confident cases are right only 27 times: one sequence of tests
    # from the top stopped there; the chained sequences fast-track over half at 80%.
    assert target["achievable"] and target["fast_track_share"] > 0.5
    fast = proba.max(axis=1) >= target["threshold"]
    assert target["fast_track_share"] == pytest.approx(fast.mean())
    right = np.array(columns)[proba.argmax(axis=1)] == ("prob_" + frame["label"].astype(str)).to_numpy()
    assert target["fast_track_accuracy"] == pytest.approx(right[fast].mean())
    assert sorted(right[np.argsort(-proba.max(axis=1), kind="stable")][:37].tolist()).count(True) == 27


def test_routing_prints_every_digit_of_a_target():
    result = invoke("run", VENDOR_B, "--bootstrap", "0", "--target-accuracy", "0.9999", "--target-accuracy", "0.8")
    assert result.exit_code == 0, result.output
    block = result.stdout[result.stdout.index("Review routing"):]
    assert "  99.99%       none  too few cases" in block and "could not show 99.99% accuracy" in block
    assert "100.0%" not in block and "80.0%" not in block
    assert "Fast-track cases above 69% confidence" in block


def test_routing_with_temperature_baseline_reports_the_recalibrated_thresholds():
    document = _json(invoke("run", VENDOR_A, "--bootstrap", "0", "--baseline", "temperature", "--json", "-"))
    assert document["routing"]["recalibrated"] is not None
    assert len(document["routing"]["recalibrated"]["targets"]) == 3


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "nan"])
def test_a_target_outside_zero_one_is_a_usage_error(value):
    line = error_line(invoke("run", VENDOR_A, "--target-accuracy", value), 2)
    assert "--target-accuracy" in line


def test_a_missing_group_column_is_one_line_naming_it():
    line = error_line(invoke("run", VENDOR_A, "--group-by", "region"), 3)
    assert "'region'" in line and "vendor_a.csv" in line and "channel" in line


def test_an_all_empty_group_column_is_one_line_naming_it(tmp_path):
    frame = pd.read_csv(VENDOR_A)
    frame["region"] = np.nan
    path = tmp_path / "with_empty.csv"
    frame.to_csv(path, index=False)
    line = error_line(invoke("run", path, "--group-by", "region"), 3)
    assert "'region'" in line and "empty in every row" in line


def test_groups_csv_beside_the_data_of_an_onnx_run(tmp_path):
    data = tmp_path / "table"
    shutil.copytree(SAMPLES / "breast_cancer_table", data)
    n_rows = len(pd.read_csv(data / "data.csv"))
    rng = np.random.default_rng(0)
    pd.DataFrame({"site": rng.choice(["north", "south"], n_rows)}).to_csv(data / "groups.csv", index=False)
    document = _json(invoke("run", SAMPLES / "breast_cancer_forest.onnx", data, "--group-by", "site",
                            "--bootstrap", "0", "--json", "-"))
    assert {s["value"] for s in document["groups"]} == {"north", "south"}
    assert sum(s["n"] for s in document["groups"]) == n_rows


def test_groups_csv_with_the_wrong_number_of_rows_is_one_line(tmp_path):
    data = tmp_path / "table"
    shutil.copytree(SAMPLES / "breast_cancer_table", data)
    pd.DataFrame({"site": ["north"] * 3}).to_csv(data / "groups.csv", index=False)
    line = error_line(invoke("run", SAMPLES / "breast_cancer_forest.onnx", data, "--group-by", "site"), 3)
    assert "groups.csv" in line and "3 rows" in line


# ------------------------------------------------------------------ compare


def test_compare_writes_the_documented_json():
    document = _json(invoke("compare", VENDOR_A, VENDOR_B, "--id-col", "item_id", "--bootstrap", "200",
                            "--json", "-"))
    assert document["format"] == "calaudit.compare" and document["format_version"] == 1
    assert [m["name"] for m in document["models"]] == ["vendor_a", "vendor_b"]
    for model in document["models"]:
        assert {"name", "input", "n_samples", "metrics", "intervals"} <= set(model)
        assert model["n_samples"] == 4000
    ece = next(d for d in document["differences"] if d["metric"] == "ece")
    assert {"a", "b", "metric", "difference", "low", "high", "distinguishable"} <= set(ece)
    a, b = (m["metrics"]["ece"] for m in document["models"])
    assert ece["difference"] == pytest.approx(a - b, abs=1e-12)
    assert ece["low"] <= ece["difference"] <= ece["high"]
    assert ece["distinguishable"] == (ece["low"] > 0 or ece["high"] < 0)
    ranking = document["ranking"]
    assert ranking["metric"] == "ece" and sorted(ranking["order"]) == ["vendor_a", "vendor_b"]
    if ece["distinguishable"]:
        better, worse = ("vendor_b", "vendor_a") if ece["difference"] > 0 else ("vendor_a", "vendor_b")
        assert f"{better} is better calibrated than {worse}" in ranking["sentence"]


def test_compare_aligns_by_id_whatever_the_row_order():
    by_id = _json(invoke("compare", VENDOR_A, VENDOR_B, "--id-col", "item_id", "--bootstrap", "200", "--json", "-"))
    alone = _json(invoke("run", VENDOR_B, "--bootstrap", "0", "--json", "-"))
    b = next(m for m in by_id["models"] if m["name"] == "vendor_b")
    for name in ("accuracy", "ece", "brier", "nll", "classwise_ece"):
        assert b["metrics"][name] == pytest.approx(alone["metrics"][name], rel=1e-9, abs=1e-12)


def test_compare_without_id_needs_the_same_labels_row_by_row():
    line = error_line(invoke("compare", VENDOR_A, VENDOR_B, "--bootstrap", "200"), 3)
    assert "row" in line and "label" in line


def test_a_model_compared_with_itself_differs_by_exactly_zero(tmp_path):
    copy = tmp_path / "copy.csv"
    shutil.copyfile(VENDOR_A, copy)
    document = _json(invoke("compare", VENDOR_A, copy, "--bootstrap", "200", "--json", "-"))
    for item in document["differences"]:
        assert item["difference"] == 0.0 and item["low"] == 0.0 and item["high"] == 0.0
        assert item["distinguishable"] is False
    assert "cannot be told apart" in document["ranking"]["sentence"]


def test_compare_names_and_gate_apply_to_every_model():
    result = invoke("compare", VENDOR_A, VENDOR_B, "--id-col", "item_id", "--bootstrap", "200",
                    "--name", "Vendor A", "--name", "Vendor B", "--max-ece", "0.05")
    assert result.exit_code == 1
    assert "Vendor A" in result.stdout and "Vendor B" in result.stdout
    assert result.stderr.startswith("calaudit: gate failed: Vendor A")


@pytest.mark.parametrize("mutate, words", [
    (lambda f: pd.concat([f, f.iloc[[5]]], ignore_index=True), "duplicate"),
    (lambda f: f.assign(item_id=f["item_id"].where(f.index != 7, "ad-99999")), "ad-99999"),
])
def test_bad_ids_are_one_line_naming_the_id(tmp_path, mutate, words):
    path = tmp_path / "vendor_b.csv"
    mutate(pd.read_csv(VENDOR_B)).to_csv(path, index=False)
    line = error_line(invoke("compare", VENDOR_A, path, "--id-col", "item_id", "--bootstrap", "200"), 3)
    assert words in line.lower() or words in line


def test_a_missing_id_column_is_one_line():
    line = error_line(invoke("compare", VENDOR_A, VENDOR_B, "--id-col", "ticket", "--bootstrap", "200"), 3)
    assert "'ticket'" in line


@pytest.mark.parametrize("args, words", [
    (["--name", "only one"], "--name"),
    (["--bootstrap", "0"], "--bootstrap 0"),
])
def test_compare_usage_errors(args, words):
    line = error_line(invoke("compare", VENDOR_A, VENDOR_B, "--id-col", "item_id", *args), 2)
    assert words in line


def test_compare_needs_two_inputs_and_distinct_names(tmp_path):
    assert "at least two" in error_line(invoke("compare", VENDOR_A), 2)
    other = tmp_path / "vendor_a.csv"
    shutil.copyfile(VENDOR_A, other)
    assert "--name" in error_line(invoke("compare", VENDOR_A, other, "--bootstrap", "200"), 2)


def test_compare_onnx_models_over_one_data_directory(tmp_path):
    model = SAMPLES / "breast_cancer_forest.onnx"
    assert "--data" in error_line(invoke("compare", model, model, "--name", "a", "--name", "b"), 2)
    document = _json(invoke("compare", model, model, "--name", "first", "--name", "second",
                            "--data", SAMPLES / "breast_cancer_table", "--bootstrap", "200", "--json", "-"))
    assert all(d["difference"] == 0.0 and not d["distinguishable"] for d in document["differences"])


def test_compare_out_dir_holds_json_summary_and_report(tmp_path):
    out = tmp_path / "out"
    result = invoke("compare", VENDOR_A, VENDOR_B, "--id-col", "item_id", "--bootstrap", "200",
                    "--group-by", "channel", "--out-dir", out)
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "report.html", "summary.txt"]
    document = json.loads((out / "compare.json").read_text())
    assert all(model["groups"] for model in document["models"])
    html = (out / "report.html").read_text()
    assert "vendor_a" in html and "vendor_b" in html
