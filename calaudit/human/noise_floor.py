"""The human noise floor: what a model equal to the crowd's split would score at these
vote depths (docs/metrics.md, section 13, "The noise floor").

TVD, KL and the entropy gap are not 0 even for a model that knows exactly how the crowd
splits on each item: an item's few votes are a sample of the crowd, and the metrics
compare the model with that sample. The floor says how far from 0 vote chance alone
puts each figure, so that a model's figure can be read against it.

**Simulation.** From the observed counts ``c_i`` (``n_i = sum_k c_ik`` votes) the
plug-in split ``S_i = c_i / n_i`` stands in for the crowd's. Each simulation redraws
every item's votes ``c*_i ~ Multinomial(n_i, S_i)`` (the same number of people,
answering as these people did) and scores the model ``P = S`` against ``H* = c*_i /
n_i`` with the per-row terms of :func:`calaudit.human.metrics.row_terms` (computed for
whole counts by :class:`calaudit.human.intervals.RowSupport`, which a test holds to
``row_terms``). The floor of a metric is the mean of its simulated values; ``low`` and
``high`` are the 2.5th and 97.5th percentiles (at ``level`` 0.95): the range in which
such a model's figure would land on these items by vote chance alone.

**What it is, and its bias.** It is the floor *for a model equal to the plug-in split*,
at this vote depth, on these items. The plug-in split of a few votes is more certain
than the crowd it samples (a 5-0 item may come from an 85/15 crowd, and redraws of 5-0
are all 5-0), so the floor of TVD, KL, the cross-entropy and the entropy gaps is a
**lower estimate** of what a crowd-equal model scores, and agreement's an upper one:
``figure - floor`` overstates how far the model is from the crowd, never understates
it. The gap closes as votes grow: in ``benchmarks/bench_noise_floor.py`` (3 classes,
Dirichlet(0.6) crowds) TVD's floor is 0.128 where a crowd-equal model shows 0.189 at 5
votes, 0.085 against 0.094 at 20 and 0.041 against 0.042 at 100 (docs/metrics.md). The
cross-entropy is linear in ``H``, so its floor is the mean entropy of the plug-in
splits; plurality agreement's "floor" is a ceiling: how often such a model's top answer
is the redrawn plurality.

**Seeded by row, so it streams.** Every vote of a redraw is one of the row's own votes
picked at random (a draw from its split), the pick made from a hash of the row's key,
the vote's number, ``seed`` and the simulation's number (:mod:`calaudit.stats.row_hash`,
splitmix64): the key is the row's position (and, in a dataset of several files, its
file), so a row's redraws are the same in memory, in any batching of a stream and in any
Dask partitioning, and two files with the same votes in the same order (two models'
predictions) get the same floor. A simulated
figure is a sum over rows of their terms, so :func:`floor_sums` of separate batches
add up, and :func:`floor_from_sums` reads the floor off the merged sums: one
implementation for the in-memory audit (:func:`noise_floor`, every row as one batch)
and the streamed one (:mod:`calaudit.engine.human_floor`), equal to rounding.

**Cost.** Only the classes a row has votes for can receive votes in a redraw (``S`` is
0 elsewhere, and so is ``P = S``: those columns add 0 to every metric), so each row is
kept on its ``width`` voted classes, in class order (ties of the model's top answer
still go to the first class). A simulation hashes each vote once and scores each row
once, vectorised over rows; the loop is over simulations, :func:`floor_simulations` of
them: ``min(simulations, max(MIN_SIMULATIONS, BUDGET // load))``, where the load is
the votes plus :data:`ROW_LOAD` per row (monotone in the rows, so a stream can cut its
simulations as rows arrive and end with the same number as memory).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..stats.row_hash import GOLDEN, finalise, mix, position_keys
from .intervals import RowSupport
from .metrics import HUMAN_METRICS, MEAN_METRICS, TERM_NAMES
from .results import FLOOR_LEVEL, FLOOR_METHOD, FloorValue, NoiseFloor

#: Simulations asked for by default.
SIMULATIONS = 200
#: At least this many, however many rows: with many rows a simulated figure barely
#: moves from one simulation to the next (its spread shrinks like 1 / sqrt(rows)).
MIN_SIMULATIONS = 20
#: What scoring a row costs, in hashed votes (the load of :func:`floor_simulations`).
ROW_LOAD = 4
#: Load (votes + ROW_LOAD per row) x simulations drawn before fewer simulations are
#: run: about 0.6 s on one core (200 simulations up to 33,000 rows at 5 votes, 20 from
#: 333,000; at 50 votes, 200 up to 5,500 rows, 20 from 55,000).
BUDGET = 6e7
#: Rows with more votes than this are redrawn class by class from the normal
#: approximation of each class's binomial (cost: one draw per class, whatever the count;
#: at this many votes the approximation is far inside the simulations' own error);
#: the others vote by vote, exactly.
MANY_VOTES = 1000
#: Votes hashed at once (a block of rows): the temporaries stay small.
_BLOCK_VOTES = 1 << 16
_BLOCK_ROWS = 1 << 13
_FLOOR_SALT = 0x464C_4F4F_5253  # "FLOORS"
_AGREE, _COUNTED = TERM_NAMES.index("agree"), TERM_NAMES.index("counted")


def floor_simulations(load: float, simulations: int = SIMULATIONS, budget: float = BUDGET) -> int:
    """How many simulations rows of this ``load`` (votes + :data:`ROW_LOAD` per row)
    get: ``simulations``, fewer above ``budget`` load-simulations, never fewer than
    :data:`MIN_SIMULATIONS` (nor than asked when fewer are asked). Never grows with the
    load."""
    if load <= 0 or budget == float("inf"):
        return int(simulations)
    return int(min(simulations, max(MIN_SIMULATIONS, budget // load)))


def floor_load(votes_per_row: np.ndarray) -> int:
    """The load of rows with these numbers of votes."""
    return int(np.sum(votes_per_row, dtype=np.int64)) + ROW_LOAD * int(np.shape(votes_per_row)[0])


def check_counts(votes: np.ndarray) -> np.ndarray:
    """``votes`` as an ``(N, K)`` array of whole counts, every row with a vote, or a
    ``ValueError`` saying what is wrong."""
    counts = np.asarray(votes)
    if counts.ndim != 2:
        raise ValueError(f"expected an (N, K) matrix of vote counts, got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts != np.floor(counts)):
        raise ValueError("vote counts must be whole numbers >= 0")
    if counts.shape[0] and not (counts.sum(axis=1) > 0).all():
        raise ValueError("every row needs at least one vote")
    return counts


def floor_sums(votes: np.ndarray, keys: np.ndarray, *, seed: int, simulations: int,
               parts: np.ndarray | None = None) -> np.ndarray:
    """The sums over rows of every per-row term (:data:`TERM_NAMES`) in each of
    ``simulations`` simulations, per part: ``(simulations, P, 7)``.

    ``votes`` is the ``(N, K)`` matrix of whole counts (checked by the caller:
    :func:`check_counts`), ``keys`` a uint64 per row that names it the same in every
    batching (:func:`calaudit.stats.row_hash.position_keys`), ``parts`` a ``(P, N)``
    matrix of 0/1 weights (``None``: one part, every row). Simulation ``s`` of a row is
    the same whatever other rows come with it, so sums of separate batches add up to
    the sums of all of them.
    """
    counts = np.asarray(votes)
    n_rows = counts.shape[0]
    weights = np.ones((1, n_rows)) if parts is None else np.asarray(parts, dtype=np.float64)
    out = np.zeros((int(simulations), weights.shape[0], len(TERM_NAMES)))
    if n_rows == 0 or simulations == 0:
        return out
    compact, n_votes = _voted_columns(counts)
    # A unanimous row redraws to itself: the model equal to its split scores 0 on every
    # mean term and agrees, in every simulation. Only the other rows are redrawn.
    unanimous = compact[:, 0] == n_votes
    out[:, :, _AGREE] += weights[:, unanimous].sum(axis=1)
    out[:, :, _COUNTED] += weights[:, unanimous].sum(axis=1)
    row_keys = mix(mix(np.asarray(keys, dtype=np.uint64), _FLOOR_SALT), int(seed))
    many = ~unanimous & (n_votes > MANY_VOTES)
    rows = np.flatnonzero(many)
    for start in range(0, rows.size, _BLOCK_ROWS):  # rows with many votes: a draw per class, not per vote
        block = rows[start : start + _BLOCK_ROWS]
        out += _many_votes_sums(compact[block], n_votes[block], row_keys[block], weights[:, block],
                                int(simulations))
    varied = ~unanimous & ~many
    compact, n_votes, weights, row_keys = compact[varied], n_votes[varied], weights[:, varied], row_keys[varied]
    n_rows = compact.shape[0]
    ends = np.cumsum(n_votes)
    start = 0
    while start < n_rows:  # blocks of about _BLOCK_VOTES votes, each vectorised over its rows
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + _BLOCK_VOTES, side="right"))
        stop = max(stop, start + 1)
        out += _block_sums(compact[start:stop], n_votes[start:stop], row_keys[start:stop],
                           weights[:, start:stop], int(simulations))
        start = stop
    return out


class _VotePicks:
    """Redraws of rows with few votes, vote by vote: each redrawn vote is one of the
    row's own votes, picked by a hash of the row's key, the vote's number and the
    simulation's (Lemire's multiply-shift on 32 bits), and goes to the picked vote's
    class. ``compact`` is ``(n, width)`` left-packed counts, ``n_votes`` their sums."""

    def __init__(self, compact: np.ndarray, n_votes: np.ndarray, row_keys: np.ndarray) -> None:
        self.n_rows, self.width = compact.shape
        owner = np.repeat(np.arange(self.n_rows), n_votes)  # each vote's row
        starts = np.cumsum(n_votes) - n_votes
        number = np.arange(owner.size, dtype=np.uint64) - starts.astype(np.uint64)[owner]
        with np.errstate(over="ignore"):
            self.vote_keys = finalise(row_keys[owner] + number * GOLDEN)  # one key per (row, vote)
        self.total = n_votes.astype(np.uint64)[owner]
        self.first = starts[owner]
        # The row's votes listed class by class: the (rows, width) cell of each.
        self.cell = np.repeat(np.arange(self.n_rows * self.width), compact.ravel())

    @property
    def votes(self) -> int:
        return int(self.vote_keys.size)

    def counts(self, runs: np.ndarray) -> np.ndarray:
        """The redrawn counts of every row in each of ``runs`` (simulation numbers):
        ``(len(runs) * n, width)``, simulation by simulation."""
        shift = np.uint64(32)
        with np.errstate(over="ignore"):
            drawn = finalise(self.vote_keys[None, :] + np.asarray(runs, dtype=np.uint64)[:, None] * GOLDEN)
        drawn >>= shift
        drawn *= self.total
        drawn >>= shift  # the pick, below 2**32: as int64, plus the row's first vote
        pick = drawn.view(np.int64)
        pick += self.first
        index = self.cell[pick]
        if len(runs) > 1:
            index += (np.arange(len(runs)) * (self.n_rows * self.width))[:, None]
        size = len(runs) * self.n_rows * self.width
        return np.bincount(index.ravel(), minlength=size).reshape(-1, self.width)


def _normal_counts(compact: np.ndarray, n_votes: np.ndarray, row_keys: np.ndarray, run: int) -> np.ndarray:
    """A redraw of rows with many votes: each class's count drawn in turn from the
    normal approximation of its binomial (``m`` votes left, share ``q`` of what is left:
    ``round(m q + sqrt(m q (1 - q)) z)``, kept in ``[0, m]``), ``z`` from a hash of the
    row's key, the simulation and the class: ``(n, width)``."""
    from scipy.special import ndtri

    n_rows, width = compact.shape
    split = compact / n_votes[:, None]
    left_share = np.cumsum(split[:, ::-1], axis=1)[:, ::-1]  # the share of the classes from k on
    remaining = n_votes.astype(np.float64)
    drawn = np.zeros((n_rows, width), dtype=np.int64)
    for column in range(width - 1):  # a loop over the (few) voted classes
        share = np.divide(split[:, column], left_share[:, column], out=np.zeros(n_rows),
                          where=left_share[:, column] > 0)
        share = np.minimum(share, 1.0)
        keys = mix(mix(row_keys, run), column)  # the row's own: not the block's width
        uniform = ((keys >> np.uint64(11)).astype(np.float64) + 0.5) / (1 << 53)
        count = np.clip(np.rint(remaining * share + np.sqrt(remaining * share * (1.0 - share)) * ndtri(uniform)),
                        0.0, remaining)
        drawn[:, column] = count
        remaining -= count
    drawn[:, width - 1] = remaining
    return drawn


