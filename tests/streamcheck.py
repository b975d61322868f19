"""Checks shared by the streamed-audit tests (not a test module).

A streamed audit's figures equal the in-memory audit's: the exact ones to 1e-9, the
ones approximated from the fine histogram within the bound the JSON states
(``execution.sketch.bounds``), and ``calibration_p_value`` is the large-sample
method's (the in-memory audit simulates rows below its budget), so only its range is
checked.
"""

from __future__ import annotations

from typing import Any

import pytest

from calaudit.engine.stream import APPROXIMATE


def assert_streamed_metrics(streamed: dict[str, Any], memory: dict[str, Any]) -> None:
    """``streamed`` and ``memory`` are the JSON of the two audits of the same rows."""
    bounds = streamed["execution"]["sketch"]["bounds"]
    assert set(streamed["metrics"]) <= set(memory["metrics"])
    assert {"accuracy", "ece", "brier", "nll", "ece_equal_mass", "smooth_ece"} <= set(streamed["metrics"])
    for name, value in streamed["metrics"].items():
        if name in APPROXIMATE:
            assert abs(value - memory["metrics"][name]) <= bounds[name], (name, value, memory["metrics"][name])
        elif name == "calibration_p_value":
            assert 0.0 < value <= 1.0
        else:
            assert value == pytest.approx(memory["metrics"][name], abs=1e-9), name


def assert_streamed_routing(streamed: dict[str, Any], predictions: Any) -> None:
    """``streamed["routing"]`` is the in-memory routing of ``predictions`` (the same
    rows, a :class:`calaudit.Predictions`) with each confidence snapped down to the
    lowest confidence of its bin (pandas, not the engine): the in-memory procedure with
    one candidate per bin (calaudit.engine.routing_bins)."""
    import numpy as np
    import pandas as pd

    from calaudit.decisions.routing import route
    from calaudit.engine.routing_bins import routing_edges
    from calaudit.stats.metrics import TopLabel

    top = TopLabel.of(predictions.y_true, predictions.y_proba)
    bins = np.digitize(top.confidence, routing_edges(), right=True)
    snapped = pd.Series(top.confidence).groupby(bins).transform("min").to_numpy()
    targets = tuple(target["target"] for target in streamed["routing"]["targets"])
    assert streamed["routing"] == route(snapped, top.correct, targets).to_dict()
