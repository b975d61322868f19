"""Cross-fitted baselines measured with the vendor's own metrics, on the same rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import UsageError
from ..stats.bootstrap import EXACT_BUDGET, basic_interval, resampled_metrics
from ..stats.metrics import compute_metrics
from ..stats.reliability import ReliabilityTable, reliability_table
from . import label_smoothing, recalibration, synthetic
from .folds import StepCounter, stratified_folds

BASELINES = ("label-smoothing", "temperature", "vector", "isotonic", "histogram", "soft-labels")
#: Label-smoothing amounts swept on the same folds when none is given (0: hard labels).
SWEEP = (0.0, 0.02, 0.05, 0.1, 0.2)
SOFT_LABELS_NEED_HUMAN = ("--baseline soft-labels needs human labels: votes_<class> or soft_<class> columns "
                          "(or --votes-cols / --soft-cols)")
#: Majority-label metrics reported on each side of the hard/easy split.
PART_METRICS = ("accuracy", "ece", "nll", "confidence_gap")
#: What :class:`AnnotationValue` compares on the hard rows.
ANNOTATION_MEASURE = "human_cross_entropy"
#: A difference of the annotation measure that rounds to 0 at the precision the report
#: shows (3 decimals of nats; 0.1 points, i.e. 0.001, for TVD) is numerically nothing:
#: "better" or "worse" needs the whole interval beyond 0 *as printed*, so a difference
#: of -1.7e-5 (every vote tied: both models the same up to rounding) is never "better".
ANNOTATION_DIGITS = 3
ECE_ONLY = frozenset({"ece"})
#: The metrics compared side by side (lower is better except accuracy).
COMPARED = ("accuracy", "ece", "ece_equal_mass", "mce", "classwise_ece", "brier", "nll", "confidence_gap")
#: Above this many row-class cells (N x K: the targets of each fit, and the rows the
#: MLP trains on once each row is expanded into K) the retraining baseline is refused
#: with advice.
MAX_TARGET_CELLS = 5_000_000


@dataclass(frozen=True)
class BaselineResult:
    """One baseline: its metrics on every row (each scored out of fold) and its curve.

    With human labels, ``human`` holds ``"all"`` (the human metrics on every row) and
    ``"hard"`` / ``"easy"`` (``accuracy``, ``ece``, ``nll``, ``confidence_gap`` and the
    human metrics on each side of the hard/easy split). ``ece_interval`` is the
    row-bootstrap interval of ``metrics["ece"]`` where one was computed (the smoothing
    sweep's chart).
    """

    key: str
    name: str
    kind: str  # "vendor", "recalibration" or "retraining"
    metrics: dict[str, float]
    reliability: Any  # ReliabilityTable
    details: dict[str, Any] = field(default_factory=dict)
    human: dict[str, dict[str, float]] = field(default_factory=dict)
    ece_interval: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "kind": self.kind, "metrics": dict(self.metrics),
                "reliability": self.reliability.to_dict(), "details": dict(self.details),
                "human": {part: dict(values) for part, values in self.human.items()} or None,
                "ece_interval": list(self.ece_interval) if self.ece_interval is not None else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineResult:
        interval = data.get("ece_interval")
        return cls(data["key"], data["name"], data["kind"], dict(data["metrics"]),
                   ReliabilityTable.from_dict(data["reliability"]), dict(data.get("details") or {}),
                   {part: dict(values) for part, values in (data.get("human") or {}).items()},
                   tuple(interval) if interval is not None else None)


@dataclass(frozen=True)
class SmoothingSweep:
    """Label smoothing at several amounts on the same folds (asked for without
    ``--smoothing``): each amount's ECE with its interval, and the amount whose ECE is
    lowest (``best``). ``keys`` are the matching :class:`BaselineResult` keys
    (amount 0 is ``retrained-hard``)."""

    amounts: tuple[float, ...]
    keys: tuple[str, ...]
    ece: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    confidence_gap: tuple[float, ...]
    best: float

    def to_dict(self) -> dict[str, Any]:
        return {"amounts": list(self.amounts), "keys": list(self.keys), "ece": list(self.ece), "low": list(self.low),
                "high": list(self.high), "confidence_gap": list(self.confidence_gap), "best": self.best}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SmoothingSweep:
        return cls(tuple(data["amounts"]), tuple(data["keys"]), tuple(data["ece"]), tuple(data["low"]),
                   tuple(data["high"]), tuple(data["confidence_gap"]), data["best"])


@dataclass(frozen=True)
class AnnotationValue:
    """What human soft labels bought on the hard rows, beyond the free fixes.

    ``measure`` (``human_cross_entropy``, a proper score against noisy votes) on the
    ``n_hard`` contested rows (chosen from the items, not their own votes: ``rows``
    says how) for the model retrained on human soft labels against the best of the
    free alternatives (hard labels, each label-smoothing amount, temperature scaling
    on hard labels and on the human distributions, synthetic soft labels from a
    bootstrap ensemble): ``difference = soft_labels -
    best_free`` (below 0: annotation helped) with a paired row-bootstrap interval.
    ``conclusion`` is ``"better"`` when the whole interval is below 0 as the report
    prints it, ``"worse"`` when above (:func:`annotation_conclusion`: a difference
    that is numerically nothing, or not beyond chance, is neither), ``"no clear
    difference"`` otherwise, and ``"not tested"`` without resamples. ``ece_*`` give
    the majority-label ECE of both on the hard rows of the human split
    (``human.hard``). ``synthetic``: the same comparison against the synthetic soft
    labels alone (:mod:`calaudit.baselines.synthetic`), on the same rows and
    resamples (its ``best_free_key`` is ``synthetic-soft-labels``).
    """

    measure: str
    n_hard: int
    soft_labels: float
    best_free_key: str
    best_free_name: str
    best_free: float
    difference: float
    low: float
    high: float
    conclusion: str
    ece_soft_labels: float | None  # None when no row is hard by the human split
    ece_best_free: float | None
    rows: str = ("as many items as the human split calls hard, those whose split the cross-fitted soft-label "
                 "model, from the features alone, predicts to be the most spread out")
    synthetic: AnnotationValue | None = None  # the same question against the synthetic soft labels alone

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["synthetic"] = self.synthetic.to_dict() if self.synthetic is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnnotationValue:
        versus = data.get("synthetic")
        return cls(**{**data, "synthetic": cls.from_dict(versus) if versus else None})


@dataclass(frozen=True)
class Comparison:
    folds: int
    seed: int
    features: str  # what the retraining baseline was trained on
    results: tuple[BaselineResult, ...]
    sweep: SmoothingSweep | None = None
    annotation: AnnotationValue | None = None
    #: A streamed run's sample the baselines were fitted on (:mod:`calaudit.engine.baseline_maps`:
    #: ``statement`` "fitted on 200,000 of 30,000,000 rows", ``rows``, ``of_rows``, the
    #: rule); ``None`` when every row was cross-fitted in memory.
    sample: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"folds": self.folds, "seed": self.seed, "features": self.features,
                "results": [r.to_dict() for r in self.results],
                "smoothing_sweep": self.sweep.to_dict() if self.sweep else None,
                "annotation": self.annotation.to_dict() if self.annotation else None,
                "sample": dict(self.sample) if self.sample else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        sweep, annotation = data.get("smoothing_sweep"), data.get("annotation")
        return cls(data["folds"], data["seed"], data["features"],
                   tuple(BaselineResult.from_dict(r) for r in data["results"]),
                   SmoothingSweep.from_dict(sweep) if sweep else None,
                   AnnotationValue.from_dict(annotation) if annotation else None,
                   dict(data["sample"]) if data.get("sample") else None)


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
    smoothing: Sequence[float] | None = None,
    model: str = "logistic",
    hard_mask: np.ndarray | None = None,
    resamples: int = 0,
    level: float = 0.95,
    hard_split: str = "70/30",
    progress: Callable[[str, int, int], None] | None = None,
) -> Comparison:
    """Run ``methods`` (keys of :data:`BASELINES`) cross-fitted on ``folds`` stratified folds.

    ``smoothing`` are the label-smoothing amounts of the retraining baseline; ``None``
    sweeps :data:`SWEEP` on the same folds and fills :attr:`Comparison.sweep` (each
    amount's ECE, with a ``level`` row-bootstrap interval of ``resamples`` resamples
    when ``resamples > 0``). ``soft-labels`` (needs ``predictions.human``) retrains
    the reference model on the human distributions and runs, on the same folds, every
    free alternative it is weighed against: hard labels, label smoothing, temperature
    scaling fitted on the hard labels and on the human distributions, and synthetic
    soft labels from a bootstrap ensemble of the reference model
    (:mod:`calaudit.baselines.synthetic`; :attr:`Comparison.annotation`,
    :func:`annotation_value`).

    With human labels every result carries its human metrics (``"all"``) and its
    metrics on the hard and easy rows (``hard_mask`` and its complement; by default
    the ``hard_split`` rule of :func:`calaudit.human.split.hard_rows`). The annotation
    question is asked on as many rows as are hard, chosen from the items
    (:func:`contested_rows`). ``progress(label, done, total)`` is told of each fold's
    fit and of the sweep's resamples.
    """
    unknown = [m for m in methods if m not in BASELINES]
    if unknown:
        raise UsageError(f"unknown baseline {unknown[0]!r}; expected {', '.join(BASELINES)} or all")
    for eps in smoothing or ():
        if not 0.0 < eps < 1.0:
            raise UsageError(f"--smoothing must be between 0 and 1 (exclusive); got {eps}")
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 0:
        raise UsageError(f"resamples must be a non-negative number of resamples, got {resamples!r}")
    if not 0.0 < level < 1.0:
        raise UsageError(f"level must be between 0 and 1, got {level!r}")
    human = predictions.human
    soft = "soft-labels" in methods
    if soft and human is None:
        raise UsageError(SOFT_LABELS_NEED_HUMAN)
    retrain = soft or "label-smoothing" in methods
    amounts = SWEEP if smoothing is None else tuple(dict.fromkeys((0.0, *(float(e) for e in smoothing))))
    y, proba = predictions.y_true, predictions.y_proba
    n_classes = proba.shape[1]
    check_folds(y, folds, "baselines")
    fold_of = stratified_folds(y, folds, seed)
    n_folds = int(fold_of.max()) + 1
    wanted = [m for m in recalibration.METHODS if m in methods or (soft and m == "temperature")]
    # Two steps, each fit of a step costing about the same: one bar's pace holds.
    fitted = StepCounter(progress, "Recalibrating", (len(wanted) + int(soft)) * n_folds)
    distribution = hard = None
    if human is not None:
        distribution = human.distribution
        hard = _hard_mask(distribution, hard_mask, hard_split)
    # (key, name, kind, out-of-fold probabilities, details), measured below.
    runs: list[tuple[str, str, str, np.ndarray, dict[str, Any]]] = [
        ("vendor", "The vendor's model", "vendor", proba, {})]
    z = recalibration.log_scores(proba, predictions.logits)
    on = {"on": "logits" if predictions.logits is not None else "log-probabilities"}
    for key in wanted:
        name, _ = recalibration.METHODS[key]
        out, params = cross_fitted_recalibration(key, proba, z, y, fold_of, on_fold=fitted)
        details = dict(on)
        if key == "temperature":
            details["temperatures"] = [p["temperature"] for p in params]
        runs.append((key, name, "recalibration", out, details))
    if soft:
        key = recalibration.TEMPERATURE_SOFT[0]
        name = recalibration.TEMPERATURE_SOFT_NAMES.get(human.kind, recalibration.TEMPERATURE_SOFT[1])
        out, params = cross_fitted_soft_temperature(z, distribution, fold_of, on_fold=fitted)
        runs.append((key, name, "recalibration", out, {**on, "temperatures": [p["temperature"] for p in params],
                                                       "targets": "human distribution"}))
    features_used = ""
    if retrain:
        features, features_used = _features(predictions, proba)
        if features.shape[0] * n_classes > MAX_TARGET_CELLS:
            what = "label-smoothing" if "label-smoothing" in methods else "soft-labels"
            raise UsageError(
                f"the {what} baseline would train on {features.shape[0] * n_classes:,} row-class targets "
                f"(N x K, at most {MAX_TARGET_CELLS:,}); audit a sample of at most "
                f"{MAX_TARGET_CELLS // n_classes:,} rows for it"
            )
        fits = (len(amounts) + int(soft) + int(soft) * (synthetic.HEADS + 1)) * n_folds
        fitted = StepCounter(progress, "Retraining the reference model", fits)
        retrained = _cross_fitted_retraining(features, y, fold_of, n_classes, amounts, model=model, seed=seed,
                                             targets=distribution if soft else None, on_fit=fitted)
        for eps, out in zip(amounts, retrained):
            key = smoothing_key(eps)
            name = ("Retrained reference model, hard labels" if eps == 0.0
                    else f"Retrained reference model, label smoothing {eps:g}")
            runs.append((key, name, "retraining", out, {"smoothing": eps, "model": model, "features": features_used}))
        if soft:
            made = synthetic.cross_fitted_synthetic(features, y, fold_of, n_classes, model=model, seed=seed,
                                                    on_fit=fitted)
            runs.append((synthetic.KEY, synthetic.NAME, "retraining", made, synthetic.details(model, features_used)))
            runs.append(("soft-labels", "Retrained reference model, human soft labels", "retraining", retrained[-1],
                         {"smoothing": None, "targets": "human distribution", "model": model,
                          "features": features_used}))
    outputs = {key: out for key, _, _, out, _ in runs}
    suites = {key: compute_metrics(y, np.ascontiguousarray(out), n_bins=n_bins) for key, out in outputs.items()}
    sweep = None
    ece_intervals: dict[str, tuple[float, float]] = {}
    if retrain and smoothing is None:
        swept = {key: (outputs[key], suites[key]) for key in map(smoothing_key, amounts)}
        sweep, ece_intervals = _smoothing_sweep(y, swept, amounts, n_bins=n_bins, resamples=resamples, level=level,
                                                seed=seed, progress=progress)
    results = []
    for key, name, kind, out, details in runs:
        metrics = {metric: suites[key].values[metric] for metric in COMPARED}
        curve = reliability_table(suites[key].top_label, value="confidence")
        parts = _human_parts(y, out, distribution, hard, n_bins, human.tie_tolerance) if human is not None else {}
        results.append(BaselineResult(key, name, kind, metrics, curve, details, parts, ece_intervals.get(key)))
    annotation = None
    if soft:
        contested = contested_rows(outputs["soft-labels"], int(np.count_nonzero(hard)))
        if contested.any():
            free = [smoothing_key(eps) for eps in amounts] + ["temperature", recalibration.TEMPERATURE_SOFT[0],
                                                               synthetic.KEY]
            annotation = annotation_value(results, outputs, distribution, contested, free, resamples=resamples,
                                          level=level, seed=seed, versus=synthetic.KEY)
    return Comparison(folds, seed, features_used, tuple(results), sweep, annotation)


def contested_rows(predicted: np.ndarray, count: int) -> np.ndarray:
    """The rows the annotation question is asked on: as many as the human split calls
    hard (``count``), chosen from the items, not from their own votes
    (:func:`annotation_value` explains why): those whose human split, as the
    cross-fitted soft-label model predicts it from the features (``predicted``), is
    the most spread out (highest entropy; ties by row order)."""
    from ..human.split import entropy_rows

    mask = np.zeros(predicted.shape[0], dtype=bool)
    if count > 0:
        order = np.argsort(-entropy_rows(predicted), kind="stable")
        mask[order[:count]] = True
    return mask


def baseline_keys(chosen: Sequence[str], *, human: bool) -> list[str]:
    """The :data:`BASELINES` keys a ``--baseline`` list asks for, in their order:
    ``all`` is every baseline, except ``soft-labels`` when there are no human labels
    (named on its own, ``soft-labels`` without them is the usage error of
    :func:`run_baselines`)."""
    if "all" in chosen:
        return [key for key in BASELINES if human or key != "soft-labels"]
    return [key for key in BASELINES if key in chosen]


def smoothing_key(eps: float) -> str:
    """The result key of the retrained reference model at label smoothing ``eps``."""
    return "retrained-hard" if eps == 0.0 else f"label-smoothing-{eps:g}"


def annotation_value(
    results: Sequence[BaselineResult], outputs: dict[str, np.ndarray], distribution: np.ndarray,
    hard: np.ndarray, free: Sequence[str], *, resamples: int, level: float, seed: int,
    measure: str = ANNOTATION_MEASURE, versus: str | None = None,
) -> AnnotationValue:
    """What retraining on human soft labels bought on the contested rows ``hard``,
    against the best free alternative (:class:`AnnotationValue`).

    The measure is ``human_cross_entropy``, ``mean_i -sum_k H_ik log max(P_ik, eps)``
    over those rows (``measure`` may name another per-row term of
    :func:`calaudit.human.metrics.row_terms`, lower is better). ``best_free`` is
    whichever of ``free`` (result keys) has the lowest value there;
    ``difference = soft_labels - best_free`` with a paired basic bootstrap interval:
    each resample draws rows with replacement and takes the mean of the per-row
    differences of the two models' terms on those same rows.

    Why this measure and these rows. With 3-5 votes per item the observed ``H`` is a
    noisy draw of the crowd's split, and the comparison must not reward a model for
    matching the noise:

    * the cross-entropy is linear in ``H``, so its expectation over the vote noise is
      the cross-entropy against the crowd's true split, which the true split itself
      minimises (a proper score); TVD and the entropy gap are not, and against noisy
      votes they favour blunter models than the truth;
    * the rows are chosen without their own votes (the caller passes
      :func:`contested_rows`: as many rows as the votes call hard, those whose split
      the cross-fitted soft-label model predicts from the features to be the most
      spread out). Rows chosen because their few votes happened to split are, on
      average, less contested than their votes say, so measured against those same
      votes heavy smoothing wins even when the soft-label model is four times closer
      to the truth (tests/test_soft_label_baselines.py).

    Picking the best free alternative on the very rows it is then compared on favours
    the free side a little (its value is the minimum of several noisy figures): the
    comparison is conservative for annotation, so a ``"better"`` conclusion stands
    all the more. Without resamples there is no interval and the conclusion is
    ``"not tested"``. ``versus`` (a result key: the synthetic soft labels) adds the
    same comparison against that alternative alone, on the same rows and resamples
    (:attr:`AnnotationValue.synthetic`).
    """
    value = _annotation_value(results, outputs, distribution, hard, free, resamples=resamples, level=level,
                              seed=seed, measure=measure)
    if versus is not None and versus in outputs:
        value = replace(value, synthetic=_annotation_value(results, outputs, distribution, hard, [versus],
                                                           resamples=resamples, level=level, seed=seed,
                                                           measure=measure))
    return value


def _annotation_value(
    results: Sequence[BaselineResult], outputs: dict[str, np.ndarray], distribution: np.ndarray,
    hard: np.ndarray, free: Sequence[str], *, resamples: int, level: float, seed: int, measure: str,
) -> AnnotationValue:
    from ..human.metrics import HUMAN_METRICS, row_terms

    soft_terms = row_terms(outputs["soft-labels"][hard], distribution[hard])[measure]
    free_terms = {key: row_terms(outputs[key][hard], distribution[hard])[measure] for key in free}
    best_key = min(free, key=lambda key: float(free_terms[key].mean()))  # ties: the first, the cheapest fix
    per_row = soft_terms - free_terms[best_key]
    soft_value, best_value = float(soft_terms.mean()), float(free_terms[best_key].mean())
    difference = soft_value - best_value
    low = high = difference
    if resamples > 0:
        resampled = np.concatenate([per_row[rows].mean(axis=1) for rows in _row_draws(per_row.shape[0], resamples,
                                                                                      seed)])
        span = HUMAN_METRICS[measure].high - HUMAN_METRICS[measure].low  # a difference lies within +-span
        interval, _ = basic_interval(resampled, difference, level=level, bounds=(-span, span))
        low, high = interval.low, interval.high
    conclusion = annotation_conclusion(low, high, tested=resamples > 0, measure=measure)
    by_key = {result.key: result for result in results}
    return AnnotationValue(
        measure=measure, n_hard=int(np.count_nonzero(hard)), soft_labels=soft_value,
        best_free_key=best_key, best_free_name=by_key[best_key].name, best_free=best_value, difference=difference,
        low=float(low), high=float(high), conclusion=conclusion,
        ece_soft_labels=(by_key["soft-labels"].human.get("hard") or {}).get("ece"),
        ece_best_free=(by_key[best_key].human.get("hard") or {}).get("ece"),
    )


def annotation_conclusion(low: float, high: float, *, tested: bool = True,
                          measure: str = ANNOTATION_MEASURE) -> str:
    """``"better"`` when the whole interval of ``soft_labels - best_free`` is below 0 as
    the report prints it (:data:`ANNOTATION_DIGITS`: its upper end does not round to
    0), ``"worse"`` when above, ``"no clear difference"`` otherwise (not beyond chance,
    or numerically nothing); ``"not tested"`` without an interval."""
    if not tested:
        return "not tested"
    if shown_difference(high, measure) < 0:
        return "better"
    if shown_difference(low, measure) > 0:
        return "worse"
    return "no clear difference"


def shown_difference(value: float, measure: str = ANNOTATION_MEASURE) -> float:
    """A difference of the annotation measure as the report prints it: 3 decimals of
    nats, or 1 decimal of points (x 100) for ``human_tvd``."""
    if measure == "human_tvd":
        return float(f"{value * 100:.{ANNOTATION_DIGITS - 2}f}") / 100
    return float(f"{value:.{ANNOTATION_DIGITS}f}")


def _smoothing_sweep(
    y: np.ndarray, swept: dict[str, tuple[np.ndarray, Any]], amounts: Sequence[float], *, n_bins: int,
    resamples: int, level: float, seed: int, progress: Callable[[str, int, int], None] | None = None,
) -> tuple[SmoothingSweep, dict[str, tuple[float, float]]]:
    """The sweep's ECEs and, with ``resamples``, their row-bootstrap intervals (every
    amount measured on the same resampled rows). ``swept`` maps each amount's result
    key to its out-of-fold probabilities and their metric suite."""
    keys = tuple(swept)
    suites = {key: suite for key, (_, suite) in swept.items()}
    ece = tuple(float(suites[key].values["ece"]) for key in keys)
    intervals: dict[str, tuple[float, float]] = {}
    if resamples > 0:
        resampled: dict[str, list[np.ndarray]] = {key: [] for key in keys}
        told = StepCounter(progress, "Resampling the smoothing sweep", resamples)
        for rows in _row_draws(y.shape[0], resamples, seed):
            for key in keys:
                # Only the top label's bins are needed for the ECE; no smoothing grid is used.
                resampled[key].append(resampled_metrics(rows, y, swept[key][0], suites[key], n_bins=n_bins,
                                                        smooth_bandwidth=1.0, names=ECE_ONLY)["ece"])
            told(rows.shape[0])
        for key, value in zip(keys, ece):
            interval, _ = basic_interval(np.concatenate(resampled[key]), value, level=level, bounds=(0.0, 1.0))
            intervals[key] = (interval.low, interval.high)
    low = tuple(intervals[key][0] if key in intervals else None for key in keys)
    high = tuple(intervals[key][1] if key in intervals else None for key in keys)
    gap = tuple(float(suites[key].values["confidence_gap"]) for key in keys)
    best = float(amounts[int(np.argmin(ece))])  # ties: the smallest amount
    return SmoothingSweep(tuple(float(a) for a in amounts), keys, ece, low, high, gap, best), intervals


def _row_draws(n_rows: int, resamples: int, seed: int):
    """``resamples`` draws of ``n_rows`` row indices with replacement, in blocks of
    ``(B, n_rows)`` small enough for memory; the same ``seed`` gives the same rows."""
    rng = np.random.default_rng(seed)
    block = max(1, int(EXACT_BUDGET // max(n_rows, 1) // 4))
    for start in range(0, resamples, block):
        yield rng.integers(0, n_rows, (min(block, resamples - start), n_rows))


def _hard_mask(distribution: np.ndarray, hard_mask: np.ndarray | None, hard_split: str) -> np.ndarray:
    """The hard rows: ``hard_mask`` as given, else the ``hard_split`` rule on the votes."""
    if hard_mask is None:
        from ..human.split import hard_rows

        return hard_rows(distribution, hard_split)[0]
    mask = np.asarray(hard_mask)
    if mask.dtype != np.bool_ or mask.shape != (distribution.shape[0],):
        raise ValueError(f"hard_mask must be a boolean array of shape ({distribution.shape[0]},); "
                         f"got {mask.dtype} {mask.shape}")
    return mask


def _human_parts(
    y: np.ndarray, proba: np.ndarray, distribution: np.ndarray, hard: np.ndarray, n_bins: int,
    tie_tolerance: float,
) -> dict[str, dict[str, float]]:
    """The human metrics on every row (``"all"``), and the majority-label
    :data:`PART_METRICS` with the human metrics on the hard and the easy rows (a part
    with no rows is left out). A metric undefined on a part (plurality agreement where
    every vote is tied, as on 1-1 splits) is left out, as in the audit's own metrics."""
    from ..human.metrics import human_metrics

    def finite(values: dict[str, float]) -> dict[str, float]:
        return {name: float(value) for name, value in values.items() if np.isfinite(value)}

    parts = {"all": finite(human_metrics(proba, distribution, tie_tolerance=tie_tolerance))}
    for part, rows in (("hard", hard), ("easy", ~hard)):
        if not rows.any():
            continue
        suite = compute_metrics(y[rows], np.ascontiguousarray(proba[rows]), n_bins=n_bins)
        parts[part] = finite({**{name: suite.values[name] for name in PART_METRICS},
                              **human_metrics(proba[rows], distribution[rows], tie_tolerance=tie_tolerance)})
    return parts


