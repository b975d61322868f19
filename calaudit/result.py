"""The audit result: plain data that reporters read and the gate judges.

:meth:`AuditResult.to_dict` is the JSON document ``calaudit run --json`` writes. Its
layout is a public contract (docs/json.md, "The JSON result"): a change to it bumps
:data:`FORMAT_VERSION`. The parts of it the vendor decisions fill in (segments and
review routing, made by :mod:`calaudit.decisions`) are defined here too, so the result
reads back without the code that computes them; nothing here computes a statistic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .baselines.comparison import Comparison
from .display import html_of
from .gate import GateFloor, GateResult
from .human.results import HumanAnalysis
from .stats.bootstrap import BootstrapResult, Interval
from .stats.metric_info import METRICS
from .stats.reliability import ReliabilityBin, ReliabilityTable  # noqa: F401 - re-exported: part of the result
from .stats.verdict import Verdict

if TYPE_CHECKING:
    import pandas as pd

FORMAT_NAME = "calaudit.audit"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ClassSummary:
    """Per-class figures: ``ece`` is the class's term of ``classwise_ece``."""

    name: str
    support: int
    predicted: int
    frequency: float
    mean_probability: float
    ece: float


@dataclass(frozen=True)
class ClassReliability:
    """The reliability table of one class's probability column (``P[:, k]`` against
    ``1[y == k]``), kept for the classes the report shows."""

    name: str
    ece: float
    table: ReliabilityTable

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ece": self.ece, "table": self.table.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassReliability:
        return cls(data["name"], data["ece"], ReliabilityTable.from_dict(data["table"]))


