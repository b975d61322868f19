"""Review routing: fast-track the confident predictions, send the rest to a person.

For a target accuracy ``A``, :func:`route` finds the LARGEST top slice (the most
confident rows, down to a confidence threshold ``t``) that can be shown to be right at
least ``A`` of the time, with a guarantee that holds with probability ``level`` although
``t`` was searched for on the same rows: "Learn then Test" (Angelopoulos, Bates, Candes,
Jordan & Lei 2021) with exact one-sided binomial tests, the slices tested by chained
fixed sequences from several label-free starts (:mod:`.sequences`).

* Candidates are the distinct confidences ``t_1 > t_2 > ... > t_G``; the slice of
  ``t_j`` is every row with confidence ``>= t_j`` (tied rows enter together), with
  ``n_j`` rows of which ``k_j`` are right. The order depends on the confidences only,
  never on the labels.
* ``H0_j: accuracy(conf >= t_j) < A`` has the exact p-value
  ``p_j = P(Binomial(n_j, A) >= k_j)``.
* A slice of ``n`` rows, even all right, has ``p = A^n``: it can reject at ``delta``
  (``= 1 - level``) only when ``n >= log(delta) / log(A)``; fewer rows than that in
  all are "too few cases".
* The first sequence holds three quarters of ``delta`` and starts where its test has
  power against an accuracy halfway from ``A`` to 100% (:func:`powered_slice`: about 40
  rows for 80%, 80 for 90%); further sequences start at twice, four times... as many
  rows, sharing the last quarter. Going down, a slice is rejected while ``p_j <= weight * delta``, and a
  sequence that reaches the next start adds its weight to it. The reported threshold
  is the lowest rejected ``t_j``: the largest share that passed.

Weights sum to one and only move down on a rejection (a graphical weighted-Bonferroni
procedure, Bretz et al. 2009), so the probability of reporting a slice whose accuracy is
below ``A`` is at most ``delta``, for each target on its own. With one start (``N`` under
twice the first) this is the single fixed sequence. See docs/metrics.md, section 12.

The risk-coverage curve (Geifman & El-Yaniv 2017) and its area (AURC) come with it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UsageError
from ..result import RiskCoverage, Routing, RoutingTarget
from ..stats.metrics import TopLabel
from .percent_text import target_percent
from .sequences import Start, chained_sequences, start_rows, starts

#: The targets the report shows when none are asked for.
DEFAULT_TARGETS = (0.90, 0.95, 0.99)
#: What :attr:`Routing.method` and :attr:`RoutingTarget.method` say.
METHOD = "chained fixed-sequence exact binomial tests from label-free starts (Learn then Test, graphical Bonferroni)"
#: The stored risk-coverage curve keeps at most this many points (both ends kept).
MAX_CURVE_POINTS = 200
VENDOR_SCORES = "vendor"
RECALIBRATED_SCORES = "temperature-scaled (cross-fitted)"


@dataclass(frozen=True)
class TopSlices:
    """The candidate top slices, most confident first.

    Slice ``j`` is every row whose confidence is ``>= threshold[j]``: ``n[j]`` rows, of
    which ``right[j]`` are right. ``threshold`` holds confidences that rows have, in
    descending order, so ``n`` is increasing and ``n[-1]`` is every row: every distinct
    confidence (:meth:`of`), or in a streamed audit the lowest confidence of each
    non-empty fine bin (:mod:`calaudit.engine.routing_bins`).
    """

    threshold: np.ndarray
    n: np.ndarray
    right: np.ndarray

    @classmethod
    def of(cls, confidence: np.ndarray, correct: np.ndarray) -> TopSlices:
        order = np.argsort(-confidence, kind="stable")
        sorted_confidence = confidence[order]
        # The last position of each run of tied confidences closes one slice.
        ends = np.flatnonzero(np.append(sorted_confidence[1:] != sorted_confidence[:-1], True))
        right = np.cumsum(correct[order], dtype=np.int64)[ends]
        return cls(sorted_confidence[ends], (ends + 1).astype(np.int64), right)


def route(
    confidence: Any,
    correct: Any,
    targets: Iterable[float] = DEFAULT_TARGETS,
    *,
    level: float = 0.95,
    scores: str = VENDOR_SCORES,
) -> Routing:
    """Review thresholds for each of ``targets`` and the risk-coverage curve.

    ``confidence`` is the ``(N,)`` top-label confidence in [0, 1] and ``correct`` the
    ``(N,)`` outcome (1 where the prediction is right, else 0). Each target ``A`` in
    (0, 1) gets its own threshold, the lowest that chained fixed sequences of tests
    (module docstring) pass, so that ``P(accuracy of the fast-tracked cases < A) <= 1 -
    level``. The accuracy of each side has a two-sided Clopper-Pearson (1934) interval
    at ``level``; ``fast_track_accuracy_low`` is the one-sided lower bound at ``level``
    of the chosen slice on its own (``>= A``: it passed at ``tested_at <= 1 - level``).
    ``starts``, ``start_levels``, ``certified_from``, ``tested_at``, ``p_value`` and
    ``detail`` say how it was found; ``reason`` says in plain words why a target
    cannot be reached. ``scores`` says which
    confidences these are. Raises :class:`UsageError` for a target or level outside
    (0, 1), :class:`InvalidInputError` for empty, mismatched or invalid arrays.
    """
    level, targets = _level(level), _targets(targets)  # usage errors before the arrays are read
    confidence, correct = _validated(confidence, correct)
    return route_slices(TopSlices.of(confidence, correct), targets, level=level, scores=scores)


def route_slices(
    slices: TopSlices, targets: Iterable[float] = DEFAULT_TARGETS, *, level: float = 0.95, scores: str = VENDOR_SCORES,
) -> Routing:
    """:func:`route` on candidate top slices given directly: the decision code shared by
    the in-memory audit (slices at every distinct confidence, :meth:`TopSlices.of`) and
    a streamed one (slices at the boundaries of fine confidence bins, from their exact
    counts: :mod:`calaudit.engine.routing_bins`). The candidates and their thresholds
    must depend on the confidences only; ``slices.n[-1]`` is every row."""
    level = _level(level)
    wanted = _targets(targets)
    n_rows = int(slices.n[-1])
    routed = tuple(_route_target(slices, target, level, n_rows) for target in wanted)
    return Routing(level, METHOD, n_rows, scores, routed, risk_coverage(slices, n_rows))


def route_predictions(
    predictions: Any,
    targets: Iterable[float] = DEFAULT_TARGETS,
    *,
    level: float = 0.95,
    recalibrate: bool = False,
    folds: int = 5,
    seed: int = 0,
) -> Routing:
    """:func:`route` on a :class:`~calaudit.predictions.Predictions`' top-label
    confidence and correctness.

    With ``recalibrate``, ``recalibrated`` holds the same analysis on temperature-
    scaled probabilities (Guo et al. 2017), cross-fitted: the temperature of each of
    ``folds`` seeded stratified folds is fitted on the other folds, so every row is
    scored by a temperature fitted without it (as ``--baseline temperature`` does).
    """
    top = TopLabel.of(predictions.y_true, predictions.y_proba)
    routing = route(top.confidence, top.correct, targets, level=level)
    if not recalibrate:
        return routing
    scaled = _cross_fitted_temperature(predictions, folds, seed)
    top = TopLabel.of(predictions.y_true, scaled)
    recalibrated = route(top.confidence, top.correct, targets, level=level, scores=RECALIBRATED_SCORES)
    return dataclasses.replace(routing, recalibrated=recalibrated)


def risk_coverage(slices: TopSlices, n_rows: int) -> RiskCoverage:
    """The accuracy of the top slices against their coverage ``n_j / N``, and AURC.

    With rows sorted by confidence, most confident first, the selective risk at
    coverage ``i / N`` is the error rate of the smallest top slice holding row ``i``
    (tied rows enter together, so all rows of a tie share their slice's risk)::

        AURC = (1/N) * sum_{i=1..N} risk(i)
             = sum_j ((n_j - n_{j-1}) / N) * (1 - right_j / n_j)      n_0 = 0

    (Geifman & El-Yaniv 2017; without ties ``risk(i)`` is the error rate of the top
    ``i`` rows). The stored curve keeps at most :data:`MAX_CURVE_POINTS` slices, evenly
    spaced in slice order, always the first and the last (coverage 1).
    """
    error = 1.0 - slices.right / slices.n
    step = np.diff(slices.n, prepend=0)
    aurc = float(np.dot(step, error) / n_rows)
    kept = np.arange(slices.n.shape[0])
    if kept.shape[0] > MAX_CURVE_POINTS:
        kept = np.unique(np.rint(np.linspace(0, kept.shape[0] - 1, MAX_CURVE_POINTS)).astype(np.intp))
    return RiskCoverage(
        aurc,
        tuple((slices.n[kept] / n_rows).tolist()),
        tuple((slices.right[kept] / slices.n[kept]).tolist()),
        tuple(slices.threshold[kept].astype(np.float64).tolist()),
    )


def smallest_provable_slice(target: float, level: float) -> int:
    """The fewest rows that, all right, reject ``accuracy < target`` at ``1 - level``:
    the least ``n`` with ``target^n <= 1 - level``."""
    n = max(1, math.ceil(math.log(1.0 - level) / math.log(target)))
    while target ** n > 1.0 - level:  # guard the rounding of the logarithms
        n += 1
    while n > 1 and target ** (n - 1) <= 1.0 - level:
        n -= 1
    return n


def powered_slice(target: float, level: float) -> int:
    """The fewest rows at which a slice right ``(1 + target) / 2`` of the time (halfway
    from the target to perfect) passes the exact test: the least ``n`` with
    ``P(Binomial(n, target) >= ceil(n (1 + target) / 2)) <= 1 - level``.

    Fixed-sequence testing stops at its first failure, so a sequence that started on a
    slice of a few dozen rows would stop at the first error among them, however
    accurate the model is below. Starting where the test has power against a clearly
    better accuracy avoids that; the start still depends on the target and the level
    only, never on the labels."""
    from scipy.stats import binom, norm

    better = (1.0 + target) / 2.0
    z = float(norm.ppf(level))
    guess = math.ceil(z * z * target * (1.0 - target) / (better - target) ** 2)
    n = np.arange(1, 4 * guess + 200)
    passes = binom.sf(np.ceil(n * better - 1e-9) - 1, n, target) <= 1.0 - level
    return int(n[np.argmax(passes)]) if passes.any() else int(n[-1])


def first_tested_slice(target: float, level: float, n_rows: int) -> int:
    """Where the sequence starts: :func:`powered_slice` rows, or every row when there
    are fewer, but never fewer than :func:`smallest_provable_slice`."""
    return max(smallest_provable_slice(target, level), min(powered_slice(target, level), n_rows))


def clopper_pearson(right: int, n: int, level: float) -> tuple[float, float]:
    """Two-sided Clopper-Pearson (1934) interval at ``level`` for ``right`` of ``n``::

        low  = Beta.ppf(alpha / 2, right, n - right + 1)        (0 when right == 0)
        high = Beta.ppf(1 - alpha / 2, right + 1, n - right)    (1 when right == n)

    with ``alpha = 1 - level``: ``P(Binomial(n, low) >= right) = alpha / 2`` and
    ``P(Binomial(n, high) <= right) = alpha / 2``."""
    from scipy.stats import beta

    alpha = 1.0 - level
    low = 0.0 if right == 0 else float(beta.ppf(alpha / 2, right, n - right + 1))
    high = 1.0 if right == n else float(beta.ppf(1 - alpha / 2, right + 1, n - right))
    return low, high


def lower_bound(right: int, n: int, level: float) -> float:
    """One-sided Clopper-Pearson lower bound at ``level``: ``Beta.ppf(1 - level, right,
    n - right + 1)``, the ``p`` with ``P(Binomial(n, p) >= right) = 1 - level``. It is
    ``>= A`` exactly when the exact test of ``accuracy < A`` rejects at ``1 - level``."""
    from scipy.stats import beta

    return 0.0 if right == 0 else float(beta.ppf(1.0 - level, right, n - right + 1))


# ------------------------------------------------------------------ internals


def _route_target(slices: TopSlices, target: float, level: float, n_rows: int) -> RoutingTarget:
    from scipy.stats import binom

    delta = 1.0 - level
    goal, sure = target_percent(target), target_percent(level)
    needed = smallest_provable_slice(target, level)
    if slices.n[-1] < needed:
        return _nothing_fast_tracked(
            slices, target, level, n_rows,
            f"too few cases: even if all {n_rows:,} were right, {n_rows:,} cases could not show "
            f"{goal} accuracy with {sure} confidence (at least {needed:,} are needed)",
            f"An all-right slice of n cases has p = {target:.10g}^n, at most {delta:.4g} only from n = "
            f"{needed:,}.",
        )
    # The starts, their shares of delta and the order depend on the target, the level,
    # N and the confidences only (module docstring of .sequences).
    plan = start_rows(lambda share: first_tested_slice(target, 1.0 - share * delta, n_rows), n_rows)
    chain = starts(slices.n, plan, lambda share: smallest_provable_slice(target, 1.0 - share * delta))
    p_values = binom.sf(slices.right - 1, slices.n, target)
    outcome = chained_sequences(p_values, chain, delta)
    found = {"starts": tuple(start.n for start in chain),
             "start_levels": tuple(start.weight * delta for start in chain)}
    first = _first_tested(slices, chain, level) if chain else ""
    if outcome.chosen is None:
        detail = f"No top slice passed: {_chain_text(chain, delta)}; each failed its first test. {first}"
        nothing = _nothing_fast_tracked(slices, target, level, n_rows, _closest(slices, target, level, needed), detail)
        return dataclasses.replace(nothing, **found)
    chosen = outcome.chosen
    n, right = int(slices.n[chosen]), int(slices.right[chosen])
    _, high = clopper_pearson(right, n, level)
    review_n, review_right = n_rows - n, int(slices.right[-1]) - right
    review_low, review_high = clopper_pearson(review_right, review_n, level) if review_n else (None, None)
    origin = outcome.start.n if outcome.start is not None else None
    detail = (f"The {n:,} most confident cases ({right:,} right, confidence at least "
              f"{_confidence(slices.threshold[chosen])}) passed at {outcome.tested_at:.4g} "
              f"(p = {float(p_values[chosen]):.3g}), on the sequence that began at the {origin:,} most confident. "
              f"S{_chain_text(chain, delta)[1:]}. {first}")
    return RoutingTarget(
        target=target, achievable=True, threshold=float(slices.threshold[chosen]),
        fast_track_n=n, fast_track_share=n / n_rows, fast_track_accuracy=right / n,
        fast_track_accuracy_low=lower_bound(right, n, level), fast_track_accuracy_high=high,
        review_n=review_n, review_share=review_n / n_rows,
        review_accuracy=review_right / review_n if review_n else None,
        review_accuracy_low=review_low, review_accuracy_high=review_high, method=METHOD,
        p_value=float(p_values[chosen]), tested_at=outcome.tested_at, certified_from=origin, detail=detail, **found,
    )


def _closest(slices: TopSlices, target: float, level: float, needed: int) -> str:
    """Why nothing passed, in plain words: the top slice that came closest (the highest
    one-sided lower bound among slices large enough to pass at all; ties: the larger)."""
    from scipy.stats import beta

    large = np.flatnonzero(slices.n >= needed)  # never empty: N >= needed here
    right = slices.right[large]
    bound = np.where(right > 0, beta.ppf(1.0 - level, np.maximum(right, 1), slices.n[large] - right + 1), 0.0)
    best = int(large[np.flatnonzero(bound == bound.max())[-1]])
    n, right = int(slices.n[best]), int(slices.right[best])
    goal = target_percent(target)
    shown = _rate(right / n, target)
    if right / n >= target:
        how = f"not far enough above {goal} once every threshold tried is allowed for"
    else:
        how = f"under {goal}"
    return (f"no group of the model's most confident cases was right often enough to rule out chance: the "
            f"closest, its {n:,} most confident, were right {shown} of the time ({right:,} of {n:,}), {how}")


def _rate(accuracy: float, target: float) -> str:
    """An accuracy in whole percents, with decimals when that would read like the target."""
    for digits in range(4):
        shown = round(accuracy * 100, digits)
        if shown != round(target * 100, digits) or accuracy == target:
            return f"{shown:.{digits}f}%"
    return f"{accuracy * 100:.4f}%"


def _first_tested(slices: TopSlices, chain: list[Start], level: float) -> str:
    start = chain[0]
    n, right = int(slices.n[start.index]), int(slices.right[start.index])
    return (f"First top slice tested: the {n:,} most confident cases (confidence at least "
            f"{_confidence(slices.threshold[start.index])}), {right:,} right ({right / n * 100:.1f}%; one-sided "
            f"{target_percent(level)} lower bound {lower_bound(right, n, level) * 100:.1f}%).")


def _chain_text(chain: list[Start], delta: float) -> str:
    shown = [f"{start.n:,} (level {start.weight * delta:.3g})" for start in chain]
    shown[0] = f"{chain[0].n:,} most confident cases (level {chain[0].weight * delta:.3g})"
    return "sequences began at the " + ", ".join(shown)


def _confidence(threshold: float) -> str:
    """A threshold for analysts: six significant digits, and never '1' for one below 1."""
    shown = f"{threshold:.6g}"
    if threshold < 1.0 and float(shown) >= 1.0:
        shown = f"{threshold:.17g}"
    return shown


def _nothing_fast_tracked(slices: TopSlices, target: float, level: float, n_rows: int, reason: str,
                          detail: str) -> RoutingTarget:
    right = int(slices.right[-1])
    low, high = clopper_pearson(right, n_rows, level)
    return RoutingTarget(
        target=target, achievable=False, threshold=None, fast_track_n=0, fast_track_share=0.0,
        fast_track_accuracy=None, fast_track_accuracy_low=None, fast_track_accuracy_high=None,
        review_n=n_rows, review_share=1.0, review_accuracy=right / n_rows, review_accuracy_low=low,
        review_accuracy_high=high, method=METHOD, reason=reason, detail=detail,
    )


def _level(level: Any) -> float:
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise UsageError(f"the confidence level must be a number between 0 and 1 (exclusive); got {level!r}") from None
    if not 0.0 < value < 1.0:
        raise UsageError(f"the confidence level must be between 0 and 1 (exclusive); got {level!r}")
    return value


def _targets(targets: Iterable[float]) -> tuple[float, ...]:
    if isinstance(targets, (str, bytes)) or not isinstance(targets, Iterable):
        targets = (targets,)  # type: ignore[assignment]
    wanted = []
    for target in targets:
        try:
            value = float(target)
        except (TypeError, ValueError):
            raise UsageError(f"a target accuracy must be a number between 0 and 1 (exclusive); got {target!r}") from None
        if not 0.0 < value < 1.0:  # NaN fails too
            raise UsageError(f"a target accuracy must be between 0 and 1 (exclusive); got {target!r}")
        wanted.append(value)
    return tuple(wanted)


def _validated(confidence: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    """Read-only float64 confidences in [0, 1] and int64 0/1 outcomes, one per row."""
    try:
        confidence = np.asarray(confidence, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"confidence: expected numbers in [0, 1] ({error})") from None
    try:
        outcome = np.asarray(correct, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"correct: expected 0 or 1 per row ({error})") from None
    if confidence.ndim != 1 or outcome.ndim != 1:
        raise InvalidInputError(
            f"confidence and correct must be 1-D, one value per row; got shapes {confidence.shape} and {outcome.shape}"
        )
    if confidence.shape[0] != outcome.shape[0]:
        raise InvalidInputError(
            f"confidence has {confidence.shape[0]} rows but correct has {outcome.shape[0]}; expected one of each per row"
        )
    if confidence.shape[0] == 0:
        raise InvalidInputError("no rows to route: confidence and correct are empty; expected at least one row")
    bad = ~((confidence >= 0.0) & (confidence <= 1.0))  # NaN is bad too
    if bad.any():
        row = int(np.argmax(bad))
        raise InvalidInputError(f"confidence[{row}] = {float(confidence[row])!r}; expected a number in [0, 1]")
    bad = (outcome != 0.0) & (outcome != 1.0)
    if bad.any():
        row = int(np.argmax(bad))
        raise InvalidInputError(f"correct[{row}] = {float(outcome[row])!r}; expected 0 (wrong) or 1 (right)")
    return confidence, outcome.astype(np.int64)


def _cross_fitted_temperature(predictions: Any, folds: int, seed: int) -> np.ndarray:
    """Temperature-scaled probabilities, each fold scored by a temperature fitted on the
    other folds (the same folds and fit as ``--baseline temperature``)."""
    from ..baselines import recalibration
    from ..baselines.comparison import check_folds, cross_fitted_recalibration
    from ..baselines.folds import stratified_folds

    y, proba = predictions.y_true, predictions.y_proba
    check_folds(y, folds, "temperature scaling")
    fold_of = stratified_folds(y, folds, seed)
    z = recalibration.log_scores(proba, predictions.logits)
    scaled, _ = cross_fitted_recalibration("temperature", proba, z, y, fold_of)
    return scaled
