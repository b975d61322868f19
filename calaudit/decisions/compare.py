"""Several models on the same rows: paired bootstrap differences and a ranking.

The paired bootstrap (docs/metrics.md, section 10) draws one set of resampled rows and measures
every model on it, so what the models share (the same hard and easy cases) cancels
in each difference: ``d* = metric_a(rows*) - metric_b(rows*)``. The interval of
``d = metric_a - metric_b`` on the full data is the basic bootstrap interval
``[2 d - q(1 - a/2), 2 d - q(a/2)]`` of those ``d*`` (Davison & Hinkley 1997, section
5.2), except for a maximum over bins (MCE), whose difference gets the percentile
interval ``[q(a/2), q(1 - a/2)]``; either is clipped to the range a difference of the
metric can take and widened where needed to hold ``d``; a difference is
*distinguishable* when its interval excludes 0 by more than float rounding. The
ranking orders models by ECE and says one is better calibrated than the next only
when that difference is distinguishable, and not both ECEs are within what chance
gives a perfectly calibrated model.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import UsageError
from ..predictions.value import Predictions
from ..result import AuditResult
from ..stats.bootstrap import DEFAULT_LEVEL, Interval, basic_interval, exact_block_size, resampled_metrics
from ..stats.limits import MAX_BINS, MAX_RESAMPLES, MAX_SEED, MIN_RESAMPLES
from ..stats.metric_info import METRICS
from ..stats.metrics import compute_metrics
from .comparison_result import ROUNDING, ComparedModel, ComparisonResult, Difference, EnsembleResult, Ranking

#: The metric models are ranked on.
RANKING_METRIC = "ece"
#: Metrics whose paired difference gets the percentile interval, not the basic one: a
#: maximum over bins, whose resamples lose or gain its sparse extreme bin, so that the
#: spread of ``d* - d`` says nothing about that of ``d - truth`` (docs/metrics.md,
#: section 10; simulated in tests/compare_coverage.py).
PERCENTILE_DIFFERENCES = frozenset({"mce"})
#: How a difference's interval was read off the resamples (``interval`` of each difference).
BASIC, PERCENTILE = "basic", "percentile"


def compare_audits(
    predictions: Sequence[Predictions],
    names: Sequence[str],
    audits: Sequence[AuditResult],
    *,
    n_bins: int,
    bootstrap: int | None,
    seed: int,
    level: float = DEFAULT_LEVEL,
    alignment: dict[str, Any],
    options: dict[str, Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    ensemble: tuple[Predictions, AuditResult] | None = None,
    votes: dict[str, Any] | None = None,
) -> ComparisonResult:
    """Compare models audited on the same rows.

    ``predictions`` are the aligned sets (:func:`calaudit.decisions.alignment.align_predictions`),
    ``names`` their display names and ``audits`` each one's full audit, made with the
    same ``n_bins``. The paired bootstrap draws ``bootstrap`` resamples of the rows
    (``None``: :data:`calaudit.stats.bootstrap.DEFAULT_RESAMPLES`), the same for every model,
    seeded by ``seed``; for each pair ``(a, b)``, ``a`` before ``b`` in input order, and
    each metric with an interval that both audits hold, it gives ``metric(a) -
    metric(b)`` with its ``level`` interval. Models are ranked on ECE.

    Without resamples there is nothing to compare (the comparison is the interval):
    ``bootstrap=0`` is a :class:`calaudit.errors.UsageError`, as are fewer than two
    models and two models with the same name. ``progress(label, done, total)`` is told
    of the paired resamples drawn.

    With human labels on every set (each audit's ``human``), the differences include
    :data:`calaudit.decisions.compare_human.HUMAN_DIFFERENCES` on the same resamples, and
    the ranking says which model is closest to how people disagree
    (:func:`calaudit.decisions.compare_human.rank_by_people`). ``ensemble``, the
    predictions of :func:`calaudit.decisions.ensemble.ensemble_predictions` and their
    audit (same options), adds :attr:`ComparisonResult.ensemble`: each model's paired
    differences against it, drawn with the others, and, with human labels, whether
    the models disagree where people do (:func:`calaudit.decisions.ensemble.disagreement`).
    The JSON's ``votes`` says where the human labels came from: ``votes`` (what
    :meth:`calaudit.loaders.votes_file.VotesFile.record` gives for ``--votes FILE``),
    else the inputs' own columns.
    """
    if bootstrap is None:
        from ..stats import bootstrap as bootstrap_module

        bootstrap = bootstrap_module.DEFAULT_RESAMPLES
    _check_options(n_bins, bootstrap, seed, level)
    if not len(predictions) == len(names) == len(audits):
        raise ValueError(f"{len(predictions)} prediction sets, {len(names)} names and {len(audits)} audits")
    if len(predictions) < 2:
        raise UsageError(f"compare needs at least two models, got {len(predictions)}")
    repeated = next((name for name in names if list(names).count(name) > 1), None)
    if repeated is not None:
        raise UsageError(f"two models are named {repeated!r}; give each model its own name")
    first = predictions[0]
    for p, name, audit in zip(predictions, names, audits):
        # The caller aligns the rows and audits them: anything else here is a bug, not bad input.
        if p.n_samples != first.n_samples or p.class_names != first.class_names or not np.array_equal(
                p.y_true, first.y_true):
            raise ValueError(f"the predictions of {name!r} are not aligned with those of {names[0]!r}")
        if audit.n_samples != p.n_samples or audit.n_bins != n_bins:
            raise ValueError(f"the audit of {name!r} is not of its predictions with {n_bins} bins")
    from .compare_human import HUMAN_DIFFERENCES, HUMAN_RANKING_METRIC, human_references, human_terms, rank_by_people

    every = [*predictions, ensemble[0]] if ensemble is not None else list(predictions)
    every_audit = [*audits, ensemble[1]] if ensemble is not None else list(audits)
    if ensemble is not None and (ensemble[0].n_samples != first.n_samples or ensemble[1].n_bins != n_bins):
        raise ValueError("the ensemble is not of the compared rows, or was audited with other bins")
    references = [dict(audit.metrics) for audit in every_audit]
    bandwidths = [audit.smooth_reliability.bandwidth if audit.smooth_reliability is not None else None
                  for audit in every_audit]
    human = human_references(every_audit)
    terms = human_terms(every) if human is not None else None
    draws = paired_draws(every, n_bins=n_bins, resamples=int(bootstrap), seed=seed, references=references,
                         bandwidths=bandwidths, progress=progress, terms=terms)
    # Audits made without their intervals (intervals=False) take them from these draws: the same rows.
    from .compare_intervals import with_paired_intervals

    audits = [with_paired_intervals(audit, draw, resamples=int(bootstrap), level=level, seed=seed)
              if audit.intervals is None and audit.options.get("bootstrap") else audit
              for audit, draw in zip(audits, draws)]
    if ensemble is not None and ensemble[1].intervals is None and ensemble[1].options.get("bootstrap"):
        ensemble = (ensemble[0], with_paired_intervals(ensemble[1], draws[-1], resamples=int(bootstrap), level=level,
                                                       seed=seed))
    compared = {metric: info for metric, info in METRICS.items() if info.interval}
    if human is not None:
        from ..human.metrics import HUMAN_METRICS

        compared.update({metric: HUMAN_METRICS[metric] for metric in HUMAN_DIFFERENCES})
        references = [{**reference, **extra} for reference, extra in zip(references, human)]
    count = len(predictions)
    differences, without = paired_differences(names, references[:count], draws[:count], level=level,
                                              metrics=compared)
    # Models whose ECE is within chance of a perfectly calibrated model's (the audit's noise floor).
    within_noise = [name for name, audit in zip(names, audits)
                    if audit.noise is not None and not audit.noise.distinguishable]
    ranking = rank_models(names, {name: ref[RANKING_METRIC] for name, ref in zip(names, references)},
                          differences, first.n_samples, within_noise=within_noise)
    if human is not None:
        by_people = rank_by_people(names, {name: ref[HUMAN_RANKING_METRIC] for name, ref in zip(names, references)},
                                   differences, first.n_samples, ranking)
        ranking = Ranking(ranking.metric, ranking.order, f"{ranking.sentence} {by_people.sentence}", by_people)
    models = tuple(ComparedModel(name, _input(p), audit) for p, name, audit in zip(predictions, names, audits))
    extras: dict[str, Any] = {}
    ensemble_result = None
    if ensemble is not None:
        ensemble_result = _ensemble_result(predictions, names, ensemble[1], references, draws, level=level,
                                           metrics=compared, resamples=int(bootstrap), seed=seed, without=without)
    if without:
        extras["differences_without_interval"] = without
    if first.human is not None:
        extras["votes"] = {"kind": first.human.kind, "columns": list(first.human.columns),
                           **(votes if votes is not None else {"source": "the inputs' own columns"})}
    return ComparisonResult(
        models=models,
        differences=differences,
        ranking=ranking,
        n_samples=first.n_samples,
        alignment=dict(alignment),
        resamples=int(bootstrap),
        level=float(level),
        seed=int(seed),
        options=dict(options or {}),
        tool_version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        extras=extras,
        ensemble=ensemble_result,
    )


def _ensemble_result(predictions: Sequence[Predictions], names: Sequence[str], audit: AuditResult,
                     references: Sequence[dict[str, float]], draws: Sequence[dict[str, np.ndarray]], *,
                     level: float, metrics: dict[str, Any], resamples: int, seed: int,
                     without: list[dict[str, str]]) -> EnsembleResult:
    """Each model against the ensemble (the last of ``references`` and ``draws``) and,
    with human labels, whether the models disagree where people do."""
    from .ensemble import disagreement

    count = len(predictions)
    label = EnsembleResult.name
    pairs = [(k, count) for k in range(count)]
    differences, missing = paired_differences([*names, label], references, draws, level=level, metrics=metrics,
                                              pairs=pairs)
    without.extend(missing)
    agreement = None
    human = predictions[0].human
    if human is not None and audit.human is not None:
        from ..human.split import hard_rows

        hard, _ = hard_rows(human.distribution, audit.human.split.rule)
        agreement = disagreement([p.y_proba for p in predictions], human.distribution, hard,
                                 rule=audit.human.split.rule, resamples=resamples, seed=seed, level=level)
    return EnsembleResult(tuple(names), audit, differences, agreement)


def _check_options(n_bins: int, bootstrap: int, seed: int, level: float) -> None:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or not 1 <= n_bins <= MAX_BINS:
        raise UsageError(f"n_bins must be an integer from 1 to {MAX_BINS}, got {n_bins!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or not (
            MIN_RESAMPLES <= bootstrap <= MAX_RESAMPLES):
        raise UsageError(
            f"bootstrap must be from {MIN_RESAMPLES} to {MAX_RESAMPLES:,} resamples to compare models, got "
            f"{bootstrap!r}: the comparison is the paired interval, and fewer resamples cannot place its ends"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise UsageError(f"level must be between 0 and 1, got {level!r}")


def _input(p: Predictions) -> str:
    return p.source.path if p.source.path else p.source.kind


# ------------------------------------------------------------------ the paired bootstrap


def paired_draws(
    predictions: Sequence[Predictions],
    *,
    n_bins: int,
    resamples: int,
    seed: int,
    references: Sequence[dict[str, float]] | None = None,
    bandwidths: Sequence[float | None] | None = None,
    metrics: frozenset[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    terms: Sequence[dict[str, np.ndarray]] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Each model's metrics on the same ``resamples`` resamples of the rows.

    The rows are drawn once per block of resamples (``rng.integers(0, N, (B, N))``,
    ``rng = numpy.random.default_rng(seed)``) and every model is measured on that
    block before the next is drawn, so memory stays within the exact bootstrap's
    budget (:func:`calaudit.stats.bootstrap.exact_block_size`) whatever the number of
    resamples. ``references`` are each model's full-data metrics (the calibration
    slope's fit starts there), ``bandwidths`` the smooth ECE's bandwidth on the full
    data (found when not given). ``metrics`` limits what is computed (``{"ece"}``
    costs a small part of every metric). ``terms`` are, per model, ``(N,)`` per-row
    terms whose means are more metrics (the human metrics against the votes): each
    is averaged over the same drawn rows. ``progress("Paired bootstrap", done, resamples)``
    is told after each block.

    Returns, per model, ``{metric: (resamples,) values}``.
    """
    n_rows, n_classes = predictions[0].y_proba.shape
    if any(p.y_proba.shape != (n_rows, n_classes) for p in predictions):
        raise ValueError("paired draws need aligned predictions: the same rows and classes in every set")
    models = []
    for k, p in enumerate(predictions):
        suite = compute_metrics(p.y_true, p.y_proba, n_bins=n_bins)
        bandwidth = bandwidths[k] if bandwidths is not None else None
        if bandwidth is None and (metrics is None or "smooth_ece" in metrics):
            from ..stats.estimators import smooth_ece

            bandwidth = smooth_ece(suite.top.confidence, suite.top.correct)[1].bandwidth
        reference = dict(references[k]) if references is not None else dict(suite.values)
        models.append((p, suite, bandwidth if bandwidth is not None else 0.0, reference))
    block = exact_block_size(n_rows, n_classes, n_bins)
    rng = np.random.default_rng(seed)
    parts: list[list[dict[str, np.ndarray]]] = [[] for _ in models]
    for start in range(0, resamples, block):  # blocks of resamples, each vectorised
        if progress is not None:
            progress("Paired bootstrap", start, resamples)
        rows = rng.integers(0, n_rows, (min(block, resamples - start), n_rows))
        for k, (part, (p, suite, bandwidth, reference)) in enumerate(zip(parts, models)):
            values = resampled_metrics(rows, p.y_true, p.y_proba, suite, n_bins=n_bins,
                                       smooth_bandwidth=bandwidth, reference=reference, names=metrics)
            if terms is not None:
                values.update({name: term[rows].mean(axis=1) for name, term in terms[k].items()})
            part.append(values)
    if progress is not None:
        progress("Paired bootstrap", resamples, resamples)
    return [{name: np.concatenate([piece[name] for piece in part]) for name in part[0]} for part in parts]


