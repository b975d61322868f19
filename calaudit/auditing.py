"""The audit: validated predictions in, :class:`AuditResult` out.

The in-memory audit is the statistics engine on one batch (:mod:`calaudit.engine.memory`:
the sums a streamed audit merges, plus the exact figures only rows give), ending in the
same :func:`calaudit.engine.audit_result.result_from_statistics` as a streamed audit;
human votes and baselines are added here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .engine.audit_result import SHOWN_CLASSES  # noqa: F401 - re-exported
from .engine.audit_result import result_from_statistics
from .engine.memory import memory_execution, memory_figures, memory_intervals
from .engine.statistics import REPORT_BANDS  # noqa: F401 - re-exported: the report's confidence bands
from .errors import UsageError
from .predictions.validation import DEFAULT_ROW_SUM_TOLERANCE
from .predictions.value import Predictions
from .result import AuditResult
from .stats.bootstrap import DEFAULT_LEVEL
from .stats.limits import MAX_BINS, MAX_RESAMPLES, MAX_SEED, MIN_RESAMPLES
from .stats.metrics import DEFAULT_N_BINS


def audit(
    y_true: Sequence[Any] | np.ndarray | None,
    y_proba: Sequence[Any] | np.ndarray,
    *,
    class_names: Sequence[object] | None = None,
    n_bins: int = DEFAULT_N_BINS,
    logits: bool = False,
    row_sum_tolerance: float = DEFAULT_ROW_SUM_TOLERANCE,
    bootstrap: int | None = None,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    votes: Sequence[Any] | np.ndarray | None = None,
    soft_labels: Sequence[Any] | np.ndarray | None = None,
    hard_split: str = "70/30",
) -> AuditResult:
    """Audit the calibration of predicted probabilities.

    Parameters
    ----------
    y_true
        ``(N,)`` true classes: 0-based indices, or class names when ``class_names``
        is given.
    y_proba
        ``(N, K)`` predicted probabilities (rows summing to 1 within
        ``row_sum_tolerance``), or ``(N,)`` positive-class probabilities of a binary
        model. With ``logits=True``: logits (softmax, or sigmoid for one column).
    class_names
        Names of the K classes, in column order (default ``"0"``, ``"1"``, ...).
    n_bins
        Number of bins of the binned metrics and the reliability table.
    bootstrap, seed, level
        Bootstrap resamples for the intervals (0 for none), their seed, and the
        interval's confidence level.
    votes, soft_labels
        What annotators said, ``(N, K)`` in class order: vote counts, or soft labels
        (shares summing to 1). With either, ``y_true`` may be ``None``: the label is
        the plurality vote (ties broken at random with ``seed``). The result's
        ``human`` holds the metrics against the human distribution.
    hard_split
        Which rows count as hard (annotators disagree): see
        :func:`calaudit.human.split.parse_hard_split`.

    Returns
    -------
    AuditResult
        Every metric of docs/metrics.md, the reliability table, per-class figures.

    Raises
    ------
    calaudit.InvalidInputError
        When an input breaks a rule of docs/metrics.md ("Input validity"); the message
        names the row, column and value.
    """
    human = _human_arrays(votes, soft_labels, row_sum_tolerance)
    if y_true is None:
        if human is None:
            raise UsageError("y_true is None: give the true labels, or votes / soft_labels to take them from")
        names = list(class_names) if class_names is not None else None
        fits = names is not None and len(names) == human.distribution.shape[1]  # else the shape check below says so
        try:
            scores = np.asarray(y_proba, dtype=np.float64)
        except (TypeError, ValueError):
            scores = None  # the validation below names the bad value
        if scores is not None and scores.shape[:1] != human.distribution.shape[:1]:
            scores = None  # the shape check below says so
        y_true = human.plurality_labels(seed=seed, class_names=names if fits else None, row_values=scores)
        human = replace(human, label_from="plurality")
    predictions = Predictions.from_arrays(
        y_true, y_proba, class_names=class_names, logits=logits, row_sum_tolerance=row_sum_tolerance
    )
    if human is not None:
        if human.distribution.shape != predictions.y_proba.shape:
            raise UsageError(
                f"{human.columns[0] if human.columns else 'votes'}: shape {human.distribution.shape} does not "
                f"match the predictions' {predictions.y_proba.shape}; expected one column per class, one row per row"
            )
        predictions = replace(predictions, human=human)
    return audit_predictions(
        predictions, n_bins=n_bins, bootstrap=bootstrap, seed=seed, level=level,
        options={"row_sum_tolerance": row_sum_tolerance}, hard_split=hard_split,
    )


def _human_arrays(votes: Any, soft_labels: Any, row_sum_tolerance: float) -> Any:
    """Validated :class:`~calaudit.predictions.human_labels.HumanLabels` from the API's arrays, or None."""
    if votes is None and soft_labels is None:
        return None
    if votes is not None and soft_labels is not None:
        raise UsageError("give votes or soft_labels, not both")
    from .errors import Location
    from .predictions.human_labels import human_from_soft, human_from_votes

    if votes is not None:
        found = human_from_votes(np.asarray(votes), location=Location("votes"))
        return replace(found, columns=("votes",))
    found = human_from_soft(np.asarray(soft_labels), location=Location("soft_labels"),
                            row_sum_tolerance=row_sum_tolerance)
    return replace(found, columns=("soft_labels",))


