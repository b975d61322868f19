"""The grouped bootstrap: resamples drawn per group of rows, not per row.

Above the exact method's budget (:mod:`calaudit.stats.bootstrap`), the rows are grouped
by what the metrics sum over (bin x outcome for the top label, each class's bins, the
smoothing grid, the slope's groups of nearby logits); a resample draws multinomial
counts per group, and the sums of per-row values in a group are drawn from the normal
law with that group's mean and variance. The groups are built from per-group sums:
the audits' (in memory and streamed) from their statistics
(:mod:`calaudit.engine.resample`), and the row subsets' that
:func:`calaudit.stats.bootstrap.bootstrap` resamples (segments, human votes) from their
rows (:meth:`GroupedSample.from_rows`); :func:`draw_grouped` draws both alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import estimators
from .binning import ece_of_bins, equal_mass_bin_ids, equal_width_bin_ids, mce_of_bins
from .estimators import debiased_ece_of_bins
from .metric_info import NLL_EPS
from .metrics import MetricSuite

#: Equal-mass groups of the logit the calibration slope is refitted on.
SLOPE_GROUPS = 64

class GroupDraws:
    """Resampling of grouped rows: ``count`` per group, ``mean`` and ``sd`` of per-row values.

    The groups are built from rows (:meth:`GroupedSample.from_rows`) or from per-group
    sums (:mod:`calaudit.engine.resample`, the audits): both go through
    :meth:`_set_moments`, so the two paths resample the same groups alike.
    """

    count: np.ndarray
    mean: dict[str, np.ndarray]
    sd: dict[str, np.ndarray]

    def _set_moments(self, sums: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> None:
        """Mean and sd of each value from its per-group ``(sum, sum of squares)``; the sd
        is left out when the sum of squares is ``None`` (values whose draws use means only)."""
        safe = np.where(self.count > 0, self.count, 1.0)
        self.mean = {}
        self.sd = {}
        for name, (total, square) in sums.items():
            mean = total / safe
            self.mean[name] = mean
            if square is not None:
                self.sd[name] = np.sqrt(np.maximum(square / safe - mean * mean, 0.0))

    def counts(self, rng, n_rows: int, resamples: int) -> np.ndarray:
        return rng.multinomial(n_rows, self.count / n_rows, size=resamples).astype(np.float64)

    def sums(self, rng, counts: np.ndarray, name: str) -> np.ndarray:
        """Resampled sum of ``name`` per group: ``c mu + sqrt(c) sd Z``."""
        noise = rng.standard_normal(counts.shape)
        return counts * self.mean[name] + np.sqrt(counts) * self.sd[name] * noise


def _row_sums(keys: np.ndarray, size: int, values: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per key: the sum of each value and of its square (one bincount each)."""
    return {name: (np.bincount(keys, weights=value, minlength=size),
                   np.bincount(keys, weights=value * value, minlength=size))
            for name, value in values.items()}


