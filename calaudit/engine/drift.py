"""Has calibration changed? The test behind the drift sentence of a windowed audit.

:func:`change_test` compares the latest window that holds enough predictions with
every earlier row, from their merged statistics alone (a streamed or Dask audit keeps
no rows): the top-label equal-width bins' counts, confidence sums and numbers right.
It reuses the segment test, :func:`calaudit.decisions.segments.worse_than_rest_test`
(docs/metrics.md, section 11), twice:

* **worse**: the latest window against the null "its gap between confidence and
  accuracy in every confidence bin is the earlier rows' gap in that bin". The window's
  hits per bin are simulated at the window's own size (binomial draws at the earlier
  rows' accuracy in the bin, from its Jeffreys posterior, moved by the difference of
  mean confidences inside the bin), so the upward bias of the binned ECE of a few
  rows is in the null law as much as in the observation. A window of 40 predictions
  whose ECE sits at its noise floor is not "worse" than 3,000 calibrated rows.
* **better**: the same test with the roles swapped, the earlier rows against the null
  "their gap in every bin is the latest window's". A small window's bin accuracies are
  uncertain (wide posteriors), so a small window is rarely called better.

Each one-sided test runs at ``alpha / 2`` (``alpha = 1 - level``), so a stationary
log is called worse or better at most ``alpha`` of the time; :func:`change_direction`
turns the two p-values into ``"worse"``, ``"better"`` or ``"unclear"`` and never
says worse (better) when the window's (the earlier rows') ECE is at or below its own
noise floor. The draws are seeded from the audit's seed and the window, so the stream
and Dask engines, whose merged statistics are equal, give the same answer.
``tests/drift_power.py`` measures the false alarms and the power (docs/metrics.md,
section 15).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .statistics import StreamStatistics

__all__ = ["DIRECTIONS", "ChangeTest", "change_direction", "change_test"]

#: What :func:`change_direction` can say.
DIRECTIONS = ("worse", "better", "unclear")
#: What the JSON says the test is.
METHOD = ("two one-sided tests of the binned ECE at each side's size: the latest window against the earlier rows' "
          "gap per confidence bin (worse), the earlier rows against the window's (better); per-bin binomial draws "
          "at the other side's accuracy (Jeffreys posterior), sequential Monte Carlo, alpha / 2 each")


@dataclass(frozen=True)
class ChangeTest:
    """Outcome of :func:`change_test`.

    ``p_worse``: one-sided p-value of "the latest window's gaps are the earlier rows'",
    the smaller of the ECE's and the overall gap's, doubled (Bonferroni);
    ``expected_latest_ece``: the window's mean ECE under that null (what chance gives a
    window of its size calibrated like the earlier rows). ``p_better`` and
    ``expected_earlier_ece``: the same with the roles swapped. ``simulations``: the
    most simulations a statistic drew (the ECE's sequential Monte Carlo stops early).
    """

    p_worse: float
    p_better: float
    expected_latest_ece: float
    expected_earlier_ece: float
    simulations: int
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        return {"method": METHOD, **asdict(self)}


def _bin_counts(stats: StreamStatistics) -> Any:
    """The top-label bins as the segment test takes them, for one set of rows. Within a
    bin the expected accuracy moves with the mean confidence (a slope of 1: the null
    keeps the other side's gap, not its accuracy)."""
    from ..decisions.segments import BinCounts

    confidence = stats.top_sum_confidence[None, :].copy()
    return BinCounts(stats.top_count[None, :].astype(np.float64), confidence,
                     stats.top_correct[None, :].astype(np.float64), confidence.copy())


def gap_test(side: StreamStatistics, other: StreamStatistics, *, rng: np.random.Generator,
             simulations: int) -> float:
    """One-sided p-value of "``side``'s overall gap ``|right - sum of confidence| / n``
    is no larger than if its gap in every bin were ``other``'s", by Monte Carlo under
    the segment test's null (:func:`calaudit.decisions.segments.worse_than_rest_test`:
    per-bin binomial draws at ``other``'s accuracy from its Jeffreys posterior, moved by
    the difference of mean confidences; a bin ``other`` lacks tests nothing). The ECE
    adds the bins' gaps in absolute value, so it misses little of a gap spread over
    many bins, which this statistic sums: the two together keep the power for a model
    that became overconfident everywhere. ``(simulations, bins)`` draws, no loop."""
    cells = side.top_count > 0
    trials = side.top_count[cells]
    confidence = side.top_sum_confidence[cells]
    hits = side.top_correct[cells].astype(np.float64)
    rest_trials = other.top_count[cells].astype(np.float64)
    occupied = rest_trials > 0
    source_hits = np.where(occupied, other.top_correct[cells], hits)
    source_trials = np.where(occupied, rest_trials, trials)
    shift = np.where(occupied, confidence / trials - other.top_sum_confidence[cells] / np.maximum(rest_trials, 1.0),
                     0.0)
    g = rng.beta(source_hits + 0.5, source_trials - source_hits + 0.5, size=(simulations, trials.size))
    simulated = rng.binomial(trials, np.clip(g + shift, 0.0, 1.0)).sum(axis=1)
    total_confidence = float(confidence.sum())
    observed = abs(float(hits.sum()) - total_confidence)
    reached = np.abs(simulated - total_confidence) >= observed - 1e-9 * max(observed, 1.0)
    return float((1 + np.count_nonzero(reached)) / (1 + simulations))


def change_test(latest: StreamStatistics, earlier: StreamStatistics, *, seed: int, alpha: float) -> ChangeTest:
    """The two one-sided tests of the module docstring, vectorised over simulations and
    bins (no loop over rows). ``seed`` fixes every draw; ``alpha`` is the level of
    both tests together (each runs at ``alpha / 2``)."""
    from ..decisions.segments import simulations_for, worse_than_rest_test

    if latest.n_rows <= 0 or earlier.n_rows <= 0:
        raise ValueError("change_test needs rows on both sides")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    window, before = _bin_counts(latest), _bin_counts(earlier)
    most = simulations_for(4, alpha)  # four p-values: the smallest resolves alpha / 4
    p_values, expected, drawn = [], [], []
    for stream, (side, other, side_stats, other_stats) in enumerate(
            ((window, before, latest, earlier), (before, window, earlier, latest))):
        ece = worse_than_rest_test(side, other, rng=np.random.default_rng([int(seed), stream, 0]),
                                   max_simulations=most)
        gap = gap_test(side_stats, other_stats, rng=np.random.default_rng([int(seed), stream, 1]), simulations=most)
        p_values.append(min(1.0, 2.0 * min(float(ece.p_value[0]), gap)))
        expected.append(float(ece.null_ece[0]))
        drawn.append(int(ece.simulations[0]))
    return ChangeTest(p_worse=p_values[0], p_better=p_values[1], expected_latest_ece=expected[0],
                      expected_earlier_ece=expected[1], simulations=max(*drawn, most), alpha=float(alpha))


def change_direction(
    p_worse: float, p_better: float, *, alpha: float, latest_ece: float, latest_floor: float, earlier_ece: float,
    earlier_floor: float,
) -> str:
    """``"worse"``, ``"better"`` or ``"unclear"`` from the two p-values of
    :class:`ChangeTest` and each side's ECE and noise floor (the mean ECE a perfectly
    calibrated model with its confidences would show).

    Worse: ``p_worse <= alpha / 2`` and the window's ECE above its noise floor.
    Better: ``p_better <= alpha / 2`` and the earlier rows' ECE above theirs. Both
    (the gaps changed bin by bin, not in one direction): the side whose ECE exceeds
    its noise floor by more is the worse calibrated one. Neither: unclear.
    """
    worse = p_worse <= alpha / 2.0 and latest_ece > latest_floor
    better = p_better <= alpha / 2.0 and earlier_ece > earlier_floor
    if worse and better:
        return "worse" if latest_ece - latest_floor > earlier_ece - earlier_floor else "better"
    return "worse" if worse else "better" if better else "unclear"
