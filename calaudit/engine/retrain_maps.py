"""The label-smoothing baseline of a streamed audit: reference heads retrained on the
sample, measured on every row (``calaudit run DIR --baseline label-smoothing``).

In memory (:mod:`calaudit.baselines.label_smoothing`), a prediction file's
label-smoothing baseline retrains a multinomial logistic regression on the vendor's
log-probabilities (standardised), with hard labels and with labels smoothed by each
amount of the sweep, cross-fitted on the folds. A stream does the same on the sample
the recalibrations are fitted on (:class:`~calaudit.engine.row_sample.RowSample`,
:mod:`.baseline_maps`):

* **The fits.** Per fold (the sample rows outside it) and on the whole sample, the
  features are standardised with the rows' weights, then the head is fitted on the
  weighted targets ``w_i q_ik`` (:func:`calaudit.baselines.softmax_regression.fit`
  minimises ``sum_i sum_k w_i q_ik (-log p_k) / S + ||W||^2 / (2 C S)`` with
  ``S = sum_i w_i``: scikit-learn's ``LogisticRegression`` with sample weights), one
  amount after another, each started at the previous amount's solution, as in memory.
  With weights 1 (a sample holding every row) these are the in-memory fits on the same
  folds.
* **The heads** (:class:`SoftmaxHead`: the standardisation, a ``K x K`` weight matrix
  and ``K`` intercepts) are small and pickle: the second pass
  (:class:`~calaudit.engine.baseline_maps.BaselineEvaluation`) applies them batch by
  batch, each sampled row by its fold's head and every other row by the whole-sample
  head, and sums each amount's :class:`~calaudit.engine.statistics.StreamStatistics`:
  the figures are exact on the stream given the heads.
* **The sweep's intervals** are the streamed grouped bootstrap of each amount's ECE on
  its statistics (:func:`calaudit.engine.resample.stream_intervals`), as the vendor's
  intervals are on a stream (:func:`calaudit.cli.stream_baselines.retrained_results`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..baselines import label_smoothing, recalibration
from ..baselines.comparison import SWEEP, smoothing_key

#: What the streamed reference model learns from (a prediction dataset has no features).
FEATURES = "the vendor model's log-probabilities (no features given)"


@dataclass(frozen=True)
class SoftmaxHead:
    """A retrained reference head: ``(log p - mean) / scale`` through a fitted softmax
    regression (``fit``), or, when every training row had the same target, that target
    (``constant``: the only model such rows support). ``weights`` and ``bias`` are the
    standardisation folded into the fit's scores (one product per batch):
    ``scores = log p @ weights + bias`` over the fit's classes (:meth:`of`)."""

    mean: np.ndarray
    scale: np.ndarray
    fit: Any  # calaudit.baselines.softmax_regression.SoftmaxFit, or None
    constant: np.ndarray | None = None
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None

    @classmethod
    def of(cls, mean: np.ndarray, scale: np.ndarray, fit: Any) -> SoftmaxHead:
        coef = fit.coef / scale[:, None]
        bias = fit.intercept - (mean / scale) @ fit.coef
        if fit.binary:  # the first class's score is 0
            coef, bias = np.hstack([np.zeros((coef.shape[0], 1)), coef]), np.concatenate([[0.0], bias])
        return cls(mean, scale, fit, None, np.ascontiguousarray(coef), bias)

    def features(self, proba: np.ndarray) -> np.ndarray:
        """The standardised log-probabilities the fit reads."""
        return (log_probabilities(proba) - self.mean) / self.scale

    def apply(self, proba: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """The head's probabilities for rows of vendor probabilities (``z``: their
        :func:`log_probabilities`, when already computed)."""
        proba = np.asarray(proba, dtype=np.float64)
        if self.constant is not None:
            return np.repeat(self.constant[None, :], proba.shape[0], axis=0)
        s = (log_probabilities(proba) if z is None else z) @ self.weights
        s += self.bias
        s -= s.max(axis=1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=1, keepdims=True)
        if s.shape[1] == self.fit.n_classes:
            return s
        out = np.zeros((s.shape[0], self.fit.n_classes))
        out[:, self.fit.classes] = s
        return out


def log_probabilities(proba: np.ndarray) -> np.ndarray:
    """What the heads read: ``log max(p, EPS)``, as the in-memory retraining's features."""
    return np.log(np.maximum(np.asarray(proba, dtype=np.float64), recalibration.EPS))


def standardiser(z: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``StandardScaler`` fitted with ``weights``: the weighted mean and
    standard deviation of each column (population), a constant column scaled by 1."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(z, sample_weight=weights)
    return np.asarray(scaler.mean_, dtype=np.float64), np.asarray(scaler.scale_, dtype=np.float64)


def fit_path(z: np.ndarray, y: np.ndarray, weights: np.ndarray, n_classes: int, amounts: Sequence[float], *,
             targets: np.ndarray | None = None, on_fit: Callable[[], None] | None = None) -> list[SoftmaxHead]:
    """The heads of one set of training rows (log-probabilities ``z``, labels ``y``,
    ``weights``), one per amount of ``amounts``, then, with ``targets`` (the people's
    distributions), one on those; each fit warm-started from the previous one
    (:func:`calaudit.baselines.label_smoothing.fit_predict_path`)."""
    from ..baselines import softmax_regression

    mean, scale = standardiser(z, weights)
    x = (z - mean) / scale
    heads: list[SoftmaxHead] = []
    previous = None
    with label_smoothing.blas_threads(x.shape[0] * x.shape[1] * n_classes):
        target_sets = [label_smoothing.smoothed_targets(y, n_classes, float(eps)) for eps in amounts]
        for q in [*target_sets, *([] if targets is None else [np.asarray(targets, dtype=np.float64)])]:
            if np.all(q == q[:1]):  # one class: the constant model that fits every row
                heads.append(SoftmaxHead(mean, scale, None, q[0] / q[0].sum()))
            else:
                previous = softmax_regression.fit(x, q * weights[:, None], C=label_smoothing.LOGISTIC_C,
                                                  tol=label_smoothing.LOGISTIC_TOL,
                                                  max_iter=label_smoothing.LOGISTIC_MAX_ITER, start=previous)
                heads.append(SoftmaxHead.of(mean, scale, previous))
            if on_fit is not None:
                on_fit()
    return heads


def sweep_amounts(smoothing: Sequence[float] | None) -> tuple[float, ...]:
    """The amounts fitted: the sweep without ``--smoothing``, else 0 and those given
    (as in memory, :func:`calaudit.baselines.comparison.run_baselines`)."""
    if not smoothing:
        return SWEEP
    return tuple(dict.fromkeys((0.0, *(float(e) for e in smoothing))))


def fit_retraining(sample: Any, amounts: Sequence[float], *, fold: np.ndarray, folds: int,
                   targets: np.ndarray | None = None,
                   on_fit: Callable[[], None] | None = None) -> dict[str, tuple[SoftmaxHead, list[SoftmaxHead]]]:
    """Every amount's heads on the weighted ``sample``: ``{key: (whole, per_fold)}``
    (keys :func:`calaudit.baselines.comparison.smoothing_key`, and ``soft-labels`` for
    the heads fitted on ``targets``, the sampled rows' human distributions), ``fold``
    each sampled row's fold (:func:`.baseline_maps.fold_of`). ``on_fit`` is told of
    each fit."""
    y, weights = sample.y, sample.weights()
    n_classes = int(sample.counts.shape[0])
    z = np.log(np.maximum(sample.proba, recalibration.EPS))
    whole = fit_path(z, y, weights, n_classes, amounts, targets=targets, on_fit=on_fit)
    per_fold = [fit_path(z[fold != k], y[fold != k], weights[fold != k], n_classes, amounts,
                         targets=None if targets is None else targets[fold != k], on_fit=on_fit)
                for k in range(folds)]
    keys = [smoothing_key(eps) for eps in amounts] + ([] if targets is None else ["soft-labels"])
    return {key: (whole[i], [path[i] for path in per_fold]) for i, key in enumerate(keys)}
