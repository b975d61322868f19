"""Cross-fitted baselines measured with the vendor's own metrics, on the same rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UsageError
from ..metrics import compute_metrics
from ..reliability import ReliabilityTable, reliability_table
from . import label_smoothing, recalibration
from .folds import stratified_folds

BASELINES = ("label-smoothing", "temperature", "vector", "isotonic", "histogram")
#: The metrics compared side by side (lower is better except accuracy).
COMPARED = ("accuracy", "ece", "ece_equal_mass", "mce", "classwise_ece", "brier", "nll", "confidence_gap")
#: Above this many expanded rows (N x K) the retraining baseline is refused with advice.
MAX_EXPANDED_ROWS = 5_000_000


@dataclass(frozen=True)
class BaselineResult:
    """One baseline: its metrics on every row (each scored out of fold) and its curve."""

    key: str
    name: str
    kind: str  # "vendor", "recalibration" or "retraining"
    metrics: dict[str, float]
    reliability: Any  # ReliabilityTable
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "kind": self.kind, "metrics": dict(self.metrics),
                "reliability": self.reliability.to_dict(), "details": dict(self.details)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineResult:
        return cls(data["key"], data["name"], data["kind"], dict(data["metrics"]),
                   ReliabilityTable.from_dict(data["reliability"]), dict(data.get("details") or {}))


@dataclass(frozen=True)
class Comparison:
    folds: int
    seed: int
    features: str  # what the retraining baseline was trained on
    results: tuple[BaselineResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"folds": self.folds, "seed": self.seed, "features": self.features,
                "results": [r.to_dict() for r in self.results]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        return cls(data["folds"], data["seed"], data["features"],
                   tuple(BaselineResult.from_dict(r) for r in data["results"]))


def _measure(y: np.ndarray, proba: np.ndarray, n_bins: int) -> tuple[dict[str, float], Any]:
    suite = compute_metrics(y, np.ascontiguousarray(proba), n_bins=n_bins)
    return {name: suite.values[name] for name in COMPARED}, reliability_table(suite.top_label, value="confidence")


def run_baselines(
    predictions: Any,
    methods: Sequence[str],
    *,
    n_bins: int = 15,
    folds: int = 5,
    seed: int = 0,
    smoothing: Sequence[float] = (label_smoothing.DEFAULT_SMOOTHING,),
    model: str = "logistic",
) -> Comparison:
    """Run ``methods`` (keys of :data:`BASELINES`) cross-fitted on ``folds`` stratified folds."""
    unknown = [m for m in methods if m not in BASELINES]
    if unknown:
        raise UsageError(f"unknown baseline {unknown[0]!r}; expected {', '.join(BASELINES)} or all")
    for eps in smoothing:
        if not 0.0 < eps < 1.0:
            raise UsageError(f"--smoothing must be between 0 and 1 (exclusive); got {eps}")
    y, proba = predictions.y_true, predictions.y_proba
    n_rows, n_classes = proba.shape
    check_folds(y, folds, "baselines")
    fold_of = stratified_folds(y, folds, seed)
    vendor_metrics, vendor_curve = _measure(y, proba, n_bins)
    results = [BaselineResult("vendor", "The vendor's model", "vendor", vendor_metrics, vendor_curve)]
    z = recalibration.log_scores(proba, predictions.logits)
    for key in [m for m in BASELINES if m in methods and m != "label-smoothing"]:
        name, _ = recalibration.METHODS[key]
        out, params = cross_fitted_recalibration(key, proba, z, y, fold_of)
        metrics, curve = _measure(y, out, n_bins)
        details = {"on": "logits" if predictions.logits is not None else "log-probabilities"}
        if key == "temperature":
            details["temperatures"] = [p["temperature"] for p in params]
        results.append(BaselineResult(key, name, "recalibration", metrics, curve, details))
    features_used = ""
    if "label-smoothing" in methods:
        features, features_used = _features(predictions, proba)
        if features.shape[0] * n_classes > MAX_EXPANDED_ROWS:
            raise UsageError(
                f"the label-smoothing baseline would train on {features.shape[0] * n_classes:,} expanded rows "
                f"(N x K); audit a sample of at most {MAX_EXPANDED_ROWS // n_classes:,} rows for it"
            )
        for eps in (0.0, *smoothing):
            out = np.empty_like(proba)
            for fold in range(folds):
                train, test = fold_of != fold, fold_of == fold
                out[test] = label_smoothing.fit_predict(features[train], y[train], features[test], n_classes, eps,
                                                        kind=model, seed=seed)
            metrics, curve = _measure(y, out, n_bins)
            key = "retrained-hard" if eps == 0.0 else f"label-smoothing-{eps:g}"
            name = ("Retrained reference model, hard labels" if eps == 0.0
                    else f"Retrained reference model, label smoothing {eps:g}")
            results.append(BaselineResult(key, name, "retraining", metrics, curve,
                                          {"smoothing": eps, "model": model, "features": features_used}))
    return Comparison(folds, seed, features_used, tuple(results))


def check_folds(y: np.ndarray, folds: int, what: str) -> None:
    """Refuse folds the cross-fitting cannot make (a usage error naming --folds)."""
    if folds < 2:
        raise UsageError(f"--folds must be at least 2; got {folds}")
    n_rows = y.shape[0]
    if n_rows < 2 * folds:
        raise UsageError(f"{n_rows} rows are too few for {folds}-fold {what}; use fewer --folds")
    largest = int(np.bincount(y).max())
    if largest < folds:
        raise UsageError(
            f"every class has fewer than {folds} rows (the largest has {largest}); use --folds {max(2, largest)} or fewer"
        )


def cross_fitted_recalibration(
    key: str, proba: np.ndarray, z: np.ndarray, y: np.ndarray, fold_of: np.ndarray,
) -> tuple[np.ndarray, list[dict]]:
    """Recalibration ``key`` cross-fitted: each fold scored by a fit on the other folds;
    returns the out-of-fold probabilities and each fold's fitted parameters."""
    _, method = recalibration.METHODS[key]
    out = np.empty_like(proba)
    params: list[dict] = []
    for fold in range(int(fold_of.max()) + 1):  # one fit per fold
        train, test = fold_of != fold, fold_of == fold
        out[test], fitted = method(proba[train], z[train], y[train], proba[test], z[test])
        params.append(fitted)
    return out, params


def _features(predictions: Any, proba: np.ndarray) -> tuple[np.ndarray, str]:
    """What the retraining baseline learns from (README, "Baselines")."""
    if predictions.features is not None:
        return predictions.features, predictions.features_source
    return np.log(np.maximum(proba, recalibration.EPS)), "the vendor model's log-probabilities (no features given)"
