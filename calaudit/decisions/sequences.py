"""Chained fixed-sequence tests: which top slices may be fast-tracked.

Review routing (:mod:`.routing`) tests, for each candidate top slice ``j`` (the ``n_j``
most confident rows, ``j = 0`` the smallest), ``H0_j: accuracy < A`` with an exact
p-value ``p_j``, and reports the LARGEST slice it rejects. The family-wise error
(rejecting any true ``H0_j``) must stay at most ``delta`` whatever the search.

One fixed sequence from the top (Learn then Test) stops at its first failure: a noisy
most-confident slice ends it before the large, accurate slices below are reached. So
``delta`` is split over several label-free starts, and a weight moves down the chain
when its slice is rejected (a graphical weighted-Bonferroni procedure, Bretz, Maurer,
Brannath & Posch 2009, on the chain ``j -> j + 1``):

* start ``0`` holds three quarters of ``delta``, at the first slice where its test has
  power (:func:`.routing.first_tested_slice` at that level, ``n_0`` rows);
* starts ``k = 1, 2, ...`` sit at ``n_0 * 2^k`` rows while that is under ``N``, sharing
  the last quarter equally (one start alone keeps all of ``delta``: the single
  fixed sequence of Learn then Test);
* slice ``j`` holding weight ``w`` is rejected when ``p_j <= w * delta``; its weight then
  passes to the next slice down, adding to whatever weight is already there.

The starts and weights depend on ``A``, ``delta``, ``N`` and the confidences only
(a start snaps to the first slice holding at least that many rows, so tied rows enter
together), never on the labels. The weights sum to one and each slice passes all its
weight to the next (the last to none), so the procedure controls the family-wise
error at ``delta`` (Bretz et al. 2009, strong control for any dependence between the
p-values): the chance that ANY rejected slice, in particular the largest, has accuracy
below ``A`` is at most ``delta``. See docs/metrics.md, section 12.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: The first start's share of ``delta`` when there are others (docs/metrics.md, 12:
#: where only the very top can pass, a half cut the share fast-tracked by 15 to 40%,
#: three quarters by 3 to 18%; both kept nearly all the gain on noisy tops).
FIRST_SHARE = 0.75
#: Each further start holds this many times the rows of the one before.
GROWTH = 2


@dataclass(frozen=True)
class Start:
    """Where one sequence starts: the slice index, its rows, its share of ``delta``."""

    index: int
    n: int
    weight: float


@dataclass(frozen=True)
class Chained:
    """The outcome: the largest rejected slice (``None`` when none was), the start of
    the sequence whose weight reached it and the level its test passed at (``weight *
    delta``)."""

    chosen: int | None
    start: Start | None
    tested_at: float | None


def start_rows(first_at: Callable[[float], int], n_rows: int) -> list[tuple[int, float]]:
    """``(rows, share of delta)`` of each start. ``first_at(share)`` is where a sequence
    tested at ``share * delta`` should start (:func:`.routing.first_tested_slice`). The
    first start holds :data:`FIRST_SHARE` at ``first_at(FIRST_SHARE)`` rows; the others
    sit at ``GROWTH``, ``GROWTH^2``... times that while under ``n_rows`` and share the
    rest equally. Without room for a second start, one start at ``first_at(1)`` keeps
    all of ``delta``: the single fixed sequence."""
    first = first_at(FIRST_SHARE)
    grid = []
    rows = first * GROWTH
    while rows < n_rows:
        grid.append(rows)
        rows *= GROWTH
    if not grid:
        return [(first_at(1.0), 1.0)]
    share = (1.0 - FIRST_SHARE) / len(grid)
    return [(first, FIRST_SHARE)] + [(rows, share) for rows in grid]


def starts(slice_n: np.ndarray, planned: list[tuple[int, float]], provable: Callable[[float], int]) -> list[Start]:
    """The planned ``(rows, share)`` snapped to slices: each start moves to the first
    slice holding at least ``max(rows, provable(share))`` rows (``provable(share)``:
    the fewest rows that could pass at ``share * delta`` even all right, so no weight
    waits on a slice that can never pass). Starts landing on one slice add their
    shares; a start beyond every row is dropped (its share unused)."""
    merged: dict[int, float] = {}
    for rows, share in planned:
        index = int(np.searchsorted(slice_n, max(rows, provable(share))))
        if index < slice_n.shape[0]:
            merged[index] = merged.get(index, 0.0) + share
    return [Start(index, int(slice_n[index]), merged[index]) for index in sorted(merged)]


def chained_sequences(p_values: np.ndarray, chain: list[Start], delta: float) -> Chained:
    """Run the chain: going down from each start, reject while ``p <= weight * delta``;
    a sequence that reaches the next start adds its weight to it.

    Weight only moves down, so one sweep from the top start gives the graphical
    procedure's result: a sequence stuck above the next start keeps its weight there
    for good (nothing above can free it)."""
    n_slices = p_values.shape[0]
    carried = 0.0
    chosen: int | None = None
    chosen_start: Start | None = None
    tested_at: float | None = None
    origin: Start | None = None
    for k, start in enumerate(chain):
        weight = carried + start.weight
        if carried == 0.0:
            origin = start
        end = chain[k + 1].index if k + 1 < len(chain) else n_slices
        failed = np.flatnonzero(p_values[start.index:end] > weight * delta)
        stop = start.index + int(failed[0]) if failed.size else end
        if stop > start.index:
            chosen, chosen_start, tested_at = stop - 1, origin, weight * delta
        carried = weight if not failed.size else 0.0
    # A sequence that carried its weight through later starts is credited to where it
    # began; ``chosen`` is the deepest rejection (the sweep goes down, so the last one).
    return Chained(chosen, chosen_start, tested_at)
