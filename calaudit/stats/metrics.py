"""The calibration metrics of docs/metrics.md.

Every metric is defined once here; :data:`METRICS` (from
:mod:`calaudit.stats.metric_info`) lists them with their direction (lower / higher /
closer to zero is better) and parameters, so reporters and the gate can list them
generically. The public functions follow scikit-learn's
conventions: data first, options keyword-only, ``*_loss`` / ``*_error`` lower is
better. :func:`compute_metrics` evaluates the whole suite from one set of per-row
reductions (:class:`TopLabel`), which is what :func:`calaudit.audit` uses.

References: Naeini, Cooper & Hauskrecht (2015), "Obtaining well calibrated
probabilities using Bayesian binning" (ECE, MCE); Guo, Pleiss, Sun & Weinberger (2017),
"On calibration of modern neural networks" (right-closed bins); Nixon et al. (2019),
"Measuring calibration in deep learning" (equal-mass bins); Kull et al. (2019),
"Beyond temperature scaling" (classwise ECE); Brier (1950), "Verification of forecasts
expressed in terms of probability".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .binning import BinStatistics, EqualWidthBinner, equal_width_bin_ids, equal_width_edges
from .limits import MAX_BINS  # noqa: F401 - re-exported: the bound of n_bins
from .metric_info import BETTER_WORDS, METRICS, NLL_EPS, Direction, MetricInfo  # noqa: F401 - re-exported

DEFAULT_N_BINS = 15


def _reduction_view(array: np.ndarray) -> np.ndarray:
    """A view for reading only: numpy's row-wise argmax runs 1.3-4x slower on
    read-only arrays, so reductions go through a writeable view of the same memory
    when its owner allows one. Nothing is ever written through it."""
    view = array.view()
    try:
        view.flags.writeable = True
    except ValueError:  # memory that is read-only at its source stays so
        pass
    return view


@dataclass(frozen=True, eq=False)
class TopLabel:
    """Per-row reductions shared by every metric, each computed in one pass.

    ``prediction`` = argmax (ties to the lowest index), ``confidence`` = the gathered
    maximum, ``correct`` = 1.0 where the prediction is the true class (float64, so it
    can weight a bincount), ``true_probability`` = ``P[i, y_i]``.
    """

    prediction: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray
    true_probability: np.ndarray

    @classmethod
    def of(cls, y_true: np.ndarray, y_proba: np.ndarray) -> TopLabel:
        n_rows, n_classes = y_proba.shape
        y_proba = _reduction_view(y_proba)
        flat = y_proba.reshape(-1)
        row_start = np.arange(0, n_rows * n_classes, n_classes, dtype=np.intp)
        prediction = y_proba.argmax(axis=1)
        # Gathering from the flat matrix is faster than 2-D fancy indexing.
        confidence = flat.take(row_start + prediction)
        correct = (prediction == y_true).astype(np.float64)
        return cls(prediction, confidence, correct, flat.take(row_start + y_true))


def classwise_statistics(
    y_true: np.ndarray, y_proba: np.ndarray, n_bins: int, *, true_probability: np.ndarray | None = None
) -> BinStatistics:
    """Equal-width statistics of every column ``P[:, k]`` against ``1[y == k]``.

    Returns arrays of shape ``(K, n_bins)``. Rows are processed in blocks of about
    130,000 entries with reused buffers, so no ``N x K`` integer temporary is built
    and the work stays in cache; the outcome sums need only the true-class column,
    one value per row.
    """
    n_rows, n_classes = y_proba.shape
    size = n_classes * n_bins
    count = np.zeros(size)
    sum_value = np.zeros(size)
    block_rows = max(1, (1 << 17) // n_classes)
    binner = EqualWidthBinner(n_bins, block_rows * n_classes)
    # Key of (class k, 0-based bin b) = k * n_bins + b; the binner's ids are 1-based.
    offsets = np.tile(np.arange(n_classes, dtype=np.intp) * n_bins - 1, block_rows)
    for start in range(0, n_rows, block_rows):  # loop over blocks of rows, not rows
        block = y_proba[start : start + block_rows].reshape(-1)
        keys = binner.bin_ids(block, offsets[: block.shape[0]])
        count += np.bincount(keys, minlength=size)
        sum_value += np.bincount(keys, weights=block, minlength=size)
    if true_probability is None:
        true_probability = y_proba[np.arange(n_rows), y_true]
    true_keys = equal_width_bin_ids(true_probability, n_bins) + y_true * n_bins
    sum_outcome = np.bincount(true_keys, minlength=size).astype(np.float64)
    shape = (n_classes, n_bins)
    return BinStatistics(
        count.reshape(shape), sum_value.reshape(shape), sum_outcome.reshape(shape), equal_width_edges(n_bins)
    )


@dataclass(frozen=True, eq=False)
class MetricSuite:
    """Everything :func:`compute_metrics` derives: values and the statistics behind them."""

    values: dict[str, float]
    top_bin_ids: np.ndarray
    top_label: BinStatistics
    equal_mass: BinStatistics
    classwise: BinStatistics
    positive: BinStatistics | None
    top: TopLabel


def compute_metrics(y_true: np.ndarray, y_proba: np.ndarray, *, n_bins: int = DEFAULT_N_BINS) -> MetricSuite:
    """Evaluate every applicable metric on validated inputs.

    ``y_true`` must be intp class indices and ``y_proba`` a float64 ``(N, K)`` matrix
    whose rows sum to 1 (as :class:`calaudit.Predictions` guarantees).
    """
    n_rows, n_classes = y_proba.shape
    top = TopLabel.of(y_true, y_proba)
    top_bin_ids = equal_width_bin_ids(top.confidence, n_bins)
    top_label = BinStatistics.from_bin_ids(
        top_bin_ids, top.confidence, top.correct, n_bins, edges=equal_width_edges(n_bins)
    )
    equal_mass = BinStatistics.equal_mass(top.confidence, top.correct, n_bins)
    classwise = classwise_statistics(y_true, y_proba, n_bins, true_probability=top.true_probability)
    flat = y_proba.reshape(-1)
    positive = positive_squared_error = None
    if n_classes == 2:
        positive_outcome = (y_true == 1).astype(np.float64)
        positive = BinStatistics.equal_width(y_proba[:, 1], positive_outcome, n_bins)
        residual = y_proba[:, 1] - positive_outcome
        positive_squared_error = float(np.dot(residual, residual))
    values = metrics_of_sums(
        n_rows, n_right=float(top.correct.sum()), sum_confidence=float(top.confidence.sum()),
        sum_squared_probability=float(np.dot(flat, flat)), sum_true_probability=float(top.true_probability.sum()),
        sum_nll=float(-np.log(np.maximum(top.true_probability, NLL_EPS)).sum()), top_label=top_label,
        classwise=classwise, positive=positive, positive_squared_error=positive_squared_error,
    )
    values["ece_equal_mass"] = float(equal_mass.weighted_error(n_rows))
    ordered = {name: values[name] for name in METRICS if name in values}
    return MetricSuite(ordered, top_bin_ids, top_label, equal_mass, classwise, positive, top)


def brier_of_sums(sum_squared_probability: Any, sum_true_probability: Any, n_rows: int) -> Any:
    """Multiclass Brier score from its sums: ``sum_k (P_k - 1[y == k])^2 = sum_k P_k^2 - 2 P_y + 1``,
    so ``brier = (sum P^2 - 2 sum P_y) / N + 1``, clipped to 0..2 (the expansion can round
    a hair outside); arrays of sums (a bootstrap's resamples) give one score each."""
    return np.clip((sum_squared_probability - 2.0 * sum_true_probability) / n_rows + 1.0, 0.0, 2.0)


def metrics_of_sums(
    n_rows: int, *, n_right: float, sum_confidence: float, sum_squared_probability: float,
    sum_true_probability: float, sum_nll: float, top_label: BinStatistics, classwise: BinStatistics,
    positive: BinStatistics | None = None, positive_squared_error: float | None = None,
) -> dict[str, float]:
    """Every metric of section 4 of docs/metrics.md that sums give, each defined here
    once: from the rows (:func:`compute_metrics`) or from streamed sums
    (:meth:`calaudit.engine.statistics.StreamStatistics.metrics`) alike.

    ``n_right``: rows whose top label is right; ``sum_confidence``: of the top-label
    confidence; ``sum_squared_probability``: of every ``P[i, k]**2``;
    ``sum_true_probability``: of ``P[i, y_i]``; ``sum_nll``: of ``-log(max(P[i, y_i],
    eps))``; the equal-width bins of the top label and of every class column; for
    ``K = 2`` column 1's bins and ``sum (P[i, 1] - y_i)**2``.
    """
    accuracy = n_right / n_rows
    values = {
        "accuracy": accuracy,
        "ece": float(top_label.weighted_error(n_rows)),
        "mce": float(top_label.max_error()),
        "classwise_ece": float(classwise.weighted_error(n_rows).mean()),
        "brier": float(brier_of_sums(sum_squared_probability, sum_true_probability, n_rows)),
        "nll": sum_nll / n_rows,
        "confidence_gap": sum_confidence / n_rows - accuracy,
    }
    if positive is not None:
        values["brier_positive"] = positive_squared_error / n_rows
        values["positive_ece"] = float(positive.weighted_error(n_rows))
    return values


# --- one function per metric, for notebooks and for the registry-driven tests -------


def validated_inputs(y_true: Any, y_proba: Any) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities as a standalone metric function takes them, validated
    like the audit's (:meth:`calaudit.predictions.Predictions.from_arrays`)."""
    from ..predictions.value import Predictions

    predictions = Predictions.from_arrays(y_true, y_proba)
    return predictions.y_true, predictions.y_proba


def _metric(name: str, y_true: Any, y_proba: Any, n_bins: int = DEFAULT_N_BINS, *, binary: bool = False) -> float:
    """One metric of :func:`compute_metrics` on validated inputs: each standalone
    function is the suite's definition, not a second implementation of it."""
    y, proba = validated_inputs(y_true, y_proba)
    if binary:
        require_binary(proba)
    return float(compute_metrics(y, proba, n_bins=n_bins).values[name])


def accuracy_score(y_true: Sequence[Any] | np.ndarray, y_proba: Any) -> float:
    """Share of rows whose most probable class (ties: lowest index) is the true one."""
    return _metric("accuracy", y_true, y_proba)


def expected_calibration_error(
    y_true: Any, y_proba: Any, *, n_bins: int = DEFAULT_N_BINS, binning: Literal["equal-width", "equal-mass"] = "equal-width"
) -> float:
    """Top-label ECE: ``sum_m (n_m / N) |acc_m - conf_m|`` (Naeini et al. 2015; Guo et al. 2017).

    Bins of the confidence ``c_i = max_k P[i,k]``: right-closed equal-width by default,
    or equal-mass (Nixon et al. 2019) with ``binning="equal-mass"``.
    """
    if binning not in ("equal-width", "equal-mass"):
        raise ValueError(f"binning must be 'equal-width' or 'equal-mass', got {binning!r}")
    return _metric("ece" if binning == "equal-width" else "ece_equal_mass", y_true, y_proba, n_bins)


def maximum_calibration_error(y_true: Any, y_proba: Any, *, n_bins: int = DEFAULT_N_BINS) -> float:
    """MCE: ``max_m |acc_m - conf_m|`` over non-empty equal-width bins (Naeini et al. 2015)."""
    return _metric("mce", y_true, y_proba, n_bins)


def classwise_calibration_error(y_true: Any, y_proba: Any, *, n_bins: int = DEFAULT_N_BINS) -> float:
    """Classwise ECE: ``(1/K) sum_k sum_m (n_km / N) |acc_km - conf_km|`` (Kull et al. 2019).

    Bins of each column ``P[:, k]`` with outcome ``1[y == k]``.
    """
    return _metric("classwise_ece", y_true, y_proba, n_bins)


def brier_loss(y_true: Any, y_proba: Any) -> float:
    """Multiclass Brier score ``mean_i sum_k (P[i,k] - 1[y_i == k])^2`` in 0..2 (Brier 1950)."""
    return _metric("brier", y_true, y_proba)


def brier_positive_loss(y_true: Any, y_proba: Any) -> float:
    """Binary Brier score ``mean_i (P[i,1] - y_i)^2`` (scikit-learn's ``brier_score_loss``)."""
    return _metric("brier_positive", y_true, y_proba, binary=True)


def nll_loss(y_true: Any, y_proba: Any) -> float:
    """Negative log-likelihood ``-mean_i log(max(P[i, y_i], eps))``, ``eps = 2**-52``."""
    return _metric("nll", y_true, y_proba)


def confidence_gap(y_true: Any, y_proba: Any) -> float:
    """``mean(c) - mean(a)``: above 0 the model is overconfident, below 0 underconfident."""
    return _metric("confidence_gap", y_true, y_proba)


def positive_calibration_error(y_true: Any, y_proba: Any, *, n_bins: int = DEFAULT_N_BINS) -> float:
    """Binary only: equal-width ECE of ``P[:, 1]`` against ``y`` (scikit-learn's ``calibration_curve`` bins)."""
    return _metric("positive_ece", y_true, y_proba, n_bins, binary=True)


def require_binary(proba: np.ndarray) -> None:
    """Refuse a model with more than two classes, for the metrics defined for K = 2 only."""
    if proba.shape[1] != 2:
        raise ValueError(f"this metric is defined for binary models only; got {proba.shape[1]} classes")
