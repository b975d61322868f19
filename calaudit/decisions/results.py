"""Plain data of the vendor decisions: what reporters and the JSON read.

Nothing here computes a statistic; :mod:`.compare`, :mod:`.segments` and
:mod:`.routing` make these values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..stats.bootstrap import Interval

COMPARE_FORMAT = "calaudit.compare"
COMPARE_FORMAT_VERSION = 1
#: Differences no further than this from 0 are float rounding, not a difference between
#: models: the same model read once as probabilities and once as logits differs by
#: ~1e-16 on every resample, an interval that excludes 0. A float64 mean over N rows
#: rounds by about sqrt(N) x 1e-16 (1e-11 on ten billion rows); 1e-9 is a ten-millionth
#: of a point of calibration error.
ROUNDING = 1e-9


def _intervals_to_dict(intervals: dict[str, Interval] | None) -> dict[str, dict[str, float]] | None:
    if intervals is None:
        return None
    return {name: interval.to_dict() for name, interval in intervals.items()}


def _intervals_from_dict(data: dict[str, Any] | None) -> dict[str, Interval] | None:
    if data is None:
        return None
    return {name: Interval(**value) for name, value in data.items()}


# ------------------------------------------------------------------ review routing


@dataclass(frozen=True)
class RoutingTarget:
    """The review threshold for one target accuracy.

    Predictions whose top confidence is at least ``threshold`` are fast-tracked, the
    rest go to review. ``achievable`` is False when no threshold could be shown, with
    confidence ``level``, to reach ``target`` on these rows (``threshold`` is then
    None, everything goes to review, and ``reason`` says why). Accuracy intervals are
    two-sided Clopper-Pearson at ``level``; ``fast_track_accuracy_low`` is the
    one-sided Clopper-Pearson lower bound of the fast-tracked slice on its own.

    How it was found (:mod:`.sequences`): ``starts`` are the rows at which each chained
    sequence began and ``start_levels`` the level each was tested at; the reported
    slice passed at ``tested_at`` with exact p-value ``p_value``, on the sequence that
    began at ``certified_from`` rows. ``detail`` says the same for analysts (with the
    first top slice tested and its bound); ``reason`` is for everyone.
    """

    target: float
    achievable: bool
    threshold: float | None
    fast_track_n: int
    fast_track_share: float
    fast_track_accuracy: float | None
    fast_track_accuracy_low: float | None
    fast_track_accuracy_high: float | None
    review_n: int
    review_share: float
    review_accuracy: float | None
    review_accuracy_low: float | None
    review_accuracy_high: float | None
    method: str
    reason: str | None = None
    p_value: float | None = None
    tested_at: float | None = None
    certified_from: int | None = None
    starts: tuple[int, ...] = ()
    start_levels: tuple[float, ...] = ()
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["starts"], data["start_levels"] = list(self.starts), list(self.start_levels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoutingTarget:
        """Reads what :meth:`to_dict` wrote, and older results without the newer fields."""
        data = dict(data)
        data["starts"] = tuple(data.get("starts") or ())
        data["start_levels"] = tuple(data.get("start_levels") or ())
        return cls(**data)


@dataclass(frozen=True)
class RiskCoverage:
    """Accuracy of the fast-tracked cases against the share fast-tracked (coverage),
    from the most confident case down; ``aurc`` is the area under the risk (error
    rate) - coverage curve (Geifman and El-Yaniv 2017). The curve is downsampled
    for the report; ``aurc`` uses every row."""

    aurc: float
    coverage: tuple[float, ...]
    accuracy: tuple[float, ...]
    threshold: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"aurc": self.aurc, "coverage": list(self.coverage), "accuracy": list(self.accuracy),
                "threshold": list(self.threshold)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskCoverage:
        return cls(data["aurc"], tuple(data["coverage"]), tuple(data["accuracy"]), tuple(data["threshold"]))


@dataclass(frozen=True)
class Routing:
    """Review-routing thresholds for each target, and the risk-coverage curve.

    ``scores`` says which confidences were used (``"vendor"``, or
    ``"temperature-scaled (cross-fitted)"`` for ``recalibrated``, the same analysis
    after temperature scaling when ``--baseline temperature`` was asked for).
    """

    level: float
    method: str
    n_samples: int
    scores: str
    targets: tuple[RoutingTarget, ...]
    risk_coverage: RiskCoverage
    recalibrated: Routing | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level, "method": self.method, "n_samples": self.n_samples, "scores": self.scores,
            "targets": [target.to_dict() for target in self.targets],
            "risk_coverage": self.risk_coverage.to_dict(),
            "recalibrated": self.recalibrated.to_dict() if self.recalibrated is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Routing:
        recalibrated = data.get("recalibrated")
        return cls(data["level"], data["method"], data["n_samples"], data["scores"],
                   tuple(RoutingTarget.from_dict(target) for target in data["targets"]),
                   RiskCoverage.from_dict(data["risk_coverage"]),
                   cls.from_dict(recalibrated) if recalibrated else None)


# ------------------------------------------------------------------ segments


@dataclass(frozen=True)
class Segment:
    """The calibration of one segment (rows where ``column == value``; a pair of
    columns is written ``"a & b"`` / ``"x & y"``).

    ``p_value`` tests whether its ECE is worse than the rest of the data's (one-sided);
    ``p_adjusted`` is corrected for every segment tested, and ``flagged`` is
    ``p_adjusted <= alpha``. A segment under the minimum size is ``too_small``: it has
    its size but no metrics, test or flag. ``found_by`` is ``"group-by"`` or
    ``"search"`` (then the figures come from the held-out half).
    """

    column: str
    value: str
    n: int
    found_by: str
    too_small: bool
    metrics: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, Interval] | None = None
    mean_confidence: float | None = None
    rest_ece: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    flagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column, "value": self.value, "n": self.n, "found_by": self.found_by,
            "too_small": self.too_small, "metrics": dict(self.metrics),
            "intervals": _intervals_to_dict(self.intervals), "mean_confidence": self.mean_confidence,
            "rest_ece": self.rest_ece, "p_value": self.p_value, "p_adjusted": self.p_adjusted,
            "flagged": self.flagged,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        return cls(data["column"], data["value"], data["n"], data["found_by"], data["too_small"],
                   dict(data.get("metrics") or {}), _intervals_from_dict(data.get("intervals")),
                   data.get("mean_confidence"), data.get("rest_ece"), data.get("p_value"), data.get("p_adjusted"),
                   bool(data.get("flagged")))


@dataclass(frozen=True)
class SegmentAnalysis:
    """One family of segment tests: the ``--group-by`` columns, or the search.

    ``tested`` is the number of segments tested: for ``--group-by``, those the
    correction ``correction`` (``"holm"``) accounted for at level ``alpha``; for the
    search, the candidates screened on the search half (Benjamini-Hochberg), while
    ``correction`` and ``p_adjusted`` are Holm over the ``details["measure_tested"]``
    segments kept and measured on the other half. ``segments`` are
    ordered worst first, too-small ones last. ``details`` says how the search split
    the rows, which columns were searched and which were skipped, and why.
    """

    found_by: str
    columns: tuple[str, ...]
    min_group_size: int
    alpha: float
    correction: str
    test: str
    tested: int
    segments: tuple[Segment, ...]
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "found_by": self.found_by, "columns": list(self.columns), "min_group_size": self.min_group_size,
            "alpha": self.alpha, "correction": self.correction, "test": self.test, "tested": self.tested,
            "segments": [segment.to_dict() for segment in self.segments], "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentAnalysis:
        return cls(data["found_by"], tuple(data["columns"]), data["min_group_size"], data["alpha"],
                   data["correction"], data["test"], data["tested"],
                   tuple(Segment.from_dict(s) for s in data["segments"]), dict(data.get("details") or {}))


# ------------------------------------------------------------------ comparison


@dataclass(frozen=True)
class Difference:
    """``difference = metric(a) - metric(b)`` on the same rows, with the paired
    bootstrap interval; ``distinguishable`` when the interval excludes 0; ``interval``
    how it was read off the resamples (``basic``, or ``percentile`` for MCE)."""

    a: str
    b: str
    metric: str
    difference: float
    low: float
    high: float
    distinguishable: bool
    interval: str = "basic"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Ranking:
    """Models ordered by ``metric`` (best first) and the plain sentence that ranks
    them, saying which differences are beyond chance."""

    metric: str
    order: tuple[str, ...]
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "order": list(self.order), "sentence": self.sentence}
