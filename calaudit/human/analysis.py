"""The human-label analysis of one audit: metrics against what people said, their two
intervals, the hard/easy split and the noise floor (docs/metrics.md, section 13)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..predictions.human_labels import TIE_RULE, HumanLabels
from ..stats.bootstrap import BootstrapResult
from .results import HumanAnalysis, HumanPart, HumanSplit
from .split import DEFAULT_SPLIT, hard_rows

#: The majority-label metrics reported on each side of the split, with the human ones.
PART_METRICS = ("accuracy", "ece", "nll")


def analyse_human(
    predictions, *, n_bins: int, resamples: int, level: float, seed: int, hard_split: str = DEFAULT_SPLIT,
) -> HumanAnalysis:
    """Everything ``human`` in the JSON holds, for predictions carrying human labels."""
    from .intervals import human_intervals
    from .metrics import human_metrics

    human: HumanLabels = predictions.human
    proba = predictions.y_proba
    values = _finite(human_metrics(proba, human.distribution, tie_tolerance=human.tie_tolerance))
    plain = noisy = shift = None
    if resamples:
        found = human_intervals(proba, human, estimates=values, resamples=resamples, level=level, seed=seed)
        plain, noisy, shift = found.plain, found.with_annotator_noise, found.annotator_noise_shift
    hard, threshold = hard_rows(human.distribution, hard_split)
    floors = {}
    if human.votes is not None:  # soft labels carry no counts to redraw
        from .noise_floor import noise_floor

        # Each row's redraws are seeded by its position (noise_floor's default keys), as a
        # streamed audit of one file seeds them: the same rows give the same floor in
        # memory and streamed, whatever the file's name (and for every model of a compare).
        floors = noise_floor(human.votes, seed=seed, groups={"hard": hard, "easy": ~hard})
    parts = [
        replace(_part(name, mask, predictions, n_bins=n_bins, resamples=resamples, level=level, seed=seed),
                noise_floor=floors.get(name))
        for name, mask in (("hard", hard), ("easy", ~hard))
    ]
    counts = human.n_annotators
    n_annotators = None
    if counts is not None:
        n_annotators = {"min": float(counts.min()), "median": float(np.median(counts)), "max": float(counts.max())}
    notes = []
    if human.kind == "soft":
        notes.append("soft labels carry no vote counts, so no interval with annotator noise can be drawn and no "
                     "noise floor simulated")
    if "human_plurality_agreement" not in values:
        notes.append("every row's plurality vote is tied, so plurality agreement is undefined")
    return HumanAnalysis(
        kind=human.kind, columns=human.columns, n_annotators=n_annotators, metrics=values, intervals=plain,
        intervals_with_annotator_noise=noisy, annotator_noise_shift=shift,
        split=HumanSplit(str(hard_split), threshold), hard=parts[0], easy=parts[1], tied_rows=human.tied_rows,
        label_from=human.label_from, tie_rule=TIE_RULE, notes=tuple(notes), noise_floor=floors.get("all"),
    )


def _part(name: str, mask: np.ndarray, predictions, *, n_bins: int, resamples: int, level: float,
          seed: int) -> HumanPart:
    """One side of the split: majority-label and human metrics, with row-bootstrap intervals."""
    from ..stats.metrics import compute_metrics
    from .metrics import human_metrics

    n_rows = int(mask.sum())
    share = n_rows / mask.shape[0]
    if n_rows == 0:
        return HumanPart(name, 0, 0.0, {}, None, None, None, None)
    y = predictions.y_true[mask]
    proba = np.ascontiguousarray(predictions.y_proba[mask])
    human = predictions.human.take(mask)
    suite = compute_metrics(y, proba, n_bins=n_bins)
    majority = {key: suite.values[key] for key in PART_METRICS}
    humans = _finite(human_metrics(proba, human.distribution, tie_tolerance=human.tie_tolerance))
    intervals = None
    if resamples and n_rows >= 2:
        intervals = _part_intervals(y, proba, suite, human, majority, humans, n_bins=n_bins, resamples=resamples,
                                    level=level, seed=seed)
    return HumanPart(
        name, n_rows, share, {**majority, **humans}, intervals,
        confidence=float(proba.max(axis=1).mean()),
        human_share=float(human.distribution.max(axis=1).mean()),
        model_share=model_share(proba, human),
    )


def model_share(proba: np.ndarray, human: HumanLabels) -> float:
    """The mean probability the model gave the most common human answer. A tied row's
    "most common answer" is any of its tied classes, each as likely (the fair tie-break
    of :func:`calaudit.predictions.human_labels.plurality_labels`), so the row counts the mean of the
    model's probabilities over them; the first tied class would favour the classes
    listed first."""
    distribution = human.distribution
    top = distribution.max(axis=1, keepdims=True)
    at_top = distribution >= top - human.tie_tolerance
    per_row = np.einsum("ij,ij->i", proba, at_top) / np.count_nonzero(at_top, axis=1)
    return float(per_row.mean())


def _part_intervals(y, proba, suite, human, majority, humans, *, n_bins, resamples, level, seed) -> BootstrapResult:
    """Row-bootstrap intervals of a part's figures: the audit's own bootstrap for the
    majority-label metrics (exact or grouped by size) and the human row bootstrap."""
    from ..stats.bootstrap import bootstrap as run_bootstrap
    from .intervals import human_intervals

    # The smoothing bandwidth only matters for smooth ECE, which a part does not report.
    boot = run_bootstrap(y, proba, suite, n_bins=n_bins, smooth_bandwidth=0.1, reference=majority,
                         resamples=resamples, level=level, seed=seed, names=frozenset(PART_METRICS))
    kept = {name: boot.intervals[name] for name in PART_METRICS if name in boot.intervals}
    widened = [name for name in boot.widened if name in kept]
    human_part = human_intervals(proba, human, estimates=humans, resamples=resamples, level=level, seed=seed,
                                 annotator_noise=False).plain
    kept.update(human_part.intervals)
    widened += list(human_part.widened)
    return BootstrapResult(kept, boot.method, resamples, level, seed, boot.interval, tuple(widened))


def _finite(values: dict[str, float]) -> dict[str, float]:
    """Metrics that are defined (agreement is undefined when every row is tied)."""
    return {name: float(value) for name, value in values.items() if np.isfinite(value)}
