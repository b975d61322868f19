"""The ensemble of the compared models, and whether they disagree where people do.

**The ensemble** is the mean of the compared models' probabilities, item by item
(:func:`ensemble_predictions`): the cheapest combination of several vendors, audited
like a model (the caller runs the audit: :func:`calaudit.auditing.audit_predictions`)
and compared with each of them on the same paired resamples. It is shown beside the
models, never ranked among them: it is not a vendor one can buy on its own.

**Model disagreement** on an item is the mean, over the pairs of models, of the total
variation distance between their probabilities, ``1/2 sum_k |P_a[i,k] - P_b[i,k]|``
(:func:`model_disagreement`): the share of probability two models put in different
places, 0 when they agree exactly, 1 when they share nothing; the same distance the
human TVD measures between a model and people. (The mutual information of the mean,
``entropy(mean P) - mean entropy(P)``, would do too, but it mixes in each model's own
uncertainty on the log scale and is dominated by near-zero probabilities; the TVD
reads directly in points of probability.)

**Do the models disagree where people do?** Spearman's rank correlation between
model disagreement and the entropy of each item's human distribution
(:func:`disagreement`), on every item and on the hard ones, with a percentile
bootstrap interval over items (beyond :data:`BOOTSTRAP_BUDGET` resampled cells, the
Fisher z interval with the Bonett-Wright standard error, which the bootstrap
approaches on that many items). The resamples are vectorised without sorting each one
(:func:`resampled_spearman`): every value's average rank in a resample follows from
how often each item was drawn, once the items are sorted by value a single time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..predictions.value import Predictions, Source
from ..stats.bootstrap import DEFAULT_LEVEL
from .comparison_result import Disagreement, DisagreementPart

#: What model disagreement is, and how the correlation and its interval are made (JSON).
MEASURE = "mean pairwise total variation distance between the models' probabilities"
METHOD = ("spearman rank correlation (average ranks for ties) between model disagreement and the entropy of "
          "the human distribution; percentile bootstrap interval over items")
#: How the interval was made beyond :data:`BOOTSTRAP_BUDGET` (``method`` says which).
FISHER_METHOD = ("spearman rank correlation (average ranks for ties) between model disagreement and the entropy of "
                 "the human distribution; Fisher z interval with the Bonett-Wright standard error "
                 "sqrt((1 + rho^2 / 2) / (n - 3)) (too many items to resample)")
#: Resampled cells (resamples x items) the bootstrap of the correlation may cost (a few
#: seconds); beyond it, the interval is the Fisher z one, which the bootstrap approaches
#: at such sizes.
BOOTSTRAP_BUDGET = 5e7
#: Cells (resamples x items) of one block of the vectorised bootstrap.
_BLOCK_CELLS = 1 << 21


def ensemble_predictions(predictions: Sequence[Predictions], names: Sequence[str]) -> Predictions:
    """The mean of aligned prediction sets' probabilities (same rows, classes and
    labels), with the first set's labels and human labels; no logits, features or
    other columns. Its source says which models it averages."""
    first = predictions[0]
    total = np.zeros_like(first.y_proba, dtype=np.float64)
    for p in predictions:  # a loop over the models, each vectorised
        if p.y_proba.shape != first.y_proba.shape:
            raise ValueError("an ensemble needs aligned predictions: the same rows and classes in every set")
        total += p.y_proba
    total /= len(predictions)
    total /= total.sum(axis=1, keepdims=True)  # means of rows summing to 1 sum to 1, up to rounding
    total.flags.writeable = False
    source = Source("ensemble", None, None, None, {"members": list(names), "combination": "mean of probabilities"})
    return dataclasses.replace(first, y_proba=total, source=source, logits=None, features=None, features_source="",
                               extra_columns=None, transform="mean of the models' probabilities")


def model_disagreement(probas: Sequence[np.ndarray]) -> np.ndarray:
    """Each item's mean pairwise TVD between the models: ``(N,)``."""
    n_models = len(probas)
    if n_models < 2:
        raise ValueError("model disagreement needs at least two models")
    total = np.zeros(probas[0].shape[0])
    for a in range(n_models):  # a loop over the pairs of models, each vectorised over items
        for b in range(a + 1, n_models):
            total += 0.5 * np.abs(probas[a] - probas[b]).sum(axis=1)
    return total / (n_models * (n_models - 1) / 2)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either is constant
    or there are fewer than two values."""
    return float(resampled_spearman(x, y, np.arange(np.shape(x)[0])[None, :])[0]) if np.shape(x)[0] else np.nan


def _groups(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Each value's group among the distinct values, in increasing order, and their number."""
    _, inverse = np.unique(values, return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse, int(inverse.max(initial=-1)) + 1


def resampled_spearman(x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Spearman's correlation of ``x[rows[b]]`` and ``y[rows[b]]`` for each resample
    ``b`` of ``rows`` (``(B, n)`` item indices): ``(B,)``, NaN where either is constant.

    No resample is sorted. With ``c[b, i]`` how often item ``i`` was drawn, the drawn
    values equal to the ``g``-th smallest distinct value ``v_g`` hold the average rank
    ``before_g + (count_g + 1) / 2``, ``count_g`` the draws of items with value ``v_g``
    and ``before_g`` those of items with smaller values. Each item's rank is its group's;
    the correlation is Pearson's on the ranks, each item weighted by ``c``. The mean
    rank of ``n`` draws is ``(n + 1) / 2`` whatever they are, so the ranks are centred
    exactly.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    rows = np.asarray(rows)
    blocks, n = rows.shape
    n_items = x.shape[0]
    group_x, size_x = _groups(x)
    group_y, size_y = _groups(y)
    counts = _counts(rows, n_items)  # (B, N)
    centre = (n + 1) / 2.0
    rank_x = _ranks(counts, group_x, size_x) - centre
    rank_y = _ranks(counts, group_y, size_y) - centre
    weighted_x = counts * rank_x
    covariance = np.einsum("bi,bi->b", weighted_x, rank_y)
    variance_x = np.einsum("bi,bi->b", weighted_x, rank_x)
    variance_y = np.einsum("bi,bi->b", counts * rank_y, rank_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = covariance / np.sqrt(variance_x * variance_y)
    # Rounding can carry a perfect correlation a hair beyond 1.
    return np.where((variance_x > 0) & (variance_y > 0), np.clip(value, -1.0, 1.0), np.nan)


def _counts(rows: np.ndarray, n_items: int) -> np.ndarray:
    """How often each item was drawn in each resample: ``(B, N)`` float64."""
    blocks = rows.shape[0]
    flat = (rows + np.arange(blocks)[:, None] * n_items).ravel()
    return np.bincount(flat, minlength=blocks * n_items).reshape(blocks, n_items).astype(np.float64)


def _ranks(counts: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Each item's average rank among the drawn values of each resample: ``(B, N)``."""
    blocks = counts.shape[0]
    flat = (groups[None, :] + np.arange(blocks)[:, None] * n_groups).ravel()
    per_group = np.bincount(flat, weights=counts.ravel(), minlength=blocks * n_groups).reshape(blocks, n_groups)
    before = np.cumsum(per_group, axis=1) - per_group
    return (before + (per_group + 1.0) / 2.0)[:, groups]


def bootstrap_spearman(x: np.ndarray, y: np.ndarray, *, resamples: int, seed: int,
                       level: float = DEFAULT_LEVEL) -> tuple[float | None, float | None, float | None]:
    """Spearman's correlation of ``x`` and ``y`` and its percentile bootstrap interval
    over items (``resamples`` draws of the items with replacement, seeded): ``(value,
    low, high)``, each ``None`` where undefined (fewer than three items, a constant
    variable; the interval also when more than half the resamples are undefined).
    The interval is widened where needed to hold the value."""
    n = int(np.shape(x)[0])
    if n < 3:
        return None, None, None
    value = spearman(x, y)
    if not np.isfinite(value):
        return None, None, None
    if resamples <= 0:
        return value, None, None
    if resamples * n > BOOTSTRAP_BUDGET:
        low, high = fisher_interval(value, n, level)
        return value, low, high
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // n)
    values = np.concatenate([resampled_spearman(x, y, rng.integers(0, n, (min(block, resamples - start), n)))
                             for start in range(0, resamples, block)])
    finite = values[np.isfinite(values)]
    if finite.size < 0.5 * resamples:
        return value, None, None
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return value, float(min(low, value)), float(max(high, value))


def fisher_interval(value: float, n: int, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """``tanh(atanh(rho) -+ z SE)`` with ``SE = sqrt((1 + rho^2 / 2) / (n - 3))``, the
    Bonett & Wright (2000) standard error of Spearman's rho on the Fisher z scale."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    centre = np.arctanh(np.clip(value, -1 + 1e-12, 1 - 1e-12))
    spread = z * np.sqrt((1.0 + value * value / 2.0) / max(n - 3, 1))
    low, high = float(np.tanh(centre - spread)), float(np.tanh(centre + spread))
    return min(low, value), max(high, value)


def disagreement(
    probas: Sequence[np.ndarray], distribution: np.ndarray, hard: np.ndarray, *, rule: str, resamples: int,
    seed: int, level: float = DEFAULT_LEVEL,
) -> Disagreement:
    """Whether the models disagree where people disagree (:class:`Disagreement`):
    ``probas`` the aligned models' ``(N, K)`` probabilities, ``distribution`` the human
    distribution ``H`` of the same items, ``hard`` the hard-item mask (``rule`` the
    split that made it)."""
    from ..human.split import entropy_rows

    spread = model_disagreement(probas)
    entropy = entropy_rows(np.asarray(distribution, dtype=np.float64))
    return disagreement_of(spread, entropy, hard, rule=rule, resamples=resamples, seed=seed, level=level)


def disagreement_of(spread: np.ndarray, entropy: np.ndarray, hard: np.ndarray, *, rule: str, resamples: int,
                    seed: int, level: float = DEFAULT_LEVEL, sampled: str | None = None) -> Disagreement:
    """:func:`disagreement` from each item's model disagreement ``spread`` and vote
    ``entropy``; ``sampled`` says which items these are when they are a sample (added
    to ``method``)."""
    parts = []
    method = METHOD if resamples * spread.shape[0] <= BOOTSTRAP_BUDGET else FISHER_METHOD
    if sampled:
        method = f"{method}; {sampled}"
    for name, mask in (("all", np.ones(spread.shape[0], dtype=bool)), ("hard", np.asarray(hard, dtype=bool))):
        value, low, high = bootstrap_spearman(spread[mask], entropy[mask], resamples=resamples, seed=seed,
                                              level=level)
        parts.append(DisagreementPart(name, int(mask.sum()), value, low, high))
    n_hard = int(np.count_nonzero(hard))
    most = np.zeros(spread.shape[0], dtype=bool)
    most[np.argsort(-spread, kind="stable")[:n_hard]] = True  # ties by item order
    overlap = {"hard_items": n_hard, "among_most_disagreed": int(np.count_nonzero(most & hard)),
               "expected_by_chance": n_hard * n_hard / spread.shape[0] if spread.shape[0] else 0.0}
    return Disagreement(MEASURE, method, float(level), int(resamples), int(seed), rule, parts[0], parts[1], overlap)