def difference_interval(
    estimate: float, draws_a: np.ndarray, draws_b: np.ndarray, *, level: float = DEFAULT_LEVEL,
    metric: str | None = None,
) -> Interval | None:
    """The paired interval of ``estimate = metric(a) - metric(b)`` from the same
    resamples' values of each model.

    The basic bootstrap interval, or the percentile one for ``metric`` in
    :data:`PERCENTILE_DIFFERENCES`; clipped to the range a difference of ``metric`` can
    take (``[low - high, high - low]`` of its range in :data:`calaudit.stats.metric_info.METRICS`:
    ``[-1, 1]`` for two ECEs; unbounded without ``metric``), then widened to hold
    ``estimate``, so ``low <= estimate <= high`` always.

    Resamples where either value is undefined are left out; ``None`` when more than
    half are (no honest interval, as for a single model's metric).
    """
    difference = draws_a - draws_b
    finite = difference[np.isfinite(difference)]
    if finite.size < 0.5 * difference.size or finite.size == 0:
        return None
    info = _info(metric)
    span = (info.high - info.low) if info is not None else np.inf
    bounds = (-span, span)
    if metric in PERCENTILE_DIFFERENCES:
        return percentile_interval(finite, float(estimate), level=level, bounds=bounds)
    interval, _ = basic_interval(finite, float(estimate), level=level, bounds=bounds)
    return interval