def hashed_redraws(compact: np.ndarray, n_votes: np.ndarray, row_keys: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """Redraws of each row's votes from its own split, seeded by the row's key (uint64)
    and the simulations' numbers ``runs``, whatever other rows come with it:
    ``(len(runs), n, width)`` counts on the row's ``compact`` (left-packed) voted classes.
    Vote by vote (exact) up to :data:`MANY_VOTES` votes, above class by class from the
    binomials' normal approximation. For a few redraws of a block of rows (the streamed
    intervals' annotator noise); the floor keeps its picks across simulations."""
    n_rows, width = compact.shape
    out = np.empty((len(runs), n_rows, width), dtype=np.int64)
    many = n_votes > MANY_VOTES
    few = ~many
    if few.any():
        out[:, few] = _VotePicks(compact[few], n_votes[few], row_keys[few]).counts(runs).reshape(len(runs), -1, width)
    if many.any():
        for j, run in enumerate(runs):
            out[j, many] = _normal_counts(compact[many], n_votes[many], row_keys[many], int(run))
    return out


def _block_sums(compact: np.ndarray, n_votes: np.ndarray, row_keys: np.ndarray, weights: np.ndarray,
                simulations: int) -> np.ndarray:
    """:func:`floor_sums` of one block of rows with few votes."""
    support = RowSupport(compact / n_votes[:, None], compact)
    n_rows, width = compact.shape[0], support.width  # the block's own widest row
    picks = _VotePicks(compact[:, :width], n_votes, row_keys)
    # Simulations in chunks (a few votes: many simulations at once), each vectorised.
    chunk = max(1, _BLOCK_VOTES // max(picks.votes, 1))
    out = np.empty((simulations, weights.shape[0], len(TERM_NAMES)))
    for begin in range(0, simulations, chunk):
        runs = np.arange(begin, min(begin + chunk, simulations), dtype=np.uint64)
        redrawn = picks.counts(runs)
        rows = slice(0, n_rows) if runs.size == 1 else np.tile(np.arange(n_rows), runs.size)
        terms = support.terms(rows, redrawn).reshape(runs.size, n_rows, -1)
        out[begin : begin + runs.size] = weights @ terms  # (runs, parts, terms)
    return out


def _many_votes_sums(compact: np.ndarray, n_votes: np.ndarray, row_keys: np.ndarray, weights: np.ndarray,
                     simulations: int) -> np.ndarray:
    """:func:`floor_sums` of rows with more than :data:`MANY_VOTES` votes, redrawn
    class by class (:func:`_normal_counts`)."""
    support = RowSupport(compact / n_votes[:, None], compact)
    width = support.width
    out = np.empty((simulations, weights.shape[0], len(TERM_NAMES)))
    for run in range(simulations):
        drawn = _normal_counts(compact[:, :width], n_votes, row_keys, run)
        out[run] = weights @ support.terms(slice(0, compact.shape[0]), drawn)
    return out


def floor_from_sums(sums: np.ndarray, rows: int, *, votes_per_item: float, seed: int,
                    metrics: Sequence[str] = tuple(HUMAN_METRICS), level: float = FLOOR_LEVEL) -> NoiseFloor | None:
    """The :class:`NoiseFloor` of one part from its ``(simulations, 7)`` term sums over
    ``rows`` rows (``None`` without rows): each metric's mean over the simulations and
    the percentiles holding the middle ``level`` of them. A metric undefined in most
    simulations (agreement when nearly every redraw is tied) is left out."""
    if rows == 0:
        return None
    sums = np.asarray(sums, dtype=np.float64)
    runs = sums.shape[0]
    drawn = {name: sums[:, TERM_NAMES.index(name)] / rows for name in MEAN_METRICS}
    counted = sums[:, TERM_NAMES.index("counted")]
    drawn["human_plurality_agreement"] = np.divide(sums[:, TERM_NAMES.index("agree")], counted,
                                                   out=np.full(runs, np.nan), where=counted > 0)
    tail = (1.0 - level) / 2.0
    figures = {}
    for name in metrics:
        finite = drawn[name][np.isfinite(drawn[name])]
        if finite.size < 0.5 * runs:
            continue  # mostly undefined: no honest floor
        low, high = np.quantile(finite, [tail, 1.0 - tail])
        figures[name] = FloorValue(float(finite.mean()), float(low), float(high))
    return NoiseFloor(figures, float(votes_per_item), int(rows), int(runs), int(seed), float(level), FLOOR_METHOD)


def noise_floor(
    votes: np.ndarray, *, seed: int, simulations: int = SIMULATIONS, metrics: Sequence[str] = tuple(HUMAN_METRICS),
    groups: Mapping[str, np.ndarray] | None = None, level: float = FLOOR_LEVEL, budget: float = BUDGET,
    keys: np.ndarray | None = None,
) -> dict[str, NoiseFloor | None]:
    """The noise floor of ``metrics`` on every row (key ``"all"``) and on each of
    ``groups`` (boolean row masks, e.g. ``{"hard": mask, "easy": ~mask}``), from the same
    simulations. A group without rows gets ``None``.

    ``votes`` is the ``(N, K)`` matrix of whole vote counts (every row with at least one
    vote, as :func:`calaudit.predictions.human_labels.human_from_votes` guarantees).
    ``simulations`` is the number asked for; above ``budget`` fewer are run
    (:func:`floor_simulations`; ``NoiseFloor.simulations`` says how many). Seeded by
    ``seed`` and each row's key (``keys``, uint64; default: the rows' positions in an
    unnamed file, :func:`calaudit.stats.row_hash.position_keys` of ``""``).
    """
    if simulations < 2:
        raise ValueError(f"simulations must be at least 2, got {simulations}")
    if groups and "all" in groups:
        raise ValueError("\"all\" names every row; give the groups other names")
    unknown = [name for name in metrics if name not in HUMAN_METRICS]
    if unknown:
        raise ValueError(f"unknown human metrics {unknown}; known: {', '.join(HUMAN_METRICS)}")
    counts = check_counts(votes)
    n_rows = counts.shape[0]
    if keys is None:
        keys = position_keys("", np.arange(n_rows))
    elif np.shape(keys) != (n_rows,):
        raise ValueError(f"expected one key per row ({n_rows}), got shape {np.shape(keys)}")
    masks = {"all": np.ones(n_rows, dtype=bool),
             **{name: np.asarray(mask, dtype=bool) for name, mask in (groups or {}).items()}}
    per_row = counts.sum(axis=1)
    runs = floor_simulations(floor_load(per_row), int(simulations), budget)
    sums = floor_sums(counts, keys, seed=seed, simulations=runs, parts=np.stack(list(masks.values())))
    return {group: floor_from_sums(sums[:, j], int(mask.sum()), votes_per_item=float(np.median(per_row[mask]))
                                   if mask.any() else float("nan"), seed=seed, metrics=metrics, level=level)
            for j, (group, mask) in enumerate(masks.items())}


def _voted_columns(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's counts on its voted classes, in class order, padded with zeros to the
    widest row: ``(N, width)`` int64, and the votes per row ``(N,)`` int64. Rows are
    read in blocks, so no temporary is as large as ``counts``."""
    n_rows, n_classes = counts.shape
    block = max(1, _BLOCK_CELLS // max(n_classes, 1))
    voted = np.concatenate([np.count_nonzero(counts[start : start + block] > 0, axis=1)
                            for start in range(0, n_rows, block)]) if n_rows else np.zeros(0, np.intp)
    width = max(1, int(voted.max(initial=1)))
    compact = np.zeros((n_rows, width), dtype=np.int64)
    first = np.cumsum(voted) - voted
    for start in range(0, n_rows, block):
        part = counts[start : start + block]
        row, col = np.nonzero(part > 0)  # row-major: each row's voted classes in class order
        position = np.arange(row.size) - (first[start + row] - first[start])
        compact[start + row, position] = part[row, col]
    return compact, compact.sum(axis=1)


#: Cells (rows x classes) read at once when keeping each row's voted classes.
_BLOCK_CELLS = 1 << 20