@dataclass(frozen=True)
class NoiseSummary:
    """How large an ECE chance alone would give a perfectly calibrated model with the
    same confidences on the same number of rows (consistency resampling)."""

    ece_noise_floor: float
    ece_noise_95: float
    p_value: float
    distinguishable: bool
    simulations: int
    method: str

    @classmethod
    def from_test(cls, test: Any, measured_ece: float) -> NoiseSummary:
        return cls(test.noise_floor, test.noise_95, test.p_value, measured_ece > test.noise_95, test.simulations,
                   test.method)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SmoothReliability:
    """The smooth-ECE reliability curve: estimated accuracy at each confidence ``t``,
    with the density of confidences there (Blasiok & Nakkiran 2023)."""

    bandwidth: float
    t: tuple[float, ...]
    accuracy: tuple[float, ...]
    density: tuple[float, ...]

    @classmethod
    def from_curve(cls, curve: Any) -> SmoothReliability:
        return cls(float(curve.bandwidth), tuple(curve.t.tolist()), tuple(curve.accuracy.tolist()),
                   tuple(curve.density.tolist()))

    def to_dict(self) -> dict[str, Any]:
        return {"bandwidth": self.bandwidth, "t": list(self.t), "accuracy": list(self.accuracy),
                "density": list(self.density)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SmoothReliability:
        return cls(data["bandwidth"], tuple(data["t"]), tuple(data["accuracy"]), tuple(data["density"]))


# ------------------------------------------------------------------ segments and review routing


def _intervals_to_dict(intervals: dict[str, Interval] | None) -> dict[str, dict[str, float]] | None:
    if intervals is None:
        return None
    return {name: interval.to_dict() for name, interval in intervals.items()}


def _intervals_from_dict(data: dict[str, Any] | None) -> dict[str, Interval] | None:
    if data is None:
        return None
    return {name: Interval(**value) for name, value in data.items()}


@dataclass(frozen=True)
class RoutingTarget:
    """The review threshold for one target accuracy.

    Predictions whose top confidence is at least ``threshold`` are fast-tracked, the
    rest go to review. ``achievable`` is False when no threshold could be shown, with
    confidence ``level``, to reach ``target`` on these rows (``threshold`` is then
    None, everything goes to review, and ``reason`` says why). Accuracy intervals are
    two-sided Clopper-Pearson at ``level``; ``fast_track_accuracy_low`` is the
    one-sided Clopper-Pearson lower bound of the fast-tracked slice on its own.

    How it was found (:mod:`calaudit.decisions.sequences`): ``starts`` are the rows at
    which each chained sequence began and ``start_levels`` the level each was tested at; the reported
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


# ------------------------------------------------------------------ the audit


@dataclass(frozen=True)
class AuditResult:
    """Everything one audit found. Plain data: reporters only read it.

    ``metrics`` maps the names of docs/metrics.md (``ece``, ``mce``, ``brier``, ...) to
    values; metric metadata (direction, parameters) is in :data:`calaudit.METRICS`.
    """

    n_samples: int
    n_classes: int
    class_names: tuple[str, ...]
    metrics: dict[str, float]
    reliability: ReliabilityTable
    per_class: tuple[ClassSummary, ...]
    diagnostics: dict[str, Any]
    source: dict[str, Any]
    options: dict[str, Any]
    tool_version: str
    created_at: str
    positive_reliability: ReliabilityTable | None = None
    bands: ReliabilityTable | None = None
    class_reliability: tuple[ClassReliability, ...] = ()
    verdict: Verdict | None = None
    intervals: BootstrapResult | None = None
    noise: NoiseSummary | None = None
    smooth_reliability: SmoothReliability | None = None
    baselines: Comparison | None = None
    gate: GateResult | None = None
    groups: tuple[SegmentAnalysis, ...] = ()
    routing: Routing | None = None
    human: HumanAnalysis | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n_bins(self) -> int:
        return int(self.options["n_bins"])

    def interval(self, name: str) -> tuple[float, float] | None:
        """The bootstrap interval of metric ``name``, if one was computed."""
        if self.intervals is None or name not in self.intervals.intervals:
            return None
        interval = self.intervals.intervals[name]
        return interval.low, interval.high

    def gated_metrics(self) -> dict[str, float]:
        """Every figure a gate may judge: ``metrics`` and, with human labels, the human
        metrics (on all rows)."""
        return {**self.metrics, **(self.human.metrics if self.human is not None else {})}

    def gated_interval(self, name: str) -> tuple[float, float] | None:
        """The interval a gate uses for ``name``: the audit's, or a human metric's row
        bootstrap interval."""
        if name in self.metrics:
            return self.interval(name)
        human = self.human.intervals if self.human is not None else None
        if human is None or name not in human.intervals:
            return None
        return human.intervals[name].low, human.intervals[name].high

    def gated_floors(self) -> dict[str, GateFloor]:
        """The noise floor of each gated metric that has one: the human metrics' (what a
        model equal to the crowd's split would show at these vote depths) and the ECE's
        (a perfectly calibrated model with these confidences)."""
        floors = {}
        if self.noise is not None:
            floors["ece"] = GateFloor(self.noise.ece_noise_floor,
                                      "what a perfectly calibrated model with these confidences would show")
        floor = self.human.noise_floor if self.human is not None else None
        if floor is not None:
            words = (f"what a model equal to the crowd's split would show with {floor.votes_per_item:g} votes per item "
                     "(median)")
            floors.update({name: GateFloor(value.value, words) for name, value in floor.metrics.items()})
        return floors

    def to_frame(self) -> pd.DataFrame:
        """The top-label reliability table as a DataFrame."""
        return self.reliability.to_frame()

    def _repr_html_(self) -> str | None:
        """The card Jupyter shows for a result: the verdict, the icon array, a small
        reliability diagram and the key metrics with their intervals, self-contained
        (:mod:`calaudit.reporters.card`, found through :mod:`calaudit.display`)."""
        return html_of(self)

    def metric_definitions(self) -> dict[str, dict[str, Any]]:
        """Direction, parameters and meaning of each metric present."""
        return {
            name: {
                "title": METRICS[name].title,
                "better": METRICS[name].better,
                "params": METRICS[name].params(self.n_bins),
                "meaning": METRICS[name].meaning,
                "definition": METRICS[name].definition,
            }
            for name in self.metrics
        }

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document (docs/json.md, "The JSON result")."""
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "tool": {"name": "calaudit", "version": self.tool_version},
            "created_at": self.created_at,
            "input": self.source,
            "n_samples": self.n_samples,
            "n_classes": self.n_classes,
            "class_names": list(self.class_names),
            "metrics": dict(self.metrics),
            "metric_definitions": self.metric_definitions(),
            "reliability": self.reliability.to_dict(),
            "reliability_positive": self.positive_reliability.to_dict() if self.positive_reliability else None,
            "confidence_bands": self.bands.to_dict() if self.bands else None,
            "class_reliability": [entry.to_dict() for entry in self.class_reliability],
            "verdict": self.verdict.to_dict() if self.verdict else None,
            "intervals": self.intervals.to_dict() if self.intervals else None,
            "noise": self.noise.to_dict() if self.noise else None,
            "smooth_reliability": self.smooth_reliability.to_dict() if self.smooth_reliability else None,
            "baselines": self.baselines.to_dict() if self.baselines else None,
            "per_class": [asdict(c) for c in self.per_class],
            "diagnostics": dict(self.diagnostics),
            "options": dict(self.options),
            "gate": self.gate.to_dict() if self.gate is not None else None,
            **self._decisions_to_dict(),
            **({"human": self.human.to_dict()} if self.human is not None else {}),
            **self.extras,
        }

    def _decisions_to_dict(self) -> dict[str, Any]:
        """``groups`` (one object per segment), ``group_tests`` (how each family of
        segments was tested) and ``routing``, when they were asked for."""
        out: dict[str, Any] = {}
        if self.groups:
            out["groups"] = [segment.to_dict() for analysis in self.groups for segment in analysis.segments]
            out["group_tests"] = [{k: v for k, v in analysis.to_dict().items() if k != "segments"}
                                  for analysis in self.groups]
        if self.routing is not None:
            out["routing"] = self.routing.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditResult:
        """Rebuild a result from :meth:`to_dict` output (same format version only)."""
        from .errors import InvalidInputError

        if data.get("format") != FORMAT_NAME or data.get("format_version") != FORMAT_VERSION:
            raise InvalidInputError(
                f"not a calaudit result of format version {FORMAT_VERSION}: format "
                f"{data.get('format')!r}, version {data.get('format_version')!r}"
            )
        known = {
            "format", "format_version", "tool", "created_at", "input", "n_samples", "n_classes", "class_names",
            "metrics", "metric_definitions", "reliability", "reliability_positive", "per_class", "diagnostics",
            "options", "gate", "confidence_bands", "class_reliability", "verdict", "intervals", "noise",
            "smooth_reliability", "baselines", "groups", "group_tests", "routing", "human",
        }
        positive = data.get("reliability_positive")
        reliability = ReliabilityTable.from_dict(data["reliability"])
        verdict = Verdict.from_dict(data["verdict"]) if data.get("verdict") else None
        metrics = dict(data["metrics"])
        if verdict is None and {"accuracy", "confidence_gap", "ece"} <= set(metrics):
            # A result written without a verdict: the verdict is a pure function of
            # figures it does hold, so it is decided again rather than left out.
            from .stats.verdict import decide_verdict

            verdict = decide_verdict(n_samples=data["n_samples"], accuracy=metrics["accuracy"],
                                     confidence_gap=metrics["confidence_gap"], ece=metrics["ece"],
                                     bins=reliability.bins)
        return cls(
            n_samples=data["n_samples"],
            n_classes=data["n_classes"],
            class_names=tuple(data["class_names"]),
            metrics=metrics,
            reliability=reliability,
            per_class=tuple(ClassSummary(**c) for c in data["per_class"]),
            diagnostics=dict(data["diagnostics"]),
            source=dict(data["input"]),
            options=dict(data["options"]),
            tool_version=data["tool"]["version"],
            created_at=data["created_at"],
            positive_reliability=ReliabilityTable.from_dict(positive) if positive else None,
            bands=ReliabilityTable.from_dict(data["confidence_bands"]) if data.get("confidence_bands") else None,
            class_reliability=tuple(ClassReliability.from_dict(c) for c in data.get("class_reliability") or ()),
            verdict=verdict,
            intervals=BootstrapResult.from_dict(data["intervals"]) if data.get("intervals") else None,
            noise=NoiseSummary(**data["noise"]) if data.get("noise") else None,
            smooth_reliability=SmoothReliability.from_dict(data["smooth_reliability"])
            if data.get("smooth_reliability") else None,
            baselines=Comparison.from_dict(data["baselines"]) if data.get("baselines") else None,
            gate=GateResult.from_dict(data["gate"]) if data.get("gate") else None,
            groups=_groups_from_dict(data),
            routing=Routing.from_dict(data["routing"]) if data.get("routing") else None,
            human=HumanAnalysis.from_dict(data["human"]) if data.get("human") else None,
            extras={k: v for k, v in data.items() if k not in known},
        )


def _groups_from_dict(data: dict[str, Any]) -> tuple[SegmentAnalysis, ...]:
    segments = data.get("groups") or []
    return tuple(
        SegmentAnalysis.from_dict({**test, "segments": [s for s in segments if s["found_by"] == test["found_by"]]})
        for test in data.get("group_tests") or []
    )


def read_result_file(path: str | Path) -> AuditResult:
    """Read a JSON result written by ``calaudit run --json`` (for ``calaudit check``)."""
    import json

    from .errors import InvalidInputError

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such result file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: cannot read the file ({exc})") from None
    except ValueError as exc:
        raise InvalidInputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path}: not a calaudit result (expected a JSON object)")
    try:
        result = AuditResult.from_dict(data)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}: {exc}") from None
    except KeyError as exc:
        raise InvalidInputError(f"{path}: not a calaudit result (missing key {exc.args[0]!r})") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidInputError(f"{path}: not a calaudit result ({exc})") from None
    bad = [name for name, value in result.metrics.items() if not isinstance(value, (int, float)) or isinstance(value, bool)]
    if bad:
        raise InvalidInputError(f"{path}: metric {bad[0]!r} is {result.metrics[bad[0]]!r}; expected a number")
    return result
