"""What the human-label analysis found: plain data that reporters read (JSON ``human``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..stats.bootstrap import BootstrapResult


@dataclass(frozen=True)
class HumanPart:
    """The rows on one side of the hard/easy split.

    ``metrics`` holds the majority-label ``accuracy``, ``ece`` and ``nll`` and every
    human metric on these rows; ``intervals`` their row-bootstrap intervals (``None``
    without resampling or with too few rows). ``confidence`` is the model's mean
    top-label confidence here, ``human_share`` the mean share of the most common human
    answer, ``model_share`` the mean probability the model gave that answer.
    """

    name: str  # "hard" or "easy"
    n: int
    share: float
    metrics: dict[str, float]
    intervals: BootstrapResult | None
    confidence: float | None  # None for an empty part
    human_share: float | None
    model_share: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n": self.n, "share": self.share, "metrics": dict(self.metrics),
                "intervals": self.intervals.to_dict() if self.intervals else None, "confidence": self.confidence,
                "human_share": self.human_share, "model_share": self.model_share}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HumanPart:
        intervals = BootstrapResult.from_dict(data["intervals"]) if data.get("intervals") else None
        return cls(data["name"], data["n"], data["share"], dict(data["metrics"]), intervals, data["confidence"],
                   data["human_share"], data["model_share"])


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
    ``human_plurality_agreement``).
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
        )
