"""Logits declared per input (README, "Comparing models"; docs/metrics.md, "Input validity"):

* ``compare a.csv b_logits.csv --logits`` used to softmax a's probabilities silently
  (and declare b better); ``--logits`` means every input, so it is now refused (exit 2)
  for the file holding probabilities, with the per-input way out, ``--logits-for NAME``;
* scores declared logits that are probabilities already (every row in [0, 1] summing
  to 1) are refused by ``run`` too, streamed or not, and by an ONNX run with ``--logits``;
  an ONNX output *named* logits that holds probabilities is read as probabilities;
* id alignment of a logits file: the same model's probabilities and logits (log of
  the probabilities plus a constant per row), rows and class columns in another order,
  align row for row (softmax of the aligned logits equals the aligned probabilities),
  so every metric is equal and no difference is beyond chance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calaudit.cli.logits import _input_named
from calaudit.decisions.alignment import align_predictions
from calaudit.decisions.compare import rank_models
from calaudit.decisions.comparison_result import Difference
from calaudit.errors import ProbabilitiesAsLogitsError, UsageError
from calaudit.loaders.table import load_prediction_file
from calaudit.predictions import Predictions
from calaudit.onnx.scores import decide_logits
from calaudit.predictions.transforms import softmax
from clitools import error_line, invoke

CLASSES = ("cat", "dog", "eel")
N = 240


def _model(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, (N, len(CLASSES)))
    proba = np.exp(z - z.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    y = (rng.random(N)[:, None] > proba.cumsum(axis=1)).sum(axis=1).clip(0, len(CLASSES) - 1)
    return y, proba


def _files(tmp_path):
    """a.csv: probabilities in item order; b_logits.csv: the same model's logits (log p
    plus a large per-row constant), rows shuffled and class columns reversed."""
    y, proba = _model()
    rng = np.random.default_rng(1)
    ids = np.array([f"item-{i:04d}" for i in range(N)], dtype=object)
    labels = np.asarray(CLASSES, dtype=object)[y]
    a = pd.DataFrame({"item_id": ids, "label": labels, **{f"prob_{c}": proba[:, k] for k, c in enumerate(CLASSES)}})
    logits = np.log(proba) + rng.normal(0.0, 20.0, (N, 1))
    order = rng.permutation(N)
    b = pd.DataFrame({"item_id": ids[order], "label": labels[order],
                      **{f"prob_{c}": logits[order, k] for k, c in reversed(list(enumerate(CLASSES)))}})
    assert (logits < 0).any() and (logits > 1).any()
    paths = tmp_path / "a.csv", tmp_path / "b_logits.csv"
    a.to_csv(paths[0], index=False)
    b.to_csv(paths[1], index=False)
    return paths, proba, logits


# ------------------------------------------------------------------ alignment of a logits file


def test_aligned_logits_are_the_aligned_probabilities_after_softmax(tmp_path):
    (a_path, b_path), proba, logits = _files(tmp_path)
    a = load_prediction_file(a_path)
    b = load_prediction_file(b_path, logits=True)
    (first, second), alignment = align_predictions([a, b], ["a", "b_logits"], id_col="item_id")
    assert alignment["by"] == "id"
    assert second.class_names == first.class_names == CLASSES
    np.testing.assert_array_equal(second.y_true, first.y_true)
    np.testing.assert_array_equal(second.extra_columns["item_id"].to_numpy(), first.extra_columns["item_id"].to_numpy())
    # The raw logits travel with their rows and classes: softmax of them is the first file's row.
    np.testing.assert_allclose(softmax(second.logits), first.y_proba, rtol=0, atol=1e-12)
    np.testing.assert_allclose(second.logits - second.logits[:, :1], np.log(proba) - np.log(proba[:, :1]),
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(second.y_proba, first.y_proba, rtol=0, atol=1e-12)


def test_compare_of_a_model_with_its_own_logits_finds_no_difference(tmp_path):
    (a_path, b_path), _, _ = _files(tmp_path)
    result = invoke("compare", a_path, b_path, "--id-col", "item_id", "--logits-for", "b_logits",
                    "--bootstrap", "200", "--json", "-")
    assert result.exit_code == 0, (result.stderr, result.exception)
    document = json.loads(result.stdout)
    first, second = document["models"]
    assert first["source"]["logits"] is False and second["source"]["logits"] is True
    for name, value in first["metrics"].items():
        assert second["metrics"][name] == pytest.approx(value, abs=1e-9), name
    assert document["differences"]
    for item in document["differences"]:
        assert abs(item["difference"]) <= 1e-9 and abs(item["low"]) <= 1e-9 and abs(item["high"]) <= 1e-9, item
        assert item["distinguishable"] is False, item
    assert document["ranking"]["order"] == ["a", "b_logits"]
    assert "cannot be told apart" in document["ranking"]["sentence"]


# ------------------------------------------------------------------ declaring logits per input


def test_bare_logits_on_a_probability_file_is_refused_with_the_per_input_option(tmp_path):
    (a_path, b_path), _, _ = _files(tmp_path)
    line = error_line(invoke("compare", a_path, b_path, "--id-col", "item_id", "--logits"), 2)
    assert str(a_path) in line and "probabilities already" in line
    assert "--logits-for NAME" in line


def test_logits_for_an_input_holding_probabilities_is_refused(tmp_path):
    (a_path, b_path), _, _ = _files(tmp_path)
    line = error_line(invoke("compare", a_path, b_path, "--id-col", "item_id", "--name", "Vendor A",
                             "--name", "Vendor B", "--logits-for", "Vendor A"), 2)
    assert str(a_path) in line and "drop --logits-for Vendor A" in line


@pytest.mark.parametrize("how", ["display name", "file name", "path"])
def test_an_input_is_named_by_display_name_file_name_or_path(tmp_path, how, monkeypatch):
    (a_path, b_path), _, _ = _files(tmp_path)
    monkeypatch.chdir(tmp_path)  # the inputs are typed as relative paths; "path" names them absolutely
    names = {"display name": ("Vendor A", "Vendor B"), "file name": ("a.csv", "b_logits.csv"),
             "path": (str(a_path), str(b_path))}[how]
    arguments = ["compare", "a.csv", "b_logits.csv", "--id-col", "item_id", "--name", "Vendor A", "--name", "Vendor B"]
    line = error_line(invoke(*arguments, "--logits-for", names[0]), 2)  # refused before any audit
    assert line.startswith("calaudit: error: a.csv:") and "drop --logits-for Vendor A" in line
    assert _input_named(names[1], [Path("a.csv"), Path("b_logits.csv")], ["Vendor A", "Vendor B"]) == 1


def test_an_unknown_name_and_both_options_are_usage_errors(tmp_path):
    (a_path, b_path), _, _ = _files(tmp_path)
    line = error_line(invoke("compare", a_path, b_path, "--logits-for", "vendor_c"), 2)
    assert "'vendor_c' names no input" in line and "'a', 'b_logits'" in line
    line = error_line(invoke("compare", a_path, b_path, "--logits", "--logits-for", "b_logits"), 2)
    assert "give one of them" in line


# ------------------------------------------------------------------ run, ONNX, the library


def test_run_refuses_probabilities_declared_logits_in_memory_and_streamed(tmp_path):
    (a_path, b_path), _, _ = _files(tmp_path)
    for engine in ("memory", "stream"):
        line = error_line(invoke("run", a_path, "--logits", "--engine", engine, "--bootstrap", "0"), 2)
        assert str(a_path) in line and "drop --logits" in line, line
    assert invoke("run", b_path, "--logits", "--bootstrap", "0", "-q").exit_code == 0


def test_the_library_refuses_them_too_and_accepts_real_logits_in_the_unit_interval():
    y, proba = _model()
    with pytest.raises(ProbabilitiesAsLogitsError, match="logits=False") as caught:
        Predictions.from_arrays(y, proba, logits=True)
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2
    # Logits that happen to lie in [0, 1] but whose rows do not sum to 1 are logits.
    z = np.random.default_rng(2).random((N, 3))
    np.testing.assert_allclose(Predictions.from_arrays(y, z, logits=True).y_proba, softmax(z), rtol=0, atol=1e-15)


def test_onnx_scores_declared_logits_that_are_probabilities():
    y, proba = _model()
    with pytest.raises(ProbabilitiesAsLogitsError, match="drop --logits"):
        decide_logits(proba, output_name="probabilities", logits_flag=True, row_sum_tolerance=0.01, where="m.onnx")
    use, reason = decide_logits(proba, output_name="logits", logits_flag=False, row_sum_tolerance=0.01,
                                where="m.onnx")
    assert use is False and "probabilities" in reason
    z = np.log(proba) + 3.0
    assert decide_logits(z, output_name="logits", logits_flag=False, row_sum_tolerance=0.01, where="m.onnx")[0]


# ------------------------------------------------------------------ wording of the ranking


def test_a_gap_beyond_chance_is_never_written_as_zero_points():
    """Two ECEs told apart that read the same at one decimal (3.14 and 3.16 points)."""
    for better, worse in ((0.0314, 0.0316), (0.01049, 0.01051), (0.2, 0.2000004)):
        values = {"A": better, "B": worse}
        d = better - worse
        ranking = rank_models(["B", "A"], values, [Difference("B", "A", "ece", -d, -d - 1e-9, -d + 1e-9, True)],
                              10_000_000)
        sentence = ranking.sentence
        assert "A is better calibrated than B" in sentence
        gap = sentence.split("(the ")[1].split("-point gap")[0]
        off = sentence.split("off by ")[1].split(" percentage points on average against ")
        low, high = float(off[0]), float(off[1].split(" ")[0])
        assert float(gap) > 0 and low < high, sentence
        assert float(gap) == pytest.approx(100 * (worse - better), rel=0.5), sentence


def test_an_onnx_probability_output_is_refused_with_logits_and_read_as_probabilities_when_named_logits(tmp_path):
    import onnx_graphs as g

    from calaudit.loaders.model_run import load_model_predictions

    w, b = g.weights(4, 3, seed=1)
    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    data = g.write_arrays(tmp_path / "data", x, np.arange(60) % 3)
    plain = g.save(g.prob_model(w, b), tmp_path / "plain.onnx")
    with pytest.raises(ProbabilitiesAsLogitsError, match="'probabilities' is declared to be logits.*drop --logits"):
        load_model_predictions(plain, data, logits=True)
    named = g.prob_model(w, b, output="logits")  # softmax inside, behind a misleading name
    predictions = load_model_predictions(g.save(named, tmp_path / "named.onnx"), data)
    expected = g.ort_run(named, {"x": x}).astype(np.float64)
    np.testing.assert_allclose(predictions.y_proba, expected / expected.sum(axis=1, keepdims=True), rtol=0,
                               atol=1e-12)
    assert predictions.transform == "none"
    assert predictions.source.details["scores"]["treated_as"] == "probabilities"
