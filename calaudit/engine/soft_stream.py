"""The soft-labels baseline of a streamed audit with human votes or soft labels
(``calaudit run DIR --baseline soft-labels``): what annotation buys, on a stream.

In memory (:func:`calaudit.baselines.comparison.run_baselines`) the soft-labels
baseline retrains the reference model on the people's distributions ``H`` and weighs
it against every free fix (hard labels, each label-smoothing amount, temperature
scaling fitted on the labels and on ``H``), each measured against the people on every
row and on the hard and easy items, then asks on the contested items whether
annotation helped. A stream does the same in three passes:

1. **The sample** (:class:`~calaudit.engine.row_sample.RowSample`) also keeps each
   sampled row's human columns (within the same cap), read into ``H`` as the first
   pass read them (:func:`sample_distribution`). The heads are fitted on the weighted
   ``w_i H_ik`` after the smoothing amounts (:mod:`.retrain_maps`), the temperature on
   ``H`` by the weighted soft cross-entropy (:func:`fit_soft_temperature`).
2. **The second pass** (:class:`~calaudit.engine.baseline_maps.BaselineEvaluation`
   with :class:`HumanParts`) reads each batch's ``H``, splits its rows hard or easy by
   the entropy rule of the human analysis (:mod:`.human_stream`; ``--hard-split
   median`` with the first pass's median), and sums per baseline and per part the
   per-row human terms (:func:`calaudit.human.metrics.row_terms`) and the majority-label
   statistics: every baseline's ``human`` figures are exact on the stream. It also
   counts the soft-label model's predicted entropy of every row
   (:class:`~calaudit.engine.human_stream.ValueCounts`).
3. **The annotation pass** (:class:`AnnotationPass`): the contested items are as many
   as the hard ones, those whose split the soft-label model predicts to be the most
   spread out: every row above the cut of the counted entropies, and of the rows at the
   cut the share that completes the count (each such row weighs that share; the pass
   counts the rows above and at the cut itself, so the weights add up to the count;
   exact while the rows have at most 65,536 distinct predicted entropies, else the
   entropies are rounded as the counts say). Each candidate's ``human_cross_entropy`` on them is
   summed in 4,096 groups of rows (a hash of each row's file and position), and the
   paired interval of ``soft_labels - best_free`` is the bootstrap of the groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..baselines import recalibration
from ..errors import Location
from ..human.metrics import TERM_NAMES, row_terms
from ..human.split import TOLERANCE, entropy_rows
from .human_stream import PartSums, batch_location, model_share_rows
from .value_counts import ValueCounts, rounded
from .row_hash import file_label, mix, position_keys

#: Groups of rows the annotation interval resamples.
GROUPS = 4096
_GROUP_SALT = 0x414E_4E4F_5441  # "ANNOTA"


@dataclass(frozen=True)
class TemperatureMap:
    """Temperature scaling of the log-probabilities by ``temperature`` (fitted on ``H``)."""

    temperature: float

    def apply(self, proba: np.ndarray) -> np.ndarray:
        return recalibration.softmax(np.log(np.maximum(proba, recalibration.EPS)) / self.temperature)


def fit_soft_temperature(z: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> float:
    """``T`` minimising the weighted mean cross-entropy of ``softmax(z / T)`` with the
    rows' human distributions (:func:`calaudit.baselines.recalibration.fit_temperature_soft`
    with weights), on ``log T`` in [-5, 5]."""
    from scipy.optimize import minimize_scalar

    shifted = z - z.max(axis=1, keepdims=True)

    def loss(log_t: float) -> float:
        scaled = shifted / np.exp(log_t)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float(np.average(log_norm - np.einsum("ij,ij->i", targets, scaled), weights=weights))

    found = minimize_scalar(loss, bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))


def sample_distribution(sample: Any, reading: Any) -> tuple[np.ndarray, float]:
    """The sampled rows' human distributions and tie tolerance, read from the human
    columns the sample kept (the first pass has read every row, so they are valid)."""
    human = reading.read(sample.columns, Location("the baseline sample", list(reading.columns), True))
    return human.distribution, human.tie_tolerance


def hard_of(distribution: np.ndarray, threshold: float) -> np.ndarray:
    """The hard rows of the human analysis's rule (:func:`calaudit.human.split.hard_rows`)."""
    entropy = entropy_rows(distribution)
    return (entropy >= threshold - TOLERANCE) & (entropy > TOLERANCE)


@dataclass(frozen=True)
class HumanPartSettings:
    """What the second pass needs of the human labels (picklable, sent to Dask)."""

    reading: Any  # calaudit.engine.human_stream.HumanReading
    threshold: float
    n_bins: int