def audit_predictions(
    predictions: Predictions,
    *,
    n_bins: int = DEFAULT_N_BINS,
    bootstrap: int | None = None,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    options: dict[str, Any] | None = None,
    baselines: Sequence[str] = (),
    folds: int = 5,
    smoothing: Sequence[float] | None = None,
    baseline_model: str = "logistic",
    hard_split: str = "70/30",
    progress: Callable[[str, int, int], None] | None = None,
    intervals: bool = True,
) -> AuditResult:
    """Audit already validated :class:`Predictions` (what every loader returns).

    ``baselines`` (keys of :data:`calaudit.baselines.comparison.BASELINES`) are run
    cross-fitted on ``folds`` stratified folds and compared on the same rows;
    ``smoothing`` ``None`` sweeps the label-smoothing amounts.

    With ``predictions.human`` (annotator votes or soft labels) the result's ``human``
    holds the metrics against the human distribution, split into hard and easy rows by
    ``hard_split``, and every baseline is measured on them too.

    ``bootstrap`` resamples (0: none; ``None``: :data:`calaudit.stats.bootstrap.DEFAULT_RESAMPLES`,
    1,000) give a ``level`` interval for every metric; ``seed`` makes them, and the
    calibration test's simulations, reproducible. ``intervals=False`` leaves the
    metrics' intervals to the caller (``calaudit compare`` reads them off its paired
    draws, the same resamples), the human and baseline intervals still drawn.

    ``progress(label, done, total)``, when given, is told how the long steps advance
    (the resamples, each baseline fit); the CLI draws it as a progress bar.
    """
    if bootstrap is None:
        from .stats import bootstrap as bootstrap_module

        bootstrap = bootstrap_module.DEFAULT_RESAMPLES
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or not 1 <= n_bins <= MAX_BINS:
        raise UsageError(f"n_bins must be an integer from 1 to {MAX_BINS}, got {n_bins!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0:
        raise UsageError(f"bootstrap must be a non-negative number of resamples, got {bootstrap!r}")
    if 0 < bootstrap < MIN_RESAMPLES or bootstrap > MAX_RESAMPLES:
        raise UsageError(
            f"bootstrap must be 0 (no intervals) or from {MIN_RESAMPLES} to {MAX_RESAMPLES:,} resamples, got "
            f"{bootstrap}: fewer cannot place the ends of a 95% interval"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    if not 0.0 < level < 1.0:
        raise UsageError(f"level must be between 0 and 1, got {level!r}")
    n_bins = int(n_bins)
    if predictions.human is not None:  # a split no row can reach is refused before any work
        from .human.split import check_hard_split

        check_hard_split(hard_split, predictions.n_classes)
    y, proba = predictions.y_true, predictions.y_proba
    figures = memory_figures(y, proba, n_bins=n_bins, seed=seed)
    found_intervals = None
    if bootstrap and intervals:
        found_intervals = memory_intervals(figures, y, proba, n_bins=n_bins, resamples=int(bootstrap), level=level,
                                     seed=seed, progress=progress)
    human = hard_mask = None
    if predictions.human is not None:
        from .human.analysis import analyse_human
        from .human.split import hard_rows

        human = analyse_human(predictions, n_bins=n_bins, resamples=int(bootstrap), level=level, seed=seed,
                              hard_split=hard_split)
        hard_mask, _ = hard_rows(predictions.human.distribution, hard_split)
    comparison = None
    if baselines:
        from .baselines.comparison import run_baselines

        comparison = run_baselines(predictions, list(baselines), n_bins=n_bins, folds=folds, seed=seed,
                                   smoothing=None if smoothing is None else tuple(smoothing), model=baseline_model,
                                   hard_mask=hard_mask, resamples=int(bootstrap), level=level,
                                   hard_split=hard_split, progress=progress)
    return result_from_statistics(
        figures.statistics, class_names=predictions.class_names, values=figures.values,
        undefined=figures.undefined, consistency=figures.consistency, smooth_curve=figures.smooth_curve,
        intervals=found_intervals, source=predictions.source.to_dict(),
        options={"n_bins": n_bins, "bootstrap": int(bootstrap), "seed": seed, "level": level, **(options or {})},
        diagnostics={
            "max_row_sum_deviation": predictions.max_row_sum_deviation,
            "renormalised": predictions.max_row_sum_deviation > 0.0,
            "clipped_values": predictions.clipped_values,
            "transform": predictions.transform,
        },
        extras={"execution": memory_execution(figures, found_intervals)}, baselines=comparison, human=human,
    )