def _info(metric: str | None) -> Any:
    """A metric's registry entry (the audit's metrics, then the human ones), or None."""
    if metric is None:
        return None
    if metric in METRICS:
        return METRICS[metric]
    from ..human.metrics import HUMAN_METRICS

    return HUMAN_METRICS.get(metric)


def percentile_interval(resampled: np.ndarray, estimate: float, *, level: float = DEFAULT_LEVEL,
                        bounds: tuple[float, float] = (-np.inf, np.inf)) -> Interval:
    """``[q(a/2), q(1 - a/2)]`` of the resampled values, clipped to ``bounds`` and
    widened to hold ``estimate``."""
    tail = (1.0 - level) / 2.0
    q_low, q_high = np.quantile(resampled, [tail, 1.0 - tail])
    low = min(max(float(q_low), bounds[0]), bounds[1])
    high = max(min(float(q_high), bounds[1]), bounds[0])
    return Interval(float(min(low, estimate)), float(max(high, estimate)))


def paired_differences(
    names: Sequence[str],
    references: Sequence[dict[str, float]],
    draws: Sequence[dict[str, np.ndarray]],
    *,
    level: float = DEFAULT_LEVEL,
    metrics: dict[str, Any] | None = None,
    pairs: Sequence[tuple[int, int]] | None = None,
) -> tuple[tuple[Difference, ...], list[dict[str, str]]]:
    """Every ``metric(a) - metric(b)`` for ``a`` before ``b`` in ``names`` (or the index
    ``pairs`` given), with its paired interval: the metrics with an interval
    (:data:`calaudit.stats.metric_info.METRICS`, or ``metrics``, name to registry entry)
    that both models have, in the registry's order.

    Returns the differences and the pairs left without an interval (``a``, ``b``,
    ``metric``, ``reason``): a metric undefined on most resamples of either model.
    """
    differences = []
    without = []
    compared = metrics if metrics is not None else {name: info for name, info in METRICS.items() if info.interval}
    if pairs is None:
        pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    for i, j in pairs:
        for metric in compared:
            if metric not in draws[i] or metric not in draws[j]:
                continue
            value_a, value_b = references[i].get(metric), references[j].get(metric)
            if value_a is None or value_b is None or not np.isfinite(value_a) or not np.isfinite(value_b):
                continue
            estimate = float(value_a) - float(value_b)
            interval = difference_interval(estimate, draws[i][metric], draws[j][metric], level=level,
                                           metric=metric)
            if interval is None:
                without.append({"a": names[i], "b": names[j], "metric": metric,
                                "reason": "undefined on most resamples"})
                continue
            distinguishable = interval.low > ROUNDING or interval.high < -ROUNDING
            differences.append(Difference(
                names[i], names[j], metric, estimate, interval.low, interval.high, bool(distinguishable),
                PERCENTILE if metric in PERCENTILE_DIFFERENCES else BASIC))
    return tuple(differences), without