class HumanParts:
    """Per baseline (and ``vendor``): the human terms on all rows and, with the
    majority-label statistics, on the hard and easy rows; and the counts of the
    soft-label model's predicted entropies. Merges by addition."""

    def __init__(self, settings: HumanPartSettings) -> None:
        self.settings = settings
        self.parts: dict[str, dict[str, PartSums]] = {}
        self.predicted = ValueCounts()
        self.tie_tolerance: float | None = None

    def add(self, batch: Any, scored: dict[str, np.ndarray]) -> None:
        reading = self.settings.reading
        human = reading.read(batch.columns, batch_location(batch, reading.columns, reading.csv))
        distribution = human.distribution
        self.tie_tolerance = human.tie_tolerance
        hard = hard_of(distribution, self.settings.threshold)
        group = np.zeros(distribution.shape[0], dtype=np.intp)  # the parts' figures need no groups
        for key, proba in scored.items():
            terms = row_terms(proba, distribution, tie_tolerance=human.tie_tolerance)
            table = np.column_stack([terms[name] for name in TERM_NAMES])
            shares = np.column_stack([proba.max(axis=1), distribution.max(axis=1),
                                      model_share_rows(proba, distribution, human.tie_tolerance)])
            parts = self.parts.setdefault(key, {"all": PartSums(1, False, False), "hard": PartSums(1, False, True),
                                                "easy": PartSums(1, False, True)})
            parts["all"].add(table, shares, group, None, None, None, self.settings.n_bins)
            for name, mask in (("hard", hard), ("easy", ~hard)):
                if mask.any():
                    parts[name].add(table[mask], shares[mask], group[mask], None, batch.y[mask], proba[mask],
                                    self.settings.n_bins)
        if "soft-labels" in scored:
            self.predicted.add(entropy_rows(scored["soft-labels"]))

    def merge(self, other: HumanParts) -> HumanParts:
        merged = HumanParts(self.settings)
        merged.tie_tolerance = self.tie_tolerance if self.tie_tolerance is not None else other.tie_tolerance
        for key in dict.fromkeys([*self.parts, *other.parts]):
            mine, theirs = self.parts.get(key), other.parts.get(key)
            merged.parts[key] = (mine if theirs is None else theirs if mine is None
                                 else {name: mine[name].merge(theirs[name]) for name in mine})
        merged.predicted = self.predicted.merge(other.predicted)
        return merged

    def figures(self, key: str) -> dict[str, dict[str, float]]:
        """A baseline's ``human`` figures, as in memory (``_human_parts``): the human
        metrics on every row (``all``), and on the hard and easy rows with their
        accuracy, ECE, NLL and confidence gap (a part without rows left out; a metric
        undefined on a part left out)."""
        from ..baselines.comparison import PART_METRICS
        from .human_result import human_metrics_of

        parts = self.parts[key]
        out = {"all": human_metrics_of(parts["all"])}
        for name in ("hard", "easy"):
            part = parts[name]
            if part.rows == 0 or part.statistics is None:
                continue
            majority = part.statistics.metrics()
            values = {**{metric: float(majority[metric]) for metric in PART_METRICS}, **human_metrics_of(part)}
            out[name] = {metric: value for metric, value in values.items() if np.isfinite(value)}
        return out


def contested_cut(predicted: ValueCounts, count: int) -> tuple[float, float] | None:
    """The cut of the contested rows: ``(value, share)``, every row whose (rounded)
    predicted entropy is above ``value`` and the ``share`` of those at it, so that
    ``count`` rows are taken; ``None`` when ``count`` is 0."""
    if count <= 0:
        return None
    predicted.total  # noqa: B018 - flushes the pending values
    values, counts = predicted.values, predicted.counts
    above = np.cumsum(counts[::-1])[::-1] - counts  # rows above each value
    index = int(np.flatnonzero(above < count)[0])  # the largest value whose rows above fall short
    return float(values[index]), float((count - above[index]) / counts[index])