def _cross_fitted_retraining(
    features: np.ndarray, y: np.ndarray, fold_of: np.ndarray, n_classes: int, amounts: Sequence[float], *,
    model: str, seed: int, targets: np.ndarray | None = None, on_fit: Callable[[], None] | None = None,
) -> list[np.ndarray]:
    """Out-of-fold probabilities of the reference model trained with each label
    smoothing of ``amounts``, then, when ``targets`` (the human distributions) are
    given, on them. Each fold's fits see its training rows only
    (:func:`.label_smoothing.fit_predict_path`); ``on_fit`` is called after each fit."""
    outs = [np.empty((y.shape[0], n_classes)) for _ in range(len(amounts) + int(targets is not None))]
    for fold in range(int(fold_of.max()) + 1):
        train, test = fold_of != fold, fold_of == fold
        fold_targets = None if targets is None else targets[train]
        path = label_smoothing.fit_predict_path(features[train], y[train], features[test], n_classes, amounts,
                                                kind=model, seed=seed, targets=fold_targets, on_fit=on_fit)
        for out, proba in zip(outs, path):
            out[test] = proba
    return outs


def cross_fitted_soft_temperature(
    z: np.ndarray, distribution: np.ndarray, fold_of: np.ndarray, on_fold: Callable[[], None] | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """Temperature scaling fitted on the human distributions, cross-fitted like
    :func:`cross_fitted_recalibration`."""
    out = np.empty(z.shape)
    params: list[dict] = []
    for fold in range(int(fold_of.max()) + 1):  # one fit per fold
        train, test = fold_of != fold, fold_of == fold
        out[test], fitted = recalibration.temperature_soft(z[train], distribution[train], z[test])
        params.append(fitted)
        if on_fold is not None:
            on_fold()
    return out, params


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
    on_fold: Callable[[], None] | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """Recalibration ``key`` cross-fitted: each fold scored by a fit on the other folds
    (``on_fold`` called after each); returns the out-of-fold probabilities and each
    fold's fitted parameters."""
    _, method = recalibration.METHODS[key]
    out = np.empty_like(proba)
    params: list[dict] = []
    for fold in range(int(fold_of.max()) + 1):  # one fit per fold
        train, test = fold_of != fold, fold_of == fold
        out[test], fitted = method(proba[train], z[train], y[train], proba[test], z[test])
        params.append(fitted)
        if on_fold is not None:
            on_fold()
    return out, params


def _features(predictions: Any, proba: np.ndarray) -> tuple[np.ndarray, str]:
    """What the retraining baseline learns from (docs/baselines.md, "Baselines")."""
    if predictions.features is not None:
        return predictions.features, predictions.features_source
    return np.log(np.maximum(proba, recalibration.EPS)), "the vendor model's log-probabilities (no features given)"
