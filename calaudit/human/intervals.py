"""Bootstrap intervals of the human metrics: rows resampled, and votes redrawn as well.

**Plain** (``intervals`` in the JSON): the row bootstrap. Rows are drawn with
replacement and every human metric is recomputed from the drawn rows' per-row terms
(:func:`calaudit.human.metrics.row_terms`; agreement as ``sum(agree) / sum(counted)``).
A row comes with its votes, so the spread that vote noise causes is already in it; it
answers "how much would this figure move on other items annotated the same way": it
covers the figure's expected value *at this annotation depth* (the same number of votes
per item). It does not address the bias that few votes put into the metrics that are
not linear in ``H`` (below).

**With annotator noise** (``intervals_with_annotator_noise``, vote counts only): a
nested bootstrap. In each resample the rows are drawn with replacement *and* each
drawn row's votes are redrawn from ``Multinomial(n_i, H_i)`` (``n_i`` its number of
votes; a row drawn twice gets two independent redraws); ``H`` is recomputed from the
redrawn votes and every metric recomputed with the model's ``P`` fixed.

Both intervals are basic bootstrap intervals (:func:`calaudit.stats.bootstrap.basic_interval`:
``[2 t - q(1 - a/2), 2 t - q(a/2)]`` around the estimate ``t``), clipped to the
metric's range and widened where needed to hold the estimate; the widened metrics are
listed.

**annotator_noise_shift** = mean of the nested resamples' values minus mean of the
plain resamples' values (the same drawn rows), per metric: how far redrawing the votes
moves the metric on average. It estimates the bias of the plug-in figure that comes
from having few votes, ``E[metric(H from n votes)] - metric(crowd's H)``, with the
observed ``H`` standing in for the crowd's. Few votes make ``H`` look more certain than
the crowd is, so the plug-in entropy gap, KL and TVD run high and the plurality
agreement low; the cross-entropy is linear in ``H``, so its shift is 0 up to resampling
noise. The shift finds only part of the bias (the redraws start from the observed
``H``, itself too certain: 55-75% of it with 5 votes, 28-53% with 3 votes or near a
crowd-equal model, in the simulation of ``tests/human_coverage.py``), so it is reported as a
lower estimate of the bias and NOT subtracted: the nested draws are re-centred on the
plain ones (the shift removed) before the basic interval is read off. The interval with
annotator noise is therefore about the same figure as the plain one (its expected value
at this annotation depth), wider because it counts the vote noise a second time: a
conservative interval, and, for the cross-entropy (unbiased for the crowd), an interval
for the unlimited crowd's value too. What each interval covers, measured:
docs/metrics.md, section 13.

**Cost and methods.** The plain bootstrap works on ``(N,)`` terms:

* ``exact`` while ``resamples x N <= ROW_BUDGET``: row indices drawn, rows' terms summed
  (blocks of resamples, one matrix product per block);
* ``normal`` above it: the resampled sums are drawn from the normal law with the
  per-row terms' mean and covariance (the row bootstrap's own limit: a resample's sum
  is a sum of ``N`` independent draws of a row, and ``N`` is then at least
  ``ROW_BUDGET / resamples``, 50,000 rows at 1,000 resamples).

The nested bootstrap costs ``resamples x N x width`` cells, ``width`` the most classes
any row has votes for (a redraw can only give votes to classes the row already has:
its ``H`` is 0 elsewhere, so only those columns are redrawn, and with 3-5 votes that is
at most 5 whatever K is):

* ``exact`` while ``resamples x N x max(width, 4) <= NESTED_BUDGET`` (and the rows
  are drawn exactly): as described, resamples in blocks of at most ``_BLOCK_CELLS``
  cells, the plain and nested sums from the same drawn rows;
* ``grouped`` above it: each row's votes are redrawn ``REDRAWS`` (32) times, giving the
  row's mean and variance of every term under vote noise (and the covariance of
  ``agree`` and ``counted``); a resample is then the row bootstrap of the rows' means
  (``exact`` or ``normal`` as above) plus normal noise whose variance is the sum of the
  drawn rows' variances (the redraws of different rows are independent, so their sum
  is close to normal). Tested against the exact method on the same data.

Memory never depends on the size of a vote count: a redraw is one multinomial draw
per row (numpy's, by conditional binomials, whatever ``n_i``), and ``c log c`` comes
from a table only for counts up to ``2^16`` (computed beyond it); a count of 10^9
costs what a count of 5 does (:data:`calaudit.predictions.human_labels.MAX_VOTE_COUNT` bounds them).

Everything is seeded (``numpy.random.default_rng(seed)``): the same inputs and seed
give the same intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..predictions.human_labels import HumanLabels
from ..stats.bootstrap import DEFAULT_LEVEL, INTERVAL_METHOD, BootstrapResult, Interval, basic_interval
from ..stats.metric_info import NLL_EPS
from .metrics import HUMAN_METRICS, MEAN_METRICS, TERM_NAMES, log_or_zero, row_terms

#: Exact row bootstrap while resamples x N stays within this (about a second).
ROW_BUDGET = 5e7
#: Exact nested bootstrap while resamples x N x max(width, 4) stays within this (about
#: 1.5 s: a redrawn row costs about as much as four cells, whatever its width).
NESTED_BUDGET = 1.2e7
#: Vote redraws per row of the grouped nested method.
REDRAWS = 32
#: Cells (rows x columns) of one block of drawn rows: bounds the temporaries' memory.
_BLOCK_CELLS = 1 << 20
#: Largest vote count of the ``c log c`` lookup table (beyond it, logs are computed).
_TABLE_LIMIT = 1 << 16
_AGREEMENT = "human_plurality_agreement"
_N_MEAN = len(MEAN_METRICS)
_AGREE, _COUNTED = TERM_NAMES.index("agree"), TERM_NAMES.index("counted")


@dataclass(frozen=True)
class HumanIntervals:
    """The two intervals of the human metrics and the shift between them.

    ``plain``: the row bootstrap. ``with_annotator_noise``: rows resampled and votes
    redrawn (``None`` for soft labels, which carry no counts). ``annotator_noise_shift``:
    per metric, mean of the nested resamples minus mean of the plain ones (the plug-in
    figure's estimated bias from having few votes; ``None`` for soft labels).
    """

    plain: BootstrapResult
    with_annotator_noise: BootstrapResult | None
    annotator_noise_shift: dict[str, float] | None


def human_intervals(
    proba: np.ndarray, human: HumanLabels, *, estimates: dict[str, float], resamples: int,
    level: float = DEFAULT_LEVEL, seed: int = 0, rows: np.ndarray | None = None, annotator_noise: bool = True,
) -> HumanIntervals:
    """Basic bootstrap intervals of the human metrics, plain and with annotator noise.

    ``proba`` is the model's ``(N, K)`` matrix and ``human`` the labels of the same rows;
    ``rows`` (indices or a boolean mask) restricts both to a subset, e.g. the hard
    items. ``estimates`` holds the point values on those rows: each interval is built
    around its metric's estimate, and a metric missing from it (or not finite) gets no
    interval. ``annotator_noise=False`` skips the nested bootstrap (its result is then
    ``None``, as for soft labels), for callers that only need the plain intervals.
    The methods and their costs: the module docstring.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    proba = np.asarray(proba, dtype=np.float64)
    if rows is not None:
        proba = proba[rows]
        human = human.take(rows)
    terms = row_terms(proba, human.distribution, tie_tolerance=human.tie_tolerance)
    table = np.column_stack([terms[name] for name in TERM_NAMES])
    n_rows = table.shape[0]
    wanted = {name: float(estimates[name]) for name in HUMAN_METRICS
              if name in estimates and np.isfinite(estimates[name])}
    rng = np.random.default_rng(seed)
    exact_rows = resamples * n_rows <= ROW_BUDGET
    row_method = "exact" if exact_rows else "normal"
    noisy = human.votes is not None and annotator_noise
    if n_rows == 0:
        empty = BootstrapResult({}, row_method, resamples, level, seed, INTERVAL_METHOD, ())
        return HumanIntervals(empty, empty if noisy else None, {} if noisy else None)
    if not noisy:
        plain = _row_sums(rng, table, resamples, exact_rows)
        return HumanIntervals(_result(plain, n_rows, wanted, row_method, resamples, level, seed), None, None)
    support = _Support(proba, human.votes)
    if resamples * n_rows * max(support.width, 4) <= NESTED_BUDGET and exact_rows:
        plain, nested = _exact_nested(rng, table, support, resamples)
        nested_method = "exact"
    else:
        plain, nested = _grouped_nested(rng, table, support, resamples, exact_rows)
        nested_method = "grouped"
    plain_values, nested_values = _metrics_from_sums(plain, n_rows), _metrics_from_sums(nested, n_rows)
    shift = {}
    for name in wanted:
        before, after = plain_values[name], nested_values[name]
        before, after = before[np.isfinite(before)], after[np.isfinite(after)]
        if before.size and after.size:
            shift[name] = float(after.mean() - before.mean())
    plain_result = _result(plain, n_rows, wanted, row_method, resamples, level, seed)
    # The nested draws are re-centred on the plain ones before the interval is read off:
    # redrawing votes from the observed H shifts them by only part of the few-votes bias
    # (docs/metrics.md, section 13), so the shift is reported on its own and the interval
    # keeps only the extra spread, around the same figure as the plain one.
    nested_result = _result(nested, n_rows, wanted, nested_method, resamples, level, seed, offsets=shift)
    return HumanIntervals(plain_result, nested_result, shift)


# ------------------------------------------------------------------ resampled sums


def _metrics_from_sums(sums: np.ndarray, n_rows: int) -> dict[str, np.ndarray]:
    """Each metric on each resample, from the ``(B, 7)`` sums of the terms over its rows."""
    values = {name: sums[:, j] / n_rows for j, name in enumerate(MEAN_METRICS)}
    counted = sums[:, _COUNTED]
    with np.errstate(invalid="ignore", divide="ignore"):
        values[_AGREEMENT] = np.where(counted > 0, sums[:, _AGREE] / np.where(counted > 0, counted, 1.0), np.nan)
    return values


def _result(sums: np.ndarray, n_rows: int, wanted: dict[str, float], method: str, resamples: int, level: float,
            seed: int, offsets: dict[str, float] | None = None) -> BootstrapResult:
    """Basic intervals from the resampled sums; ``offsets`` are subtracted from each
    metric's resampled values first (the nested draws' shift)."""
    values = _metrics_from_sums(sums, n_rows)
    intervals: dict[str, Interval] = {}
    widened = []
    for name, estimate in wanted.items():
        finite = values[name][np.isfinite(values[name])] - (offsets or {}).get(name, 0.0)
        if finite.size < 0.5 * resamples:
            continue  # mostly undefined (agreement when nearly every row is tied): no honest interval
        info = HUMAN_METRICS[name]
        intervals[name], was_widened = basic_interval(finite, estimate, level=level, bounds=(info.low, info.high))
        if was_widened:
            widened.append(name)
    return BootstrapResult(intervals, method, resamples, level, seed, INTERVAL_METHOD, tuple(widened))


def _index_blocks(rng: np.random.Generator, n_rows: int, resamples: int, cells_per_row: int):
    """Row indices of the resamples, ``(B, N)`` per block of at most ``_BLOCK_CELLS`` cells."""
    block = max(1, _BLOCK_CELLS // (n_rows * cells_per_row))
    for start in range(0, resamples, block):
        yield rng.integers(0, n_rows, (min(block, resamples - start), n_rows))


def _counts(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """How often each row was drawn in each resample: ``(B, N)`` float64."""
    blocks = rows.shape[0]
    flat = (rows + np.arange(blocks)[:, None] * n_rows).ravel()
    return np.bincount(flat, minlength=blocks * n_rows).reshape(blocks, n_rows).astype(np.float64)


def _row_sums(rng: np.random.Generator, matrix: np.ndarray, resamples: int, exact: bool) -> np.ndarray:
    """Sums of the columns of ``matrix`` (N, C) over the rows of each resample: ``(B, C)``."""
    n_rows = matrix.shape[0]
    if not exact:
        return _normal_sums(rng, matrix, resamples)
    return np.concatenate([_counts(rows, n_rows) @ matrix for rows in _index_blocks(rng, n_rows, resamples, 1)])


def _normal_sums(rng: np.random.Generator, matrix: np.ndarray, resamples: int) -> np.ndarray:
    """The row bootstrap's sums for large N: normal with mean ``N mu`` and covariance
    ``N Sigma`` (``mu``, ``Sigma`` the per-row mean and covariance, ddof 0)."""
    n_rows = matrix.shape[0]
    mean = matrix.mean(axis=0)
    centred = matrix - mean
    covariance = centred.T @ centred / n_rows
    eigenvalues, vectors = np.linalg.eigh(covariance)
    root = vectors * np.sqrt(np.maximum(eigenvalues, 0.0))  # singular covariances (constant terms) allowed
    return n_rows * mean + np.sqrt(n_rows) * rng.standard_normal((resamples, matrix.shape[1])) @ root.T


# ------------------------------------------------------------------ votes redrawn


class _Support:
    """Each row's voted classes: the only columns a redraw of its votes can fill.

    Per row (``width`` columns, padded with zeros): ``p`` the model's probabilities and
    ``log_p = log max(p, eps)`` on the voted classes, ``h`` the human shares there;
    ``votes`` the row's number of votes, ``outside`` the model's probability on the
    other classes, ``entropy_p`` the model's entropy, ``top`` the position of the
    model's top class among the voted ones (-1 when it has no votes).
    """

    def __init__(self, proba: np.ndarray, votes: np.ndarray) -> None:
        n_rows, n_classes = votes.shape
        block = max(1, _BLOCK_CELLS // n_classes)
        voted = np.concatenate([np.count_nonzero(votes[s : s + block] > 0, axis=1)
                                for s in range(0, n_rows, block)]) if n_rows else np.zeros(0, np.intp)
        self.width = width = max(1, int(voted.max(initial=1)))
        self.p = np.zeros((n_rows, width))
        self.log_p = np.zeros((n_rows, width))
        self.h = np.zeros((n_rows, width))
        self.votes = votes.sum(axis=1).astype(np.int64)
        self.log_votes = np.log(np.maximum(self.votes, 1))
        # A table of c log c only for small counts: its size follows the largest count, so
        # beyond the limit the logs are computed (memory never grows with a count's size).
        most = int(self.votes.max(initial=0))
        self._table = None
        if most <= _TABLE_LIMIT:
            counts = np.arange(most + 1, dtype=np.float64)
            self._table = counts * log_or_zero(counts)
        self.outside = np.empty(n_rows)
        self.entropy_p = np.empty(n_rows)
        self.top = np.empty(n_rows, dtype=np.intp)
        for start in range(0, n_rows, block):  # blocks of rows, each vectorised
            stop = min(start + block, n_rows)
            p, v = proba[start:stop], votes[start:stop]
            mask = v > 0
            row, col = np.nonzero(mask)  # row-major: a row's voted classes in class order
            first = np.cumsum(voted[start:stop]) - voted[start:stop]
            position = np.arange(row.size) - first[row]
            self.p[start + row, position] = p[row, col]
            self.log_p[start + row, position] = np.log(np.maximum(p[row, col], NLL_EPS))
            self.h[start + row, position] = v[row, col] / self.votes[start + row]
            self.outside[start:stop] = np.where(mask, 0.0, p).sum(axis=1)
            self.entropy_p[start:stop] = -np.einsum("ij,ij->i", p, log_or_zero(p))
            local = np.arange(stop - start)
            predicted = p.argmax(axis=1)
            self.top[start:stop] = np.where(mask[local, predicted], mask.cumsum(axis=1)[local, predicted] - 1, -1)

    def redraw(self, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
        """One redraw of the votes of each of ``rows``: ``(M, width)`` counts."""
        return rng.multinomial(self.votes[rows], self.h[rows])

    def terms(self, rows: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        """The per-row terms (:data:`TERM_NAMES` columns) of ``rows`` (indices, or a
        slice) with the human distribution made from ``drawn`` counts on the voted
        classes: ``(M, 7)``.

        The same definitions as :func:`calaudit.human.metrics.row_terms` (a test checks
        them against it), arranged for small whole counts ``c`` out of ``n`` votes:
        ``entropy(H) = log n - sum_k c_k log c_k / n``, ``KL = cross-entropy -
        entropy(H)``, and a plurality is tied when two counts equal the largest (shares
        of different counts differ by at least ``1/n``, far above the tie tolerance).
        """
        votes = self.votes[rows]
        h = drawn / votes[:, None]
        p, log_p = self.p[rows], self.log_p[rows]
        ones = np.ones(self.width)  # row sums as matrix-vector products: faster on a few columns
        out = np.empty((len(TERM_NAMES), votes.shape[0]))  # a row per term: contiguous writes
        difference = p - h
        out[0] = np.minimum(0.5 * (np.abs(difference, out=difference) @ ones + self.outside[rows]), 1.0)
        cross_entropy = np.einsum("ij,ij->i", h, log_p)
        np.negative(cross_entropy, out=out[2])
        entropy_h = self.log_votes[rows] - (self._count_log_count(drawn) @ ones) / votes
        np.maximum(out[2] - entropy_h, 0.0, out=out[1])
        np.subtract(self.entropy_p[rows], entropy_h, out=out[3])
        np.abs(out[3], out=out[4])
        # Ties by a loop over the (few) voted columns; the padding (0 votes) never reaches
        # a row's largest count, which is at least 1. The model's top class agrees when it
        # holds the largest count alone (its position among the voted classes; -1: none).
        top = drawn[:, 0].copy()
        for column in range(1, self.width):
            np.maximum(top, drawn[:, column], out=top)
        at_top = (drawn[:, 0] == top).astype(np.int64)
        for column in range(1, self.width):
            at_top += drawn[:, column] == top
        np.equal(at_top, 1, out=out[_COUNTED], casting="unsafe")
        model_top = self.top[rows]
        model_count = np.take_along_axis(drawn, np.maximum(model_top, 0)[:, None], axis=1)[:, 0]
        out[_AGREE] = out[_COUNTED] * ((model_count == top) & (model_top >= 0))
        return out.T

    def _count_log_count(self, counts: np.ndarray) -> np.ndarray:
        """``c log c`` (0 at c = 0), from a table of every count up to the most votes."""
        if self._table is None:
            return counts * log_or_zero(counts.astype(np.float64))
        return self._table[counts]


def _exact_nested(rng, table: np.ndarray, support: _Support, resamples: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain and nested sums on the same drawn rows: the nested ones with every drawn
    row's votes redrawn (a row drawn twice gets two independent redraws)."""
    n_rows = table.shape[0]
    plain, nested = [], []
    for rows in _index_blocks(rng, n_rows, resamples, support.width):
        plain.append(_counts(rows, n_rows) @ table)
        flat = rows.ravel()
        drawn_terms = support.terms(flat, support.redraw(rng, flat))
        nested.append(drawn_terms.reshape(rows.shape[0], n_rows, -1).sum(axis=1))
    return np.concatenate(plain), np.concatenate(nested)


def _redraw_moments(rng, support: _Support, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, over ``REDRAWS`` redraws of its votes: the mean of every term ``(N, 7)``,
    the variance of the mean terms ``(N, 5)`` and the covariance of agree and counted
    ``(N, 3)`` = (var agree, cov, var counted), ddof 1."""
    mean = np.empty((n_rows, len(TERM_NAMES)))
    variance = np.empty((n_rows, _N_MEAN))
    pair = np.empty((n_rows, 3))
    block = max(1, _BLOCK_CELLS // (REDRAWS * support.width))
    for start in range(0, n_rows, block):
        stop = min(start + block, n_rows)
        drawn = _redrawn_terms(rng, support, start, stop, REDRAWS)
        mean[start:stop] = drawn.mean(axis=1)
        variance[start:stop] = drawn[:, :, :_N_MEAN].var(axis=1, ddof=1)
        agree = drawn[:, :, _AGREE] - mean[start:stop, _AGREE, None]
        counted = drawn[:, :, _COUNTED] - mean[start:stop, _COUNTED, None]
        pair[start:stop] = np.column_stack([(agree * agree).sum(axis=1), (agree * counted).sum(axis=1),
                                            (counted * counted).sum(axis=1)]) / (REDRAWS - 1)
    return mean, variance, pair


def _redrawn_terms(rng, support: _Support, start: int, stop: int, redraws: int) -> np.ndarray:
    """The terms of ``redraws`` redraws of each row from ``start`` to ``stop``: ``(rows,
    redraws, 7)``. The redraws are drawn row by row (each row's in turn), and scored
    redraw by redraw on a slice of the rows (no gathered copies of the rows' columns)."""
    rows = np.repeat(np.arange(start, stop), redraws)
    counts = support.redraw(rng, rows).reshape(stop - start, redraws, -1)
    out = np.empty((stop - start, redraws, len(TERM_NAMES)))
    for draw in range(redraws):  # a loop over the few redraws
        out[:, draw] = support.terms(slice(start, stop), counts[:, draw])
    return out


def _grouped_nested(rng, table: np.ndarray, support: _Support, resamples: int,
                    exact_rows: bool) -> tuple[np.ndarray, np.ndarray]:
    """Plain sums, and nested sums approximated from each row's redraw moments: the row
    bootstrap of the rows' mean terms plus normal noise with the drawn rows' summed
    variance."""
    n_rows, n_terms = table.shape
    mean, variance, pair = _redraw_moments(rng, support, n_rows)
    if exact_rows:
        both = _row_sums(rng, np.column_stack([table, mean, variance, pair]), resamples, exact=True)
        spread = both[:, 2 * n_terms:]
    else:
        both = _normal_sums(rng, np.column_stack([table, mean]), resamples)
        spread = np.broadcast_to(n_rows * np.concatenate([variance.mean(axis=0), pair.mean(axis=0)]),
                                 (resamples, _N_MEAN + 3))
    plain, nested = both[:, :n_terms], both[:, n_terms : 2 * n_terms].copy()
    return plain, add_redraw_noise(rng, nested, spread)


def add_redraw_noise(rng: np.random.Generator, sums: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """``sums`` (resamples x terms, :data:`calaudit.human.metrics.TERM_NAMES`) plus normal
    noise with the vote redraws' ``spread`` per resample: the variance of each mean
    term, then the (agree, counted) variances and covariance. Adds in place and
    returns ``sums``."""
    noise = rng.standard_normal((sums.shape[0], _N_MEAN + 2))
    sums[:, :_N_MEAN] += np.sqrt(np.maximum(spread[:, :_N_MEAN], 0.0)) * noise[:, :_N_MEAN]
    var_agree, cov, var_counted = (np.maximum(spread[:, _N_MEAN], 0.0), spread[:, _N_MEAN + 1],
                                   np.maximum(spread[:, _N_MEAN + 2], 0.0))
    # (agree, counted) noise with that 2 x 2 covariance, by its Cholesky factor.
    sd_agree = np.sqrt(var_agree)
    slope = np.divide(cov, sd_agree, out=np.zeros_like(cov), where=sd_agree > 0)
    rest = np.sqrt(np.maximum(var_counted - slope * slope, 0.0))
    sums[:, _AGREE] += sd_agree * noise[:, _N_MEAN]
    sums[:, _COUNTED] += slope * noise[:, _N_MEAN] + rest * noise[:, _N_MEAN + 1]
    return sums


# Public names for the streamed human analysis (calaudit.engine.human_stream), which
# resamples mergeable per-group sums with the same arithmetic.
RowSupport = _Support
metrics_from_sums = _metrics_from_sums
intervals_from_sums = _result