class Groups(GroupDraws):
    """Rows grouped by key (every key below ``size``, empty or not), with per-group count,
    mean and sd of per-row values."""

    def __init__(self, keys: np.ndarray, size: int, values: dict[str, np.ndarray]) -> None:
        self.size = size
        self.count = np.bincount(keys, minlength=size).astype(np.float64)
        self._set_moments(_row_sums(keys, size, values))

    @classmethod
    def from_sums(cls, count: np.ndarray, sums: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> Groups:
        """The groups of per-group rows ``count`` and each value's ``(sum, sum of squares)``."""
        groups = cls.__new__(cls)
        groups.size = int(count.shape[0])
        groups.count = np.asarray(count, dtype=np.float64)
        groups._set_moments(sums)
        return groups


class BinOutcomeGroups(GroupDraws):
    """Rows grouped by (bin, outcome) where only the groups that hold rows are kept, so a
    class column whose values sit in a few of many bins costs a few groups (the
    classwise loop runs once per class: K x bins would otherwise set its cost).

    ``count``/``mean``/``sd`` are per kept group, in key order (``bin * 2 + outcome``),
    so the groups of one bin are adjacent; :meth:`per_bin` sums them bin by bin.
    """

    def __init__(self, bin_ids: np.ndarray, outcome: np.ndarray, n_bins: int, values: dict[str, np.ndarray]) -> None:
        keys = bin_ids * 2 + outcome.astype(np.intp)
        self._keep_occupied(np.bincount(keys, minlength=2 * n_bins), _row_sums(keys, 2 * n_bins, values))

    @classmethod
    def from_sums(cls, count: np.ndarray, sums: dict[str, tuple[np.ndarray, np.ndarray]]) -> BinOutcomeGroups:
        """The groups of ``count`` rows per key ``bin * 2 + outcome`` (all ``2 x n_bins``
        keys) and each value's per-key ``(sum, sum of squares)``."""
        groups = cls.__new__(cls)
        groups._keep_occupied(count, sums)
        return groups

    def _keep_occupied(self, full: np.ndarray, sums: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self.keys = np.flatnonzero(full)
        self.count = full[self.keys].astype(np.float64)
        self.hit = (self.keys % 2).astype(np.float64)  # 1 for the groups of rows whose outcome is 1
        bins = self.keys // 2
        self.bin_starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
        self._set_moments({name: (total[self.keys], square[self.keys]) for name, (total, square) in sums.items()})

    def per_bin(self, per_group: np.ndarray) -> np.ndarray:
        """``(resamples, groups)`` -> ``(resamples, occupied bins)`` sums."""
        return np.add.reduceat(per_group, self.bin_starts, axis=1)

    def cells(self, rng, n_rows: int, resamples: int, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per occupied bin and resample: rows with outcome 1, all rows, sum of ``name``."""
        counts = self.counts(rng, n_rows, resamples)
        value = self.per_bin(self.sums(rng, counts, name))
        return self.per_bin(counts * self.hit), self.per_bin(counts), value


#: The metrics of each family of the grouped bootstrap, in the order the families are
#: drawn. A family is drawn when one of its metrics is wanted.
GROUPED_FAMILIES = {
    "top": ("accuracy", "confidence_gap", "ece", "mce", "brier", "nll"),
    "mass": ("ece_equal_mass", "ece_debiased"),
    "classwise": ("classwise_ece", "brier_reliability", "brier_resolution", "brier_uncertainty"),
    "positive": ("positive_ece", "brier_positive"),
    "smooth": ("smooth_ece",),
    "slope": ("calibration_slope", "calibration_intercept"),
}


@dataclass(frozen=True, eq=False)
class GroupedSample:
    """What the grouped bootstrap resamples: the groups of each family of metrics.

    ``top``: (equal-width bin of the confidence, right) groups with values
    ``confidence``, ``brier`` and ``nll`` (each row's term); ``mass``: (equal-mass bin,
    right) with ``confidence``; ``class_support``: rows per class; ``classes``: one
    :class:`BinOutcomeGroups` per class column with value ``p`` (a binary model: class
    1's only, class 0 mirrors it); ``positive`` (``K = 2``): (bin of ``P[:, 1]``,
    ``y == 1``) with ``p`` and ``squared`` (``(p - y)**2``); ``smooth`` and ``slope``:
    :class:`SmoothGroups` and :class:`SlopeGroups`. A family left ``None`` is not drawn.
    """

    n_rows: int
    n_classes: int
    n_bins: int
    top: Groups | None = None
    mass: Groups | None = None
    class_support: np.ndarray | None = None
    classes: tuple[BinOutcomeGroups, ...] | None = None
    positive: Groups | None = None
    smooth: SmoothGroups | None = None
    slope: SlopeGroups | None = None

    @classmethod
    def from_rows(cls, y, proba, suite: MetricSuite, n_bins: int, bandwidth: float) -> GroupedSample:
        """Every family's groups, from rows (what :func:`calaudit.stats.bootstrap.bootstrap`
        resamples: a segment's, the human-vote analysis')."""
        n_rows, n_classes = proba.shape
        top = suite.top
        correct = top.correct.astype(np.intp)
        brier_rows = (proba * proba).sum(axis=1) - 2.0 * top.true_probability + 1.0
        nll_rows = -np.log(np.maximum(top.true_probability, NLL_EPS))
        top_groups = Groups(suite.top_bin_ids * 2 + correct, 2 * n_bins,
                             {"confidence": top.confidence, "brier": brier_rows, "nll": nll_rows})
        # Equal-mass bins of the full data.
        mass = Groups(equal_mass_bin_ids(top.confidence, n_bins) * 2 + correct, 2 * n_bins,
                       {"confidence": top.confidence})
        classes = tuple(
            BinOutcomeGroups(equal_width_bin_ids(proba[:, k], n_bins), (y == k).astype(np.float64), n_bins,
                              {"p": proba[:, k]})
            for k in (range(n_classes) if n_classes > 2 else (1,))
        )
        positive = None
        if n_classes == 2:
            column = proba[:, 1]
            outcome = (y == 1).astype(np.float64)
            positive = Groups(equal_width_bin_ids(column, n_bins) * 2 + outcome.astype(np.intp), 2 * n_bins,
                               {"p": column, "squared": (column - outcome) ** 2})
        return cls(n_rows, n_classes, n_bins, top_groups, mass, np.bincount(y, minlength=n_classes), classes,
                   positive, SmoothGroups.from_rows(top.confidence, top.correct, bandwidth),
                   SlopeGroups.from_rows(top.confidence, top.correct))


def draw_grouped(
    sample: GroupedSample, resamples: int, *, streams, names=None, slope_start: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """``resamples`` draws of every metric of the families ``sample`` holds.

    ``streams(name)`` gives the generator of each draw (``top`` counts, then
    ``top.confidence``, ``top.brier``, ``top.nll``; ``mass``, ``mass.confidence``;
    ``classwise.support``, ``classwise``; ``positive``, ``positive.p``,
    ``positive.squared``; ``smooth``; ``slope``), in that order:
    :func:`calaudit.stats.bootstrap.bootstrap` passes one generator for all, the audits
    one per name (:class:`calaudit.engine.resample.NamedStreams`), so that drawing fewer
    metrics leaves the draws of the others as they are. ``names`` (a set) limits
    the result, and the draws made, to those metrics. ``slope_start`` is the full-data
    ``(intercept, slope)``, where the refits start.
    """

    def wanted(*metrics: str) -> bool:
        return names is None or any(name in names for name in metrics)

    n_rows, n_bins = sample.n_rows, sample.n_bins
    out: dict[str, np.ndarray] = {}
    # Top label: groups are (equal-width bin, right or wrong).
    if sample.top is not None and wanted(*GROUPED_FAMILIES["top"]):
        groups = sample.top
        counts = groups.counts(streams("top"), n_rows, resamples)
        per_bin = counts.reshape(resamples, n_bins, 2)
        right, total = per_bin[:, :, 1], per_bin.sum(axis=2)
        out["accuracy"] = right.sum(axis=1) / n_rows
        if wanted("confidence_gap", "ece", "mce"):
            confidence = groups.sums(streams("top.confidence"), counts, "confidence").reshape(
                resamples, n_bins, 2).sum(axis=2)
            out["confidence_gap"] = confidence.sum(axis=1) / n_rows - out["accuracy"]
            out["ece"] = ece_of_bins(right, confidence, n_rows)
            out["mce"] = mce_of_bins(right, confidence, total)
        if wanted("brier"):
            out["brier"] = groups.sums(streams("top.brier"), counts, "brier").sum(axis=1) / n_rows
        if wanted("nll"):
            out["nll"] = groups.sums(streams("top.nll"), counts, "nll").sum(axis=1) / n_rows
    if sample.mass is not None and wanted(*GROUPED_FAMILIES["mass"]):
        mass = sample.mass
        mass_counts = mass.counts(streams("mass"), n_rows, resamples)
        mass_confidence = mass.sums(streams("mass.confidence"), mass_counts, "confidence").reshape(
            resamples, n_bins, 2).sum(axis=2)
        mass_bins = mass_counts.reshape(resamples, n_bins, 2)
        mass_right, mass_total = mass_bins[:, :, 1], mass_bins.sum(axis=2)
        out["ece_equal_mass"] = ece_of_bins(mass_right, mass_confidence, n_rows)
        out["ece_debiased"] = debiased_ece_of_bins(mass_right, mass_confidence, mass_total, n_rows)
    if sample.class_support is not None and wanted(*GROUPED_FAMILIES["classwise"]):
        per_class = sample.classes is not None and wanted("classwise_ece", "brier_reliability", "brier_resolution")
        out.update(_classwise_draws(sample, resamples, streams, per_class))
    if sample.positive is not None and wanted(*GROUPED_FAMILIES["positive"]):
        pos = sample.positive
        pos_counts = pos.counts(streams("positive"), n_rows, resamples)
        if wanted("positive_ece"):
            value = pos.sums(streams("positive.p"), pos_counts, "p").reshape(resamples, n_bins, 2).sum(axis=2)
            out["positive_ece"] = ece_of_bins(pos_counts.reshape(resamples, n_bins, 2)[:, :, 1], value, n_rows)
        if wanted("brier_positive"):
            out["brier_positive"] = pos.sums(streams("positive.squared"), pos_counts, "squared").sum(axis=1) / n_rows
    if sample.smooth is not None and wanted(*GROUPED_FAMILIES["smooth"]):
        out["smooth_ece"] = sample.smooth.draw(streams("smooth"), n_rows, resamples)
    if sample.slope is not None and wanted(*GROUPED_FAMILIES["slope"]):
        out["calibration_slope"], out["calibration_intercept"] = sample.slope.draw(
            streams("slope"), n_rows, resamples, start=slope_start)
    return out if names is None else {name: values for name, values in out.items() if name in names}


def _classwise_draws(sample: GroupedSample, resamples: int, streams, per_class: bool) -> dict[str, np.ndarray]:
    """Classwise ECE and the Brier decomposition. Every class's column is one group set
    (loop over classes, not rows); classes are drawn independently (their correlation is
    ignored), except that a binary model's two columns mirror each other, so class 0
    reuses class 1's draw. ``per_class`` False: the uncertainty alone, no class loop."""
    n_rows = sample.n_rows
    class_counts_all = streams("classwise.support").multinomial(n_rows, sample.class_support / n_rows,
                                                                size=resamples)
    shares = class_counts_all / n_rows
    out = {"brier_uncertainty": np.sum(shares * (1.0 - shares), axis=1)}
    if not per_class:
        return out
    classwise_terms = np.zeros(resamples)
    reliability = np.zeros(resamples)
    resolution = np.zeros(resamples)
    rng = streams("classwise")
    weight = 1.0 if sample.n_classes > 2 else 2.0  # binary: class 0 mirrors class 1
    for groups in sample.classes:
        hits, cell_total, value = groups.cells(rng, n_rows, resamples, "p")
        classwise_terms += weight * ece_of_bins(hits, value, n_rows)
        # This class's parts (a class axis of one); the uncertainty is drawn above.
        class_reliability, class_resolution, _ = estimators.brier_parts_of_bins(
            cell_total[:, None, :], value[:, None, :], hits[:, None, :], n_rows)
        reliability += weight * class_reliability
        resolution += weight * class_resolution
    out["classwise_ece"] = classwise_terms / sample.n_classes
    out["brier_reliability"], out["brier_resolution"] = reliability, resolution
    return {name: out[name] for name in GROUPED_FAMILIES["classwise"]}


#: Grid of the grouped smooth-ECE bootstrap: four times coarser than relplot's 1,001
#: points (the kernel is at least 10 of those points wide), and its evaluation mesh.
_COARSE_POINTS = 251
_COARSE_MESH = 200


class SmoothGroups:
    """Smooth ECE at a fixed bandwidth: rows grouped by cell of a coarse smoothing grid
    and outcome; within a cell (1/250 wide) rows are nearly alike, so group means
    carry them. The coarse grid keeps 1,000 resamples cheap; the agreement with the
    exact bootstrap is tested.

    ``groups`` (``2 x points`` keys ``cell * 2 + right``) hold the means of ``frac``
    (the row's position within its cell), ``residual`` (``c - right``) and
    ``frac_residual``; :meth:`from_rows` builds them from rows, a streamed audit from
    the sums of ``c`` and ``c**2`` per fine bin.
    """

    def __init__(self, groups: Groups, points: int, bandwidth: float) -> None:
        self.groups, self.points, self.bandwidth = groups, points, bandwidth

    @staticmethod
    def grid_points(bandwidth: float) -> int:
        return min(_COARSE_POINTS, estimators.smooth_grid_points(bandwidth))

    @classmethod
    def from_rows(cls, confidence: np.ndarray, correct: np.ndarray, bandwidth: float) -> SmoothGroups:
        points = cls.grid_points(bandwidth)
        position = confidence * (points - 1)
        left = position.astype(np.intp).clip(0, points - 2)
        frac = position - left
        residual = confidence - correct
        groups = Groups(left * 2 + correct.astype(np.intp), 2 * points,
                         {"frac": frac, "residual": residual, "frac_residual": frac * residual})
        return cls(groups, points, bandwidth)

    def draw(self, rng, n_rows: int, resamples: int) -> np.ndarray:
        points, mean = self.points, self.groups.mean
        counts = self.groups.counts(rng, n_rows, resamples).reshape(resamples, points, 2)

        def to_grid(left_weight: np.ndarray, right_weight: np.ndarray) -> np.ndarray:
            """Spread each group's count onto its two grid points: (B, P, 2) @ weights."""
            left_part = np.einsum("bpo,po->bp", counts, left_weight.reshape(points, 2))
            right_part = np.einsum("bpo,po->bp", counts, right_weight.reshape(points, 2))
            grid = left_part.copy()
            grid[:, 1:] += right_part[:, :-1]
            return grid

        residual_grid = to_grid(mean["residual"] - mean["frac_residual"], mean["frac_residual"])
        count_grid = to_grid(1.0 - mean["frac"], mean["frac"])
        return estimators.batch_smooth_ece(residual_grid, count_grid, self.bandwidth, mesh=_COARSE_MESH)


class SlopeGroups:
    """Refit the logistic recalibration on resampled groups of nearby logits:
    ``SLOPE_GROUPS`` equal-mass groups of ``x = logit(c)`` by outcome, at the group's
    mean ``x`` (``groups`` hold the per-group mean of ``x``)."""

    def __init__(self, groups: Groups) -> None:
        self.groups = groups

    @classmethod
    def from_rows(cls, confidence: np.ndarray, correct: np.ndarray) -> SlopeGroups:
        x = estimators.logit(confidence)
        ids = equal_mass_bin_ids(x, SLOPE_GROUPS)
        return cls(Groups(ids * 2 + correct.astype(np.intp), 2 * SLOPE_GROUPS, {"x": x}))

    def draw(self, rng, n_rows: int, resamples: int, start=None) -> tuple[np.ndarray, np.ndarray]:
        groups = self.groups
        counts = groups.counts(rng, n_rows, resamples).reshape(resamples, SLOPE_GROUPS, 2)
        trials = counts.sum(axis=2)
        successes = counts[:, :, 1]
        count = groups.count.reshape(SLOPE_GROUPS, 2).sum(axis=1)
        x_mean = (groups.mean["x"] * groups.count).reshape(SLOPE_GROUPS, 2).sum(axis=1) / np.where(
            count > 0, count, 1)
        params = estimators.logistic_fit(x_mean, successes, trials, start=start)
        return params[:, 1], params[:, 0]
