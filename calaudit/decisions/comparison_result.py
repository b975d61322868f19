"""The result of ``calaudit compare``: plain data, written as the ``calaudit.compare`` JSON.

Each model keeps its full :class:`calaudit.result.AuditResult` (its reliability
curve, segments and routing feed the report); the comparison adds the paired
differences and the ranking.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..display import html_of
from ..gate import GateResult
from ..result import AuditResult

COMPARE_FORMAT = "calaudit.compare"
COMPARE_FORMAT_VERSION = 1
#: Differences no further than this from 0 are float rounding, not a difference between
#: models: the same model read once as probabilities and once as logits differs by
#: ~1e-16 on every resample, an interval that excludes 0. A float64 mean over N rows
#: rounds by about sqrt(N) x 1e-16 (1e-11 on ten billion rows); 1e-9 is a ten-millionth
#: of a point of calibration error.
ROUNDING = 1e-9


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
    them, saying which differences are beyond chance. With human votes, ``human`` is
    the order by closeness to how people disagree (its own metric, order and
    sentences), and ``sentence`` holds both."""

    metric: str
    order: tuple[str, ...]
    sentence: str
    human: Ranking | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric, "order": list(self.order), "sentence": self.sentence}
        if self.human is not None:
            out["human"] = self.human.to_dict()
            out["orders_differ"] = list(self.human.order) != list(self.order)
        return out


@dataclass(frozen=True)
class ComparedModel:
    """One model of a comparison: its display name, what was read, and its audit."""

    name: str
    input: str
    audit: AuditResult

    def to_dict(self) -> dict[str, Any]:
        audit = self.audit
        return {
            "name": self.name,
            "input": self.input,
            "n_samples": audit.n_samples,
            "metrics": dict(audit.metrics),
            "intervals": audit.intervals.to_dict()["metrics"] if audit.intervals is not None else None,
            "verdict": audit.verdict.to_dict() if audit.verdict is not None else None,
            "reliability": audit.reliability.to_dict(),
            "source": audit.source,
            "groups": [s.to_dict() for analysis in audit.groups for s in analysis.segments],
            "routing": audit.routing.to_dict() if audit.routing is not None else None,
            "gate": audit.gate.to_dict() if audit.gate is not None else None,
            "human": audit.human.to_dict() if audit.human is not None else None,
        }


@dataclass(frozen=True)
class DisagreementPart:
    """The rank correlation on one set of items (``all`` or ``hard``): ``value`` and
    its bootstrap interval ``[low, high]`` (``None`` where undefined: fewer than three
    items, or every item with the same disagreement or entropy)."""

    name: str
    n: int
    value: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Disagreement:
    """Do the models disagree where people disagree? (docs/metrics.md, section 10).

    ``all`` and ``hard``: Spearman's rank correlation between each item's model
    disagreement (``measure``) and the entropy of its human distribution, on every
    item and on the hard ones (the human split, ``rule``), with a ``level`` percentile
    bootstrap interval over items (``resamples``, ``seed``). ``overlap``: of the
    ``hard`` items people disagree on, how many are among as many items the models
    disagree on most (``among_most_disagreed``), and how many chance alone would
    put there (``expected_by_chance`` = hard x hard / N).
    """

    measure: str
    method: str
    level: float
    resamples: int
    seed: int
    rule: str
    all: DisagreementPart
    hard: DisagreementPart
    overlap: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.all.value, "low": self.all.low, "high": self.all.high, "method": self.method,
                "measure": self.measure, "n": self.all.n, "level": self.level, "resamples": self.resamples,
                "seed": self.seed, "hard": {**self.hard.to_dict(), "rule": self.rule}, "overlap": dict(self.overlap)}


@dataclass(frozen=True)
class EnsembleResult:
    """The mean of the compared models' probabilities, audited like a model (never
    ranked with them): its audit, each model's paired differences against it
    (``a`` the model, ``b`` :attr:`name`), and, with human votes, whether the models
    disagree where people do."""

    members: tuple[str, ...]
    audit: AuditResult
    differences: tuple[Difference, ...]
    disagreement: Disagreement | None
    name: str = "ensemble"
    method: str = "the mean of the compared models' probabilities, item by item"

    def to_dict(self) -> dict[str, Any]:
        audit = self.audit
        return {
            "name": self.name,
            "members": list(self.members),
            "method": self.method,
            "n_samples": audit.n_samples,
            "metrics": dict(audit.metrics),
            "intervals": audit.intervals.to_dict()["metrics"] if audit.intervals is not None else None,
            "verdict": audit.verdict.to_dict() if audit.verdict is not None else None,
            "reliability": audit.reliability.to_dict(),
            "human": audit.human.to_dict() if audit.human is not None else None,
            "differences": [item.to_dict() for item in self.differences],
            "disagreement": self.disagreement.to_dict() if self.disagreement is not None else None,
        }


@dataclass(frozen=True)
class ComparisonResult:
    """Several models audited on the same rows, and how they differ.

    ``alignment`` says how rows were matched (``{"by": "id", "column": ...}`` or
    ``{"by": "order"}``); ``resamples``, ``level`` and ``seed`` are those of the paired
    bootstrap (every model drew the same resampled rows).
    """

    models: tuple[ComparedModel, ...]
    differences: tuple[Difference, ...]
    ranking: Ranking
    n_samples: int
    alignment: dict[str, Any]
    resamples: int
    level: float
    seed: int
    options: dict[str, Any]
    tool_version: str
    created_at: str
    extras: dict[str, Any] = field(default_factory=dict)
    ensemble: EnsembleResult | None = None

    @property
    def gates(self) -> dict[str, GateResult]:
        """Each model's gate result (only models that were judged)."""
        return {model.name: model.audit.gate for model in self.models if model.audit.gate is not None}

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates.values())

    def _repr_html_(self) -> str | None:
        """The card Jupyter shows for a comparison: the ranking sentence and each
        model's verdict, ECE and accuracy with their intervals
        (:mod:`calaudit.reporters.card`, found through :mod:`calaudit.display`)."""
        return html_of(self)

    def difference(self, a: str, b: str, metric: str) -> Difference | None:
        for item in self.differences:
            if (item.a, item.b, item.metric) == (a, b, metric):
                return item
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": COMPARE_FORMAT,
            "format_version": COMPARE_FORMAT_VERSION,
            "tool": {"name": "calaudit", "version": self.tool_version},
            "created_at": self.created_at,
            "n_samples": self.n_samples,
            "alignment": dict(self.alignment),
            "paired_bootstrap": {"resamples": self.resamples, "level": self.level, "seed": self.seed},
            "models": [model.to_dict() for model in self.models],
            "differences": [item.to_dict() for item in self.differences],
            "ranking": self.ranking.to_dict(),
            "ensemble": self.ensemble.to_dict() if self.ensemble is not None else None,
            "options": dict(self.options),
            **self.extras,
        }
