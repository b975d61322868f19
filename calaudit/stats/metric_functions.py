"""The standalone function of every metric, keyed like :data:`calaudit.METRICS`.

Binned metrics are functions of :mod:`calaudit.stats.metrics`; the estimators
(:mod:`calaudit.stats.estimators`) get a function here that validates its input, bins it and
computes every estimate, so that each metric can be called on its own from a notebook
and the registry-driven tests can call them all alike.
"""

from __future__ import annotations

from typing import Any

from .estimates import compute_estimates
from .metric_info import METRICS
from .metrics import (
    DEFAULT_N_BINS,
    accuracy_score,
    brier_loss,
    brier_positive_loss,
    classwise_calibration_error,
    compute_metrics,
    confidence_gap,
    expected_calibration_error,
    maximum_calibration_error,
    nll_loss,
    positive_calibration_error,
    require_binary,
    validated_inputs,
)


def _estimator(name: str):
    """A standalone function for an estimator of :mod:`calaudit.stats.estimators`."""

    def function(y_true: Any, y_proba: Any, *, n_bins: int = DEFAULT_N_BINS, seed: int = 0) -> float:
        y, proba = validated_inputs(y_true, y_proba)
        if METRICS[name].binary_only:
            require_binary(proba)
        suite = compute_metrics(y, proba, n_bins=n_bins)
        return float(compute_estimates(y, proba, suite, seed=seed).values[name])

    function.__name__ = name
    function.__doc__ = f"{METRICS[name].title}: {METRICS[name].definition}."
    return function


#: The standalone function of each metric, keyed like :data:`METRICS`.
METRIC_FUNCTIONS = {
    "accuracy": accuracy_score,
    "ece": expected_calibration_error,
    "ece_equal_mass": lambda y, p, *, n_bins=DEFAULT_N_BINS: expected_calibration_error(
        y, p, n_bins=n_bins, binning="equal-mass"
    ),
    "mce": maximum_calibration_error,
    "classwise_ece": classwise_calibration_error,
    "brier": brier_loss,
    "brier_positive": brier_positive_loss,
    "nll": nll_loss,
    "confidence_gap": confidence_gap,
    "positive_ece": positive_calibration_error,
    **{name: _estimator(name) for name in (
        "ece_debiased", "smooth_ece", "brier_reliability", "brier_resolution", "brier_uncertainty",
        "calibration_slope", "calibration_intercept", "calibration_p_value", "spiegelhalter_p_value",
    )},
}