# ------------------------------------------------------------------ the ranking


def rank_models(
    names: Sequence[str],
    values: dict[str, float],
    differences: Sequence[Difference],
    n_samples: int,
    *,
    metric: str = RANKING_METRIC,
    within_noise: Collection[str] = (),
) -> Ranking:
    """Models ordered by ``values`` (their ECE; lower is better, ties in input order)
    and the plain paragraph that ranks them.

    One model is *told apart* from another when their ``metric`` difference is
    distinguishable, unless both are in ``within_noise`` (models whose ECE is no larger
    than chance gives a perfectly calibrated model with their confidences, the audit's
    noise floor): two such models are both consistent with perfect calibration, and
    the binned ECE's noise, which depends on how each model's confidences spread over
    the bins, can set them apart beyond chance without either being better calibrated
    (docs/metrics.md, section 10).

    Neighbours in the order that are not told apart form one group: "A and B cannot be
    told apart on 2,000 cases". Between groups the paragraph says "A is better
    calibrated than B", with both figures in points (hundredths) and the gap. Names
    are plain text: reporters escape them.
    """
    position = {name: k for k, name in enumerate(names)}
    # Values within float rounding of each other tie, and ties keep the input order.
    order = sorted(names, key=lambda name: (_tie_key(values[name]), position[name]))
    by_pair = {}
    for item in differences:
        if item.metric == metric:
            by_pair[(item.a, item.b)] = by_pair[(item.b, item.a)] = item
    quiet = set(within_noise)

    def told_apart(a: str, b: str) -> bool:
        item = by_pair.get((a, b))
        return item is not None and item.distinguishable and not (a in quiet and b in quiet)

    groups: list[list[str]] = [[order[0]]]
    for better, worse in zip(order, order[1:]):
        if told_apart(better, worse):
            groups.append([worse])
        else:
            groups[-1].append(worse)
    sentences = []
    if len(order) > 2:
        sentences.append(f"Ordered by calibration error, best first: {_listed(order)}.")
    for k, group in enumerate(groups):
        if len(group) > 1:
            apart = [(a, b) for i, a in enumerate(group) for b in group[i + 2:] if told_apart(a, b)]
            sentences.append(_group_sentence(group, apart, values, n_samples, all(name in quiet for name in group)))
        if k + 1 < len(groups):
            better, worse = group[-1], groups[k + 1][0]
            low, high, gap = _figures(values[better], values[worse])
            sentences.append(
                f"{better} is better calibrated than {worse}: its confidence is off by {low} percentage points on average "
                f"against {high} (the {gap}-point gap is beyond chance on {n_samples:,} shared cases)."
            )
    return Ranking(metric, tuple(order), " ".join(sentences))


