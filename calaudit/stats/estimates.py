"""The estimators of :mod:`calaudit.stats.estimators` applied to one audit's data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import estimators
from .metrics import MetricSuite

_NO_FIT = ("the logistic recalibration fit does not exist (every confidence the same, all right, all wrong, or "
           "perfectly separated)")
#: Why a metric can be undefined on some data (``diagnostics.undefined_metrics``).
UNDEFINED_REASONS = {
    "calibration_slope": _NO_FIT,
    "calibration_intercept": _NO_FIT,
    "spiegelhalter_p_value": "every probability is 0 or 1, so the test statistic is undefined",
}
#: The reason of a metric :data:`UNDEFINED_REASONS` does not name.
UNDEFINED = "not defined on these data"


@dataclass(frozen=True, eq=False)
class Estimates:
    """Estimator values (keyed like :data:`calaudit.METRICS`) and what backs them."""

    values: dict[str, float]
    smooth_curve: estimators.SmoothCurve
    consistency: estimators.ConsistencyTest
    brier_within_bin: float


def compute_estimates(
    y_true: np.ndarray, y_proba: np.ndarray, suite: MetricSuite, *, seed: int = 0, simulations: int = 1000
) -> Estimates:
    n_rows = y_proba.shape[0]
    top = suite.top
    smooth, curve = estimators.smooth_ece(top.confidence, top.correct)
    decomposition = estimators.brier_decomposition(suite.classwise, suite.values["brier"], n_rows)
    slope, intercept = estimators.calibration_slope_intercept(top.confidence, top.correct)
    consistency = estimators.consistency_test(
        top.confidence, suite.top_label, suite.top_bin_ids, suite.values["ece"], simulations=simulations, seed=seed,
    )
    values = {
        "ece_debiased": estimators.debiased_ece(suite.equal_mass, n_rows),
        "smooth_ece": smooth,
        "brier_reliability": decomposition.reliability,
        "brier_resolution": decomposition.resolution,
        "brier_uncertainty": decomposition.uncertainty,
        "calibration_slope": slope,
        "calibration_intercept": intercept,
        "calibration_p_value": consistency.p_value,
    }
    if y_proba.shape[1] == 2:
        values["spiegelhalter_p_value"] = estimators.spiegelhalter_p_value(y_proba[:, 1], (y_true == 1))
    return Estimates(values, curve, consistency, decomposition.within_bin)
