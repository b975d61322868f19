"""Several models against the same human votes: paired differences and which model is
closest to how people disagree (docs/metrics.md, section 10, "With human votes").

Each model's human metrics and their two intervals come from its own audit
(:func:`calaudit.human.analysis.analyse_human`, the same analysis as ``run``). This
module adds what only a comparison has: the paired differences of
:data:`HUMAN_DIFFERENCES`, resampled on the very rows the other differences are
(:func:`calaudit.decisions.compare.paired_draws` hands it each block of drawn rows), and
the ranking by :data:`HUMAN_RANKING_METRIC`.

Why the cross-entropy ranks the models: it is linear in the human distribution ``H``,
so its expectation over the vote noise is the cross-entropy against the crowd's true
split, which the true split minimises (a proper score). TVD is not: against a few
votes per item it favours models blunter than the truth. TVD's difference is shown
beside it, since it reads directly as probability out of place.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..predictions.value import Predictions
from .comparison_result import ROUNDING, Difference, Ranking

#: The human metrics with a paired difference (per-row means: resampled exactly).
HUMAN_DIFFERENCES = ("human_cross_entropy", "human_tvd")
#: The metric that says which model is closest to how people disagree (lower is better).
HUMAN_RANKING_METRIC = "human_cross_entropy"


def human_terms(predictions: Sequence[Predictions]) -> list[dict[str, np.ndarray]] | None:
    """Each model's per-row terms of :data:`HUMAN_DIFFERENCES` against its human labels
    (:func:`calaudit.human.metrics.row_terms`), or ``None`` unless every model has them."""
    if any(p.human is None for p in predictions):
        return None
    from ..human.metrics import row_terms

    out = []
    for p in predictions:
        terms = row_terms(p.y_proba, p.human.distribution, tie_tolerance=p.human.tie_tolerance)
        out.append({name: terms[name] for name in HUMAN_DIFFERENCES})
    return out


def resampled_means(terms: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Each term's mean over the drawn ``rows`` of each resample: ``(B,)`` per metric."""
    return {name: term[rows].mean(axis=1) for name, term in terms.items()}


def human_references(audits: Sequence) -> list[dict[str, float]] | None:
    """Each audit's full-data value of :data:`HUMAN_DIFFERENCES` (its ``human.metrics``),
    or ``None`` unless every audit has a human analysis."""
    if any(audit.human is None for audit in audits):
        return None
    return [{name: float(audit.human.metrics[name]) for name in HUMAN_DIFFERENCES if name in audit.human.metrics}
            for audit in audits]


# ------------------------------------------------------------------ the ranking


def rank_by_people(
    names: Sequence[str], values: dict[str, float], differences: Sequence[Difference], n_samples: int,
    calibration: Ranking, *, metric: str = HUMAN_RANKING_METRIC,
) -> Ranking:
    """Models ordered by ``values`` (their cross-entropy against the votes, lower is
    closer to how people split; ties in input order) and the plain sentences that
    rank them, then, when this order is not ``calibration``'s, a sentence saying so,
    and naming any pair that the two orders set apart beyond chance in opposite
    directions. Neighbours whose difference is not beyond chance form one group, as
    in :func:`calaudit.decisions.compare.rank_models`."""
    position = {name: k for k, name in enumerate(names)}
    order = sorted(names, key=lambda name: (round(values[name] / ROUNDING), position[name]))
    by_pair: dict[tuple[str, str], Difference] = {}
    for item in differences:
        if item.metric == metric:
            by_pair[(item.a, item.b)] = by_pair[(item.b, item.a)] = item

    def apart(a: str, b: str, pairs: dict[tuple[str, str], Difference]) -> bool:
        item = pairs.get((a, b))
        return item is not None and item.distinguishable

    groups: list[list[str]] = [[order[0]]]
    for closer, further in zip(order, order[1:]):
        if apart(closer, further, by_pair):
            groups.append([further])
        else:
            groups[-1].append(further)
    sentences = []
    if len(order) > 2:
        sentences.append(f"Ordered by how close they come to how people's votes split, closest first: "
                         f"{_listed(order)}.")
    for k, group in enumerate(groups):
        if len(group) > 1:
            figures = ", ".join(_nats(values[name]) for name in group[:-1]) + f" and {_nats(values[group[-1]])}"
            sentences.append(f"On how people's votes split, {_listed(group)} cannot be told apart on {n_samples:,} "
                             f"items (surprise at people's answers {figures} on average).")
        if k + 1 < len(groups):
            closer, further = group[-1], groups[k + 1][0]
            low, high = _pair(values[closer], values[further])
            sentences.append(
                f"{closer} is closer than {further} to how people disagree: it is less surprised by the answers "
                f"people gave ({low} against {high} on average; the gap is beyond chance on {n_samples:,} "
                "shared items)."
            )
    calibrated = list(calibration.order)
    if calibrated != order:
        sentences.append(_orders_differ(calibrated, order, differences, calibration.metric, metric))
    return Ranking(metric, tuple(order), " ".join(sentences))


def _orders_differ(calibrated: list[str], closest: list[str], differences: Sequence[Difference],
                   calibration_metric: str, metric: str) -> str:
    """The sentence that says the two orders differ, and a pair told apart both ways."""
    sign = {}
    for item in differences:
        if item.distinguishable and item.metric in (calibration_metric, metric):
            better, worse = (item.a, item.b) if item.difference < 0 else (item.b, item.a)
            sign[(item.metric, better, worse)] = True
    crossed = [(a, b) for (m, a, b) in sign if m == calibration_metric and (metric, b, a) in sign]
    if calibrated[0] != closest[0]:
        text = (f"The two orders differ: {calibrated[0]} is the best calibrated against the plurality vote, but "
                f"{closest[0]} is the closest to how people disagree.")
    else:
        text = (f"The two orders differ below the top: by calibration {_listed(calibrated)}, by closeness to how "
                f"people disagree {_listed(closest)}.")
    if crossed:
        a, b = crossed[0]
        text += (f" {a} is better calibrated than {b}, yet {b} is closer to how people disagree, both beyond "
                 "chance.")
    else:
        text += " No pair is set apart beyond chance in opposite directions by the two."
    return text


def _nats(value: float) -> str:
    return f"{value:.3f}"


def _pair(closer: float, further: float) -> tuple[str, str]:
    """Two figures told apart, with as many decimals as show them apart (three unless
    they are closer than that)."""
    for digits in range(3, 12):
        low, high = f"{closer:.{digits}f}", f"{further:.{digits}f}"
        if low != high:
            return low, high
    return repr(closer), repr(further)


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