def _group_sentence(group: list[str], apart: list[tuple[str, str]], values: dict[str, float], n_samples: int,
                    all_within_noise: bool) -> str:
    """Neighbours that cannot be told apart. A pair further apart in the group that is
    told apart (the paired intervals need not be transitive) is said too."""
    figures = ", ".join(_points(values[name]) for name in group[:-1]) + f" and {_points(values[group[-1]])}"
    sentence = f"{_listed(group)} cannot be told apart on {n_samples:,} cases (off by {figures} percentage points on average"
    if all_within_noise:
        every = "both" if len(group) == 2 else "all"
        sentence += f", {every} within what chance gives a perfectly calibrated model"
    if not apart:
        return sentence + ")."
    told = "; ".join(f"{a} is better calibrated than {b}, a {_figures(values[a], values[b])[2]}-point gap beyond "
                     "chance" for a, b in apart)
    return sentence + f", each no better than the next; but {told})."


def _tie_key(value: float) -> float:
    """``value`` on a grid of :data:`ROUNDING`, so ECEs that differ by float rounding tie."""
    return float(round(value / ROUNDING)) if np.isfinite(value) else value


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _points(value: float) -> str:
    """A calibration error in points (hundredths): ``0.031`` -> ``3.1``."""
    points = 100.0 * value
    return f"{points:.2f}" if 0 < abs(points) < 0.1 else f"{points:.1f}"


def _figures(better: float, worse: float) -> tuple[str, str, str]:
    """Two calibration errors told apart and their gap, in points with as many decimals
    as show a gap (one, unless the figures are closer than that): never "a 0.0-point
    gap" between figures that read the same. Told apart, they differ by more than
    :data:`ROUNDING` (1e-7 percentage points), so nine decimals always suffice."""
    gap = 100.0 * (worse - better)
    for digits in range(1, 10):
        low, high = f"{100.0 * better:.{digits}f}", f"{100.0 * worse:.{digits}f}"
        if float(f"{gap:.{digits}f}") > 0 and low != high:
            return low, high, f"{gap:.{digits}f}"
    return repr(100.0 * better), repr(100.0 * worse), repr(gap)
