"""What the human-label analysis found: plain data that reporters read (JSON ``human``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..stats.bootstrap import BootstrapResult

#: The level of a noise floor's range (:mod:`calaudit.human.noise_floor`).
FLOOR_LEVEL = 0.95
#: How a noise floor is computed, in words (the JSON's ``method``).
FLOOR_METHOD = ("each item's votes redrawn from a multinomial with its plug-in split (its votes / its number of "
                "votes) and the same number of votes (above 1,000 votes, each class's binomial by its normal "
                "approximation), seeded by a hash of the seed and the item's position; the plug-in split scored as "
                "the model against each redraw; mean and 2.5th-97.5th percentiles over the simulations")


@dataclass(frozen=True)
class FloorValue:
    """One metric's floor: the mean over the simulations and the range holding the
    middle ``level`` of them."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FloorValue:
        return cls(float(data["value"]), float(data["low"]), float(data["high"]))


@dataclass(frozen=True)
class NoiseFloor:
    """The noise floor of the human metrics on one set of rows (JSON ``noise_floor``).

    ``metrics`` maps each human metric to its :class:`FloorValue` (a metric whose
    simulated values are mostly undefined, agreement when nearly every redraw is tied,
    is left out). ``votes_per_item`` is the median number of votes per row (the vote
    depth the floor belongs to); ``rows`` the number of rows.
    """

    metrics: dict[str, FloorValue]
    votes_per_item: float
    rows: int
    simulations: int
    seed: int
    level: float = FLOOR_LEVEL
    method: str = FLOOR_METHOD

    def value(self, name: str) -> float | None:
        found = self.metrics.get(name)
        return None if found is None else found.value

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": {name: value.to_dict() for name, value in self.metrics.items()},
                "votes_per_item": self.votes_per_item, "rows": self.rows, "simulations": self.simulations,
                "seed": self.seed, "level": self.level, "method": self.method}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseFloor:
        return cls({name: FloorValue.from_dict(value) for name, value in data["metrics"].items()},
                   float(data["votes_per_item"]), int(data["rows"]), int(data["simulations"]), int(data["seed"]),
                   float(data.get("level", FLOOR_LEVEL)), str(data.get("method", FLOOR_METHOD)))


@dataclass(frozen=True)
class HumanPart:
    """The rows on one side of the hard/easy split.

    ``metrics`` holds the majority-label ``accuracy``, ``ece`` and ``nll`` and every
    human metric on these rows; ``intervals`` their row-bootstrap intervals (``None``
    without resampling or with too few rows). ``confidence`` is the model's mean
    top-label confidence here, ``human_share`` the mean share of the most common human
    answer, ``model_share`` the mean probability the model gave that answer.
    ``noise_floor``: what a model equal to the crowd's split would score on these rows
    (:mod:`calaudit.human.noise_floor`; ``None`` for soft labels or an empty part).
    """

    name: str  # "hard" or "easy"
    n: int
    share: float
    metrics: dict[str, float]
    intervals: BootstrapResult | None
    confidence: float | None  # None for an empty part
    human_share: float | None
    model_share: float | None
    noise_floor: NoiseFloor | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n": self.n, "share": self.share, "metrics": dict(self.metrics),
                "intervals": self.intervals.to_dict() if self.intervals else None, "confidence": self.confidence,
                "human_share": self.human_share, "model_share": self.model_share,
                "noise_floor": self.noise_floor.to_dict() if self.noise_floor is not None else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HumanPart:
        intervals = BootstrapResult.from_dict(data["intervals"]) if data.get("intervals") else None
        floor = NoiseFloor.from_dict(data["noise_floor"]) if data.get("noise_floor") else None
        return cls(data["name"], data["n"], data["share"], dict(data["metrics"]), intervals, data["confidence"],
                   data["human_share"], data["model_share"], floor)


@dataclass(frozen=True)
class HumanSplit:
    """How rows were split into hard (annotators disagree) and easy.

    ``measure`` is the entropy (natural log) of each row's human distribution; a row
    is hard when it is at least ``threshold``. ``rule`` is the ``--hard-split`` text
    that set it (``"70/30"``: the entropy of a 70/30 two-way split).
    """

    rule: str
    threshold: float
    measure: str = "entropy of the human distribution (nats)"

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "threshold": self.threshold, "measure": self.measure}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HumanSplit:
        return cls(data["rule"], data["threshold"], data.get("measure", cls.measure))


@dataclass(frozen=True)
class HumanAnalysis:
    """Calibration against what people said (docs/metrics.md, section 13).

    ``metrics``: the human metrics on every row. ``intervals``: their row-bootstrap
    intervals; ``intervals_with_annotator_noise``: the same with each resampled row's
    votes redrawn from a multinomial (``None`` for soft labels, which carry no counts).
    ``annotator_noise_shift``: how far redrawing the votes moves each metric on
    average (the plug-in figure's bias from having few votes, estimated).
    ``n_annotators``: ``min``, ``median`` and ``max`` votes per row (``None`` for soft
    labels). ``tied_rows``: rows whose plurality vote is tied (left out of
    ``human_plurality_agreement``). ``noise_floor``: what a model equal to the crowd's
    split would score at these vote depths (:mod:`calaudit.human.noise_floor`; ``None``
    for soft labels, which carry no vote counts: ``notes`` says so).
    """

    kind: str  # "votes" or "soft"
    columns: tuple[str, ...]
    n_annotators: dict[str, float] | None
    metrics: dict[str, float]
    intervals: BootstrapResult | None
    intervals_with_annotator_noise: BootstrapResult | None
    annotator_noise_shift: dict[str, float] | None
    split: HumanSplit
    hard: HumanPart
    easy: HumanPart
    tied_rows: int
    label_from: str
    tie_rule: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    noise_floor: NoiseFloor | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "columns": list(self.columns),
            "n_annotators": dict(self.n_annotators) if self.n_annotators is not None else None,
            "metrics": dict(self.metrics),
            "intervals": self.intervals.to_dict() if self.intervals else None,
            "intervals_with_annotator_noise": (self.intervals_with_annotator_noise.to_dict()
                                               if self.intervals_with_annotator_noise else None),
            "annotator_noise_shift": dict(self.annotator_noise_shift) if self.annotator_noise_shift else None,
            "split": self.split.to_dict(),
            "hard": self.hard.to_dict(),
            "easy": self.easy.to_dict(),
            "tied_rows": self.tied_rows,
            "label_from": self.label_from,
            "tie_rule": self.tie_rule,
            "notes": list(self.notes),
            "noise_floor": self.noise_floor.to_dict() if self.noise_floor is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HumanAnalysis:
        noise = data.get("intervals_with_annotator_noise")
        return cls(
            data["kind"], tuple(data.get("columns") or ()), data.get("n_annotators"), dict(data["metrics"]),
            BootstrapResult.from_dict(data["intervals"]) if data.get("intervals") else None,
            BootstrapResult.from_dict(noise) if noise else None, data.get("annotator_noise_shift"),
            HumanSplit.from_dict(data["split"]), HumanPart.from_dict(data["hard"]), HumanPart.from_dict(data["easy"]),
            data["tied_rows"], data["label_from"], data["tie_rule"], tuple(data.get("notes") or ()),
            NoiseFloor.from_dict(data["noise_floor"]) if data.get("noise_floor") else None,
        )