class AnnotationPass:
    """The third pass: per group of rows, the rows above the cut's and the rows at the
    cut's count and each candidate's summed ``human_cross_entropy`` (``keys``: the
    soft-label model first, then the free fixes); :meth:`contested` weighs them. Merges
    by addition."""

    def __init__(self, maps: Any, keys: Sequence[str], reading: Any, cut: tuple[float, float], digits: int | None,
                 root: str | None, groups: int = GROUPS) -> None:
        self.maps, self.keys, self.reading, self.cut, self.digits, self.root = maps, tuple(keys), reading, cut, \
            digits, root
        self.above = np.zeros((groups, 1 + len(self.keys)))
        self.at = np.zeros((groups, 1 + len(self.keys)))
        self.rows = 0

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        for batch in batches:
            if batch.n_rows:
                self.add(batch)
            yield batch

    def add(self, batch: Any) -> None:
        reading = self.reading
        human = reading.read(batch.columns, batch_location(batch, reading.columns, reading.csv))
        scored = self.maps.scored(batch, keys=self.keys)
        entropy = rounded(entropy_rows(scored[self.keys[0]]), self.digits)
        value = self.cut[0]
        self.rows += batch.n_rows
        size = self.above.shape[0]
        keys = position_keys(file_label(batch.file, self.root), batch.file_rows())
        group = (mix(keys, _GROUP_SALT) % np.uint64(size)).astype(np.intp)
        terms = [row_terms(scored[key], human.distribution, tie_tolerance=human.tie_tolerance)["human_cross_entropy"]
                 for key in self.keys]
        for sums, rows in ((self.above, entropy > value), (self.at, entropy == value)):
            if rows.any():
                sums[:, 0] += np.bincount(group[rows], minlength=size)
                for j, term in enumerate(terms):
                    sums[:, 1 + j] += np.bincount(group[rows], weights=term[rows], minlength=size)

    def contested(self, count: int) -> np.ndarray:
        """The group sums of the contested rows: every row above the cut and, of those
        at it, the share that brings the rows to ``count`` (as this pass counted them)."""
        above, at = float(self.above[:, 0].sum()), float(self.at[:, 0].sum())
        share = min(max((count - above) / at, 0.0), 1.0) if at > 0 else 0.0
        return self.above + share * self.at

    def merge(self, other: AnnotationPass) -> AnnotationPass:
        merged = AnnotationPass(self.maps, self.keys, self.reading, self.cut, self.digits, self.root,
                                self.above.shape[0])
        merged.above, merged.at = self.above + other.above, self.at + other.at
        merged.rows = self.rows + other.rows
        return merged


def streamed_annotation(found: AnnotationPass, results: Sequence[Any], n_hard: int, *, resamples: int,
                        level: float, seed: int) -> Any:
    """What annotation bought (:class:`~calaudit.baselines.comparison.AnnotationValue`)
    from the annotation pass's group sums of the ``n_hard`` contested rows: the free fix with the lowest mean
    ``human_cross_entropy`` on the contested rows, the difference, and its interval by
    the bootstrap of the groups (each resample draws the non-empty groups with
    replacement and takes the ratio of the drawn sums)."""
    from ..baselines.comparison import ANNOTATION_MEASURE, AnnotationValue, annotation_conclusion
    from ..human.metrics import HUMAN_METRICS
    from ..stats.bootstrap import basic_interval

    sums = found.contested(n_hard)
    sums = sums[sums[:, 0] > 0]
    total = sums[:, 0].sum()
    means = sums[:, 1:].sum(axis=0) / total
    free = found.keys[1:]
    best = int(np.argmin(means[1:]))  # ties: the first, the cheapest fix
    soft_value, best_value = float(means[0]), float(means[1 + best])
    difference = soft_value - best_value
    low = high = difference
    if resamples > 0 and sums.shape[0] > 0:
        rng = np.random.default_rng([seed, _GROUP_SALT])
        per_group = sums[:, 1] - sums[:, 2 + best]
        drawn = []
        block = max(1, (1 << 22) // sums.shape[0])
        for start in range(0, resamples, block):
            picks = rng.integers(0, sums.shape[0], (min(block, resamples - start), sums.shape[0]))
            drawn.append(per_group[picks].sum(axis=1) / sums[picks, 0].sum(axis=1))
        span = HUMAN_METRICS[ANNOTATION_MEASURE].high - HUMAN_METRICS[ANNOTATION_MEASURE].low
        interval, _ = basic_interval(np.concatenate(drawn), difference, level=level, bounds=(-span, span))
        low, high = interval.low, interval.high
    by_key = {result.key: result for result in results}
    return AnnotationValue(
        measure=ANNOTATION_MEASURE, n_hard=int(n_hard), soft_labels=soft_value, best_free_key=free[best],
        best_free_name=by_key[free[best]].name, best_free=best_value, difference=difference, low=float(low),
        high=float(high), conclusion=annotation_conclusion(low, high, tested=resamples > 0),
        ece_soft_labels=(by_key["soft-labels"].human.get("hard") or {}).get("ece"),
        ece_best_free=(by_key[free[best]].human.get("hard") or {}).get("ece"),
    )
