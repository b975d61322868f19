"""The streamed audit from merged statistics equals the in-memory audit where it is exact."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from calaudit import audit_predictions
from calaudit.engine.stream import APPROXIMATE, audit_statistics, stream_statistics
from calaudit.loaders.table import load_prediction_file
from calaudit.reporters import html, terminal
from calaudit.result import AuditResult

ROOT = Path(__file__).resolve().parent.parent


def _batches(predictions, size):
    return [SimpleNamespace(y=predictions.y_true[i:i + size], proba=predictions.y_proba[i:i + size])
            for i in range(0, predictions.n_samples, size)]


@pytest.mark.parametrize("name", ["digits_gaussian_nb.csv", "breast_cancer_logistic_regression.parquet"])
@pytest.mark.parametrize("size", [1, 97, 10_000])
def test_streamed_figures_equal_the_in_memory_audit(name, size):
    predictions = load_prediction_file(ROOT / "sample_data" / name)
    statistics, info = stream_statistics(_batches(predictions, size))
    assert info["batches"] == -(-predictions.n_samples // size)
    streamed = audit_statistics(statistics, class_names=predictions.class_names, source={}, options={},
                                execution={"engine": "stream", **info})
    memory = audit_predictions(predictions, bootstrap=0)
    bounds = streamed.extras["execution"]["sketch"]["bounds"]
    for key, value in streamed.metrics.items():
        if key in APPROXIMATE:  # from the fine histogram, within the bound it states
            assert abs(value - memory.metrics[key]) <= bounds[key], key
        elif key == "calibration_p_value":  # the large-sample method; the in-memory one simulates rows here
            assert 0.0 < value <= 1.0
        else:
            assert value == pytest.approx(memory.metrics[key], abs=1e-9), key
    assert set(memory.metrics) == set(streamed.metrics)
    assert len(streamed.reliability.bins) == len(memory.reliability.bins)
    for got, want in zip(streamed.reliability.bins, memory.reliability.bins):
        assert got.count == want.count and got.correct == want.correct
        assert got.mean_confidence == pytest.approx(want.mean_confidence, abs=1e-12)
    assert [c.support for c in streamed.per_class] == [c.support for c in memory.per_class]
    assert [c.predicted for c in streamed.per_class] == [c.predicted for c in memory.per_class]
    for got, want in zip(streamed.per_class, memory.per_class):
        assert got.ece == pytest.approx(want.ece, abs=1e-12)
        assert got.mean_probability == pytest.approx(want.mean_probability, abs=1e-12)
    assert streamed.verdict.key == memory.verdict.key
    assert [c.name for c in streamed.class_reliability] == [c.name for c in memory.class_reliability]


def test_the_streamed_result_renders_and_round_trips():
    predictions = load_prediction_file(ROOT / "sample_data" / "digits_gaussian_nb.csv")
    statistics, info = stream_statistics(_batches(predictions, 200))
    result = audit_statistics(statistics, class_names=predictions.class_names, source={"kind": "predictions-dataset"},
                              options={}, execution={"engine": "stream", **info})
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["execution"]["engine"] == "stream" and data["execution"]["batches"] == 5
    again = AuditResult.from_dict(data)
    assert again.metrics == result.metrics and again.extras["execution"] == data["execution"]
    assert "899 predictions" in terminal.render(result)
    assert "<html" in html.render(result)


def test_no_rows_is_refused():
    with pytest.raises(ValueError, match="nothing to audit"):
        stream_statistics([])
    empty = SimpleNamespace(y=np.empty(0, dtype=np.intp), proba=np.empty((0, 3)))
    with pytest.raises(ValueError, match="nothing to audit"):
        stream_statistics([empty])
