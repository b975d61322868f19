"""What each metric is: its name (the JSON key), direction, meaning, definition and range.

:data:`METRICS` is the registry reporters and the gate read to list metrics generically
(lower / higher / closer to zero is better); the figures themselves are computed in
:mod:`calaudit.stats.metrics` and :mod:`calaudit.stats.estimates`. Metric names carry
their parameter where they have one (``ece-15``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

#: Probability floor of the negative log-likelihood: ``np.finfo(float).eps``.
NLL_EPS = 2.220446049250313e-16

Direction = Literal["lower", "higher", "zero", "one"]
#: How each direction is said in tables.
BETTER_WORDS = {"lower": "lower", "higher": "higher", "zero": "closer to 0", "one": "closer to 1"}


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is: its name (the JSON key), direction and meaning.

    ``better`` is ``"lower"``, ``"higher"``, ``"zero"`` or ``"one"`` (closer to 0 / 1
    is better); ``binned`` metrics take ``n_bins``; ``binary_only`` ones exist only for
    K = 2; ``interval`` is False for figures that get no bootstrap interval (p-values).
    """

    name: str
    title: str
    better: Direction
    meaning: str
    definition: str
    low: float
    high: float
    binned: bool = False
    binary_only: bool = False
    interval: bool = True

    def params(self, n_bins: int) -> dict[str, Any]:
        return {"n_bins": n_bins} if self.binned else {}

    def label(self, n_bins: int) -> str:
        """Name with its parameter, e.g. ``ece-15``."""
        return f"{self.name}-{n_bins}" if self.binned else self.name


METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo(
            "accuracy", "Accuracy", "higher",
            "share of predictions that were right",
            "mean_i 1[argmax_k P[i,k] == y_i]", 0.0, 1.0,
        ),
        MetricInfo(
            "ece", "Expected calibration error", "lower",
            "average gap between how sure the model was and how often it was right",
            "sum_m (n_m/N) |acc_m - conf_m| over equal-width bins of the top-label confidence",
            0.0, 1.0, binned=True,
        ),
        MetricInfo(
            "ece_equal_mass", "Expected calibration error (equal-mass bins)", "lower",
            "the same average gap, with bins holding equal numbers of predictions",
            "sum_m (n_m/N) |acc_m - conf_m| over equal-mass bins of the top-label confidence",
            0.0, 1.0, binned=True,
        ),
        MetricInfo(
            "mce", "Maximum calibration error", "lower",
            "largest gap between confidence and accuracy in any confidence band",
            "max_m |acc_m - conf_m| over non-empty equal-width bins", 0.0, 1.0, binned=True,
        ),
        MetricInfo(
            "classwise_ece", "Classwise expected calibration error", "lower",
            "average gap for every class's probability, not just the top one",
            "(1/K) sum_k sum_m (n_km/N) |acc_km - conf_km| over equal-width bins of P[:,k]",
            0.0, 1.0, binned=True,
        ),
        MetricInfo(
            "brier", "Brier score", "lower",
            "mean squared distance between the probabilities and what happened",
            "mean_i sum_k (P[i,k] - 1[y_i == k])^2", 0.0, 2.0,
        ),
        MetricInfo(
            "brier_positive", "Brier score (positive class)", "lower",
            "mean squared error of the positive-class probability (binary models)",
            "mean_i (P[i,1] - y_i)^2", 0.0, 1.0, binary_only=True,
        ),
        MetricInfo(
            "nll", "Negative log-likelihood", "lower",
            "how surprised the model was by the true answers; punishes confident mistakes",
            "-mean_i log(max(P[i,y_i], eps)), eps = 2.220446049250313e-16", 0.0, -math.log(NLL_EPS),
        ),
        MetricInfo(
            "confidence_gap", "Confidence gap", "zero",
            "average confidence minus accuracy: above 0 overconfident, below 0 underconfident",
            "mean_i c_i - mean_i a_i", -1.0, 1.0,
        ),
        MetricInfo(
            "positive_ece", "Positive-class ECE", "lower",
            "average gap between the positive-class probability and how often the positive class occurred",
            "sum_m (n_m/N) |freq_m - mean_m| over equal-width bins of P[:,1] against y (binary models)",
            0.0, 1.0, binned=True, binary_only=True,
        ),
        MetricInfo(
            "ece_debiased", "Debiased calibration error (l2)", "lower",
            "root-mean-square gap between confidence and accuracy, with the part chance adds removed",
            "sqrt(max(0, sum_m (n_m/N) [(acc_m - conf_m)^2 - acc_m(1 - acc_m)/(n_m - 1)])) over equal-mass bins "
            "(Kumar et al. 2019)",
            0.0, 1.0, binned=True,
        ),
        MetricInfo(
            "smooth_ece", "Smooth ECE", "lower",
            "average gap between confidence and accuracy, measured without bins (kernel smoothing)",
            "density-weighted mean |kernel-smoothed (c - a)| with the bandwidth at its fixed point "
            "(Blasiok & Nakkiran 2023)",
            0.0, 1.0,
        ),
        MetricInfo(
            "brier_reliability", "Brier reliability", "lower",
            "the part of the Brier score due to miscalibration",
            "sum_k sum_m (n_km/N) (conf_km - acc_km)^2 over classwise equal-width bins (Murphy 1973)",
            0.0, 2.0, binned=True,
        ),
        MetricInfo(
            "brier_resolution", "Brier resolution", "higher",
            "how much the probabilities separate cases that turn out differently",
            "sum_k sum_m (n_km/N) (acc_km - freq_k)^2 over classwise equal-width bins (Murphy 1973)",
            0.0, 2.0, binned=True,
        ),
        MetricInfo(
            "brier_uncertainty", "Brier uncertainty", "lower",
            "the Brier score the class frequencies alone would give: a property of the data, not the model",
            "sum_k freq_k (1 - freq_k)",
            0.0, 1.0,
        ),
        MetricInfo(
            "calibration_slope", "Calibration slope", "one",
            "below 1: confidence too extreme (overconfident); above 1: too timid",
            "b in P(right) = sigmoid(a + b logit(c)), maximum likelihood (Cox 1958)",
            -1e3, 1e3,
        ),
        MetricInfo(
            "calibration_intercept", "Calibration intercept", "zero",
            "the overall shift of the recalibrated confidence on the logit scale",
            "a in P(right) = sigmoid(a + b logit(c)), maximum likelihood (Cox 1958)",
            -1e3, 1e3,
        ),
        MetricInfo(
            "calibration_p_value", "Calibration test p-value", "higher",
            "chance that a perfectly calibrated model would show an ECE this large; small means the gap is real",
            "share of consistency resamples a*_i ~ Bernoulli(c_i) with ECE >= the measured ECE (Broecker & Smith "
            "2007)",
            0.0, 1.0, interval=False,
        ),
        MetricInfo(
            "spiegelhalter_p_value", "Spiegelhalter test p-value", "higher",
            "binary models: chance of a deviation this large from perfect calibration",
            "2 Phi(-|Z|), Z = sum (y - p)(1 - 2p) / sqrt(sum (1 - 2p)^2 p (1 - p)) (Spiegelhalter 1986)",
            0.0, 1.0, binary_only=True, interval=False,
        ),
    )
}
