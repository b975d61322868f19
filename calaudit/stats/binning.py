"""Bin assignment and per-bin sufficient statistics.

Every binned metric (ECE, MCE, classwise ECE, the reliability table) is computed from
:class:`BinStatistics`: per bin, the number of values, the sum of the binned values
and the sum of the outcomes. Those sums add across chunks, so statistics computed on
two halves of a data set and merged with :meth:`BinStatistics.merge` equal the
statistics of the whole (counts and outcome sums exactly, sums of values up to
floating-point rounding of the addition order). That is what lets a later streaming or cluster engine reuse
this code instead of re-implementing the metrics.

Binning rules (docs/metrics.md, "Binning"):

* equal-width, ``M`` bins, edges ``linspace(0, 1, M + 1)``, right-closed: ``v`` is in
  bin ``m`` iff ``e[m-1] < v <= e[m]``, ``v == 0`` in the first bin, so a confidence of
  exactly 1.0 lands in the last bin (Guo et al. 2017);
* equal-mass: ``array_split(argsort(v, kind="stable"), M)``, ties split by row order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BinStatistics",
    "ece_of_bins",
    "mce_of_bins",
    "equal_width_edges",
    "equal_width_bin_ids",
    "equal_mass_bin_ids",
]


def equal_width_edges(n_bins: int) -> np.ndarray:
    """The ``n_bins + 1`` float64 edges ``linspace(0, 1, n_bins + 1)``."""
    return np.linspace(0.0, 1.0, n_bins + 1)


def equal_width_bin_ids(values: np.ndarray, n_bins: int) -> np.ndarray:
    """0-based right-closed equal-width bin index of each value in ``[0, 1]``.

    Exactly ``np.searchsorted(edges[1:-1], values, side="left")``, computed by
    arithmetic and one comparison with the float64 edges (see
    :class:`EqualWidthBinner`), several times faster than a binary search on large
    arrays. Values must already be known to lie in ``[0, 1]``.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    return EqualWidthBinner(n_bins, values.shape[0]).bin_ids(values)


