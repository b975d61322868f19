"""Reliability tables: the rows of a reliability diagram, built from bin statistics.

Plain data (:class:`ReliabilityTable`) and the one function that makes it
(:func:`reliability_table`), shared by the audit, the baselines and the comparisons.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from .binning import BinStatistics
from .intervals import wilson_interval

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ReliabilityBin:
    """One non-empty bin of a reliability diagram (``bin`` counts from 1)."""

    bin: int
    lower: float
    upper: float
    count: int
    correct: int
    mean_confidence: float
    accuracy: float
    gap: float
    accuracy_low: float
    accuracy_high: float


@dataclass(frozen=True)
class ReliabilityTable:
    """The data of one reliability diagram.

    ``value`` says what was binned (``"confidence"`` for the top label, or
    ``"probability of <class>"``); ``accuracy`` in each bin is the share of rows whose
    outcome was 1 (top label right, or that class true); ``gap = accuracy -
    mean_confidence`` is negative where the model is overconfident.
    """

    value: str
    binning: str
    n_bins: int
    interval: str
    bins: tuple[ReliabilityBin, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "binning": self.binning,
            "n_bins": self.n_bins,
            "interval": self.interval,
            "bins": [asdict(b) for b in self.bins],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReliabilityTable:
        return cls(
            data["value"], data["binning"], data["n_bins"], data["interval"],
            tuple(ReliabilityBin(**b) for b in data["bins"]),
        )

    def to_frame(self) -> pd.DataFrame:
        """The bins as a pandas DataFrame, one row per non-empty bin."""
        import pandas as pd

        return pd.DataFrame([asdict(b) for b in self.bins], columns=[f.name for f in fields(ReliabilityBin)])


def reliability_table(stats: BinStatistics, *, value: str) -> ReliabilityTable:
    """Turn equal-width statistics into the rows of a reliability diagram.

    One row per non-empty bin with the Wilson 95% interval on its accuracy.
    """
    edges = stats.edges
    keep = np.flatnonzero(stats.nonempty)
    count = stats.count[keep]
    confidence = stats.mean_value()[keep]
    accuracy = stats.mean_outcome()[keep]
    low, high = wilson_interval(stats.sum_outcome[keep], count)
    bins = tuple(
        ReliabilityBin(
            bin=int(m) + 1,
            lower=float(edges[m]),
            upper=float(edges[m + 1]),
            count=int(n),
            correct=int(round(k)),
            mean_confidence=float(c),
            accuracy=float(a),
            gap=float(a - c),
            accuracy_low=float(lo),
            accuracy_high=float(hi),
        )
        for m, n, k, c, a, lo, hi in zip(keep, count, stats.sum_outcome[keep], confidence, accuracy, low, high)
    )
    return ReliabilityTable(value, "equal-width", stats.n_bins, "wilson-95", bins)