class EqualWidthBinner:
    """Right-closed equal-width bin ids, fast and exact, into reused buffers.

    ``ceil(v * M * (1 + 8 eps))`` is the 1-based bin of ``v`` or one more, never one
    less: the factor outweighs the rounding of ``v * M`` and of the float64 edges.
    One comparison with the edge below the candidate then gives the exact
    ``searchsorted(edges[1:-1], v, side="left")`` answer. Blocked loops (classwise
    statistics) reuse the buffers instead of allocating temporaries for every block.
    """

    def __init__(self, n_bins: int, capacity: int) -> None:
        self.n_bins = n_bins
        self.edges = equal_width_edges(n_bins)
        self._scale = n_bins * (1.0 + 8.0 * np.finfo(np.float64).eps)
        # edge_below[c] = lower edge of 1-based bin c; bin 1 has none (v == 0 is in it).
        self._edge_below = np.concatenate(([-np.inf, -np.inf], self.edges[1:-1]))
        self._ids = np.empty(capacity, dtype=np.intp)
        self._scaled = np.empty(capacity, dtype=np.float64)
        self._mask = np.empty(capacity, dtype=bool)

    def bin_ids(self, values: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
        """0-based bin ids of a 1-D float64 array in [0, 1], plus ``offsets`` if given.

        The result is a view of an internal buffer, overwritten by the next call.
        """
        n = values.shape[0]
        ids, scaled, mask = self._ids[:n], self._scaled[:n], self._mask[:n]
        np.multiply(values, self._scale, out=scaled)
        np.ceil(scaled, out=scaled)
        ids[...] = scaled
        np.clip(ids, 1, self.n_bins, out=ids)
        np.take(self._edge_below, ids, out=scaled)
        np.less_equal(values, scaled, out=mask)
        ids -= mask
        if offsets is None:
            ids -= 1
        else:
            ids += offsets  # callers fold the -1 into their offsets
        return ids


def equal_mass_bin_ids(values: np.ndarray, n_bins: int) -> np.ndarray:
    """0-based equal-mass bin index of each value.

    Reproduces ``array_split(argsort(values, kind="stable"), n_bins)`` exactly (bin
    ``j`` holds the ``j``-th chunk of the stable order; ties are split by row order)
    without a full sort: ``np.partition`` finds the values at the chunk boundaries, a
    value strictly between two boundary values belongs to the bin they enclose, and
    only values equal to a boundary value need their exact stable rank.
    When ``len(values) < n_bins`` the trailing bins are empty.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    sizes, starts = equal_mass_layout(n, n_bins)
    boundary_positions = starts[1:][starts[1:] < n]
    if boundary_positions.size == 0:
        return np.zeros(n, dtype=np.intp)
    partitioned = np.partition(values, boundary_positions)
    thresholds = partitioned[boundary_positions]  # non-decreasing
    # For a value v not equal to any threshold, its stable position p satisfies
    # p >= starts[j] iff v > thresholds[j-1]; so its bin is #(thresholds < v).
    ids = np.searchsorted(thresholds, values, side="left")
    unique_thresholds = np.unique(thresholds)
    slot = np.searchsorted(unique_thresholds, values, side="left")
    slot_clipped = np.minimum(slot, unique_thresholds.size - 1)
    tied = values == unique_thresholds[slot_clipped]
    if tied.any():
        tied_rows = np.flatnonzero(tied)
        tied_slot = slot_clipped[tied_rows]
        # Number of values strictly below each unique threshold: slot counts the
        # thresholds below v, so #(v < u_k) = #(slot <= k) - #(v == u_k).
        slot_counts = np.bincount(slot, minlength=unique_thresholds.size + 1)
        tie_counts = np.bincount(tied_slot, minlength=unique_thresholds.size)
        below = np.cumsum(slot_counts)[:-1] - tie_counts
        # Rank of each tied row among the rows holding the same value, in row order:
        # tied_rows is increasing, so a stable sort by slot keeps row order in a group.
        order = np.argsort(tied_slot, kind="stable")
        group_start = np.concatenate(([0], np.cumsum(tie_counts)[:-1]))
        rank = np.empty(tied_rows.size, dtype=np.intp)
        rank[order] = np.arange(tied_rows.size) - group_start[tied_slot[order]]
        position = below[tied_slot] + rank
        ids[tied_rows] = np.searchsorted(starts, position, side="right") - 1
    return ids


def equal_mass_layout(n: int, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Sizes and start positions of ``np.array_split(range(n), n_bins)``."""
    sizes = np.full(n_bins, n // n_bins, dtype=np.intp)
    sizes[: n % n_bins] += 1
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
    return sizes, starts


def _stable_tie_correction(
    tied_value: float,
    values: np.ndarray,
    outcomes: np.ndarray,
    sorted_values: np.ndarray,
    sorted_outcomes: np.ndarray,
    segment_starts: np.ndarray,
) -> np.ndarray:
    """Per-segment change of the outcome sums that moves the rows holding
    ``tied_value`` from the partition's placement to the stable (row-order) one."""
    is_tied = sorted_values == tied_value
    per_segment = np.add.reduceat(is_tied.astype(np.intp), segment_starts)
    placed = np.add.reduceat(np.where(is_tied, sorted_outcomes, 0.0), segment_starts)
    # Rows holding the value, in row order, fill the segments in order.
    stable_outcomes = outcomes[values == tied_value]
    cumulative = np.concatenate(([0.0], np.cumsum(stable_outcomes)))
    bounds = np.concatenate(([0], np.cumsum(per_segment)))
    stable = cumulative[bounds[1:]] - cumulative[bounds[:-1]]
    return stable - placed


@dataclass(frozen=True, eq=False)
class BinStatistics:
    """Per-bin sufficient statistics of (value, outcome) pairs.

    ``count[..., m]``, ``sum_value[..., m]`` and ``sum_outcome[..., m]`` are float64 sums
    over the rows in bin ``m``. ``edges`` holds the equal-width edges, or is ``None``
    for equal-mass bins. Leading axes are allowed (classwise statistics have one row
    per class): every array has shape ``(..., n_bins)``.
    """

    count: np.ndarray
    sum_value: np.ndarray
    sum_outcome: np.ndarray
    edges: np.ndarray | None = None

    @classmethod
    def from_bin_ids(
        cls,
        bin_ids: np.ndarray,
        values: np.ndarray,
        outcomes: np.ndarray,
        n_bins: int,
        *,
        edges: np.ndarray | None = None,
    ) -> BinStatistics:
        """Accumulate statistics from 0-based ``bin_ids`` (one ``np.bincount`` each)."""
        count = np.bincount(bin_ids, minlength=n_bins).astype(np.float64)
        sum_value = np.bincount(bin_ids, weights=values, minlength=n_bins)
        sum_outcome = np.bincount(bin_ids, weights=outcomes, minlength=n_bins)
        return cls(count, sum_value, sum_outcome, edges)

    @classmethod
    def equal_width(cls, values: np.ndarray, outcomes: np.ndarray, n_bins: int) -> BinStatistics:
        """Statistics over right-closed equal-width bins of ``values``."""
        ids = equal_width_bin_ids(values, n_bins)
        return cls.from_bin_ids(ids, values, outcomes, n_bins, edges=equal_width_edges(n_bins))

    @classmethod
    def equal_mass(cls, values: np.ndarray, outcomes: np.ndarray, n_bins: int) -> BinStatistics:
        """Statistics over equal-mass bins of ``values`` (needs the whole data set).

        The bins are contiguous runs of one ``np.argpartition`` order, so no full
        sort and no per-row bin ids are needed. Where rows with one value straddle a
        bin boundary, the stable rule gives the earlier rows to the earlier bin; the
        partition may not, so their outcome sums are reassigned (a loop over at most
        ``n_bins - 1`` tied values, not over rows).
        """
        values = np.asarray(values, dtype=np.float64)
        outcomes = np.asarray(outcomes, dtype=np.float64)
        sizes, starts = equal_mass_layout(values.shape[0], n_bins)
        filled = int(np.count_nonzero(sizes))
        count = sizes.astype(np.float64)
        sum_value = np.zeros(n_bins)
        sum_outcome = np.zeros(n_bins)
        boundaries = starts[1:filled]
        order = np.argpartition(values, boundaries) if boundaries.size else np.arange(values.shape[0])
        sorted_values = values[order]
        sorted_outcomes = outcomes[order]
        segment_starts = starts[:filled]
        sum_value[:filled] = np.add.reduceat(sorted_values, segment_starts)
        sum_outcome[:filled] = np.add.reduceat(sorted_outcomes, segment_starts)
        # Each segment's first value is its minimum (partition puts the k-th smallest
        # at each boundary); a tie crosses boundary j when it equals the maximum before.
        segment_max = np.maximum.reduceat(sorted_values, segment_starts)
        crossing = segment_max[:-1] == sorted_values[boundaries]
        for tied_value in np.unique(sorted_values[boundaries][crossing]):
            sum_outcome[:filled] += _stable_tie_correction(
                tied_value, values, outcomes, sorted_values, sorted_outcomes, segment_starts
            )
        return cls(count, sum_value, sum_outcome, None)

    @classmethod
    def equal_mass_by_histogram(
        cls, values: np.ndarray, outcomes: np.ndarray, n_bins: int, histogram: BinStatistics,
    ) -> BinStatistics:
        """:meth:`equal_mass`, exactly, from a fine equal-width ``histogram`` of the same
        ``values`` and ``outcomes`` (its counts and outcome sums integers) and the rows of
        the few fine bins an equal-mass boundary falls in.

        A fine bin is an interval of values, so its rows are consecutive in the stable
        order: a fine bin no boundary cuts lies wholly in one equal-mass bin and adds its
        sums, and only the rows of the at most ``n_bins - 1`` cut fine bins are sorted
        (stably, so ties still go by row order). Counts and outcome sums are those of
        :meth:`equal_mass`; value sums differ by the rounding of their addition order.
        """
        values = np.asarray(values, dtype=np.float64)
        outcomes = np.asarray(outcomes, dtype=np.float64)
        n_rows, n_fine = values.shape[0], histogram.n_bins
        fine_count = histogram.count.astype(np.int64)
        if int(fine_count.sum()) != n_rows or histogram.edges is None:
            raise ValueError("the histogram must be an equal-width histogram of the same rows")
        sizes, starts = equal_mass_layout(n_rows, n_bins)
        after = np.cumsum(fine_count)
        first = after - fine_count
        # Pieces of the stable order between consecutive fine-bin and equal-mass starts:
        # each lies in one fine bin and one equal-mass bin.
        cuts = np.union1d(np.union1d(first[fine_count > 0], starts), [n_rows])
        cuts = cuts[cuts <= n_rows]
        piece_start, piece_rows = cuts[:-1], np.diff(cuts)
        fine = np.searchsorted(after, piece_start, side="right")
        target = np.searchsorted(starts, piece_start, side="right") - 1
        piece_value = histogram.sum_value[fine].copy() if fine.size else np.zeros(0)
        piece_outcome = histogram.sum_outcome[fine].copy() if fine.size else np.zeros(0)
        partial = np.flatnonzero(piece_rows < fine_count[fine])
        if partial.size:
            cut_bins = np.unique(fine[partial])
            fine_ids = EqualWidthBinner(n_fine, n_rows).bin_ids(values)
            chosen = np.zeros(n_fine, dtype=bool)
            chosen[cut_bins] = True
            rows = np.flatnonzero(chosen[fine_ids])  # the rows of the cut fine bins, in row order
            rows = rows[np.argsort(fine_ids[rows], kind="stable")]  # grouped by fine bin
            bounds = np.searchsorted(fine_ids[rows], cut_bins, side="left")
            for f, begin in zip(cut_bins, bounds):  # at most n_bins - 1 cut fine bins, not rows
                own = rows[begin : begin + fine_count[f]]
                own = own[np.argsort(values[own], kind="stable")]  # the stable order inside the fine bin
                pieces = partial[fine[partial] == f]
                offsets = piece_start[pieces] - first[f]
                ends = offsets + piece_rows[pieces]
                cumulative_outcome = np.concatenate(([0.0], np.cumsum(outcomes[own])))  # integers: exact
                piece_outcome[pieces] = cumulative_outcome[ends] - cumulative_outcome[offsets]
                piece_value[pieces] = [float(values[own[a:b]].sum()) for a, b in zip(offsets, ends)]
        count = sizes.astype(np.float64)
        sum_value = np.bincount(target, weights=piece_value, minlength=n_bins)
        sum_outcome = np.bincount(target, weights=piece_outcome, minlength=n_bins)
        return cls(count, sum_value, sum_outcome, None)

    def merge(self, other: BinStatistics) -> BinStatistics:
        """Statistics of the union of the two samples (same equal-width bins required)."""
        if self.edges is None or other.edges is None:
            raise ValueError(
                "only equal-width statistics can be merged: equal-mass bins depend on the whole data set"
            )
        if self.count.shape != other.count.shape or not np.array_equal(self.edges, other.edges):
            raise ValueError("cannot merge statistics computed with different bins")
        return BinStatistics(
            self.count + other.count,
            self.sum_value + other.sum_value,
            self.sum_outcome + other.sum_outcome,
            self.edges,
        )

    @property
    def n_bins(self) -> int:
        return self.count.shape[-1]

    @property
    def nonempty(self) -> np.ndarray:
        return self.count > 0

    @property
    def total(self) -> np.ndarray:
        """Number of rows the statistics hold (per leading index)."""
        return self.count.sum(axis=-1)

    def mean_value(self) -> np.ndarray:
        """Mean binned value per bin (``nan`` for empty bins)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sum_value / self.count

    def mean_outcome(self) -> np.ndarray:
        """Mean outcome per bin (``nan`` for empty bins)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sum_outcome / self.count

    def weighted_error(self, n_total: float | None = None) -> np.ndarray:
        """``sum_m (n_m / N) |acc_m - conf_m|`` (:func:`ece_of_bins`); ``N`` defaults to
        the number of rows in the statistics."""
        return ece_of_bins(self.sum_outcome, self.sum_value, self.total if n_total is None else n_total)

    def max_error(self) -> np.ndarray:
        """``max_m |acc_m - conf_m|`` over non-empty bins (:func:`mce_of_bins`)."""
        return mce_of_bins(self.sum_outcome, self.sum_value, self.count)


# The binned errors, each defined once: of the audit's bins (BinStatistics), of a
# bootstrap's resampled bins (leading axes: resamples) and of streamed sums alike.


def ece_of_bins(outcome_sum: np.ndarray, value_sum: np.ndarray, n_rows: float | np.ndarray) -> np.ndarray:
    """ECE ``sum_m (n_m / N) |acc_m - conf_m|`` along the last axis, computed as
    ``sum_m |S_outcome_m - S_value_m| / N`` (the per-bin sums of the outcome and the
    binned value; leading axes are independent: classes, resamples)."""
    return np.abs(outcome_sum - value_sum).sum(axis=-1) / n_rows


def mce_of_bins(outcome_sum: np.ndarray, value_sum: np.ndarray, count: np.ndarray) -> np.ndarray:
    """MCE ``max_m |acc_m - conf_m|`` over the non-empty bins along the last axis (0
    when every bin is empty), computed as ``|S_outcome_m - S_value_m| / n_m``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        gaps = np.abs(outcome_sum - value_sum) / count
    return np.max(np.where(count > 0, gaps, 0.0), axis=-1)
