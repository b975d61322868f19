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
n_i`` with :func:`calaudit.human.metrics.row_terms` (the one implementation of every
human metric). The floor of a metric is the mean of its simulated values; ``low`` and
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

**Cost.** Only the classes a row has votes for can receive votes in a redraw (``S`` is
0 elsewhere, and so is ``P = S``: those columns add 0 to every metric), so each row is
kept on its ``width`` voted classes, in class order (ties of the model's top answer
still go to the first class). A simulation is one multinomial draw per row and one call
of ``row_terms`` on ``(N, width)``: vectorised over rows; the loop is over simulations,
``min(simulations, max(MIN_SIMULATIONS, BUDGET // (N * width)))`` of them.

The function is pure (counts, metric names, seed, number of simulations in; figures
out), so a streamed audit can call it on counts gathered from its batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .metrics import HUMAN_METRICS, metrics_from_terms, row_terms
from .results import FLOOR_LEVEL, FLOOR_METHOD, FloorValue, NoiseFloor

#: Simulations asked for by default.
SIMULATIONS = 200
#: At least this many, however many rows: with many rows a simulated figure barely
#: moves from one simulation to the next (its spread shrinks like 1 / sqrt(rows)).
MIN_SIMULATIONS = 20
#: Cells (rows x simulations x max(width, 4)) drawn before fewer simulations are run:
#: about 2 seconds (60 simulations of 100,000 rows at 5 votes; 200 up to 30,000 rows).
BUDGET = 2.4e7


def noise_floor(
    votes: np.ndarray, *, seed: int, simulations: int = SIMULATIONS, metrics: Sequence[str] = tuple(HUMAN_METRICS),
    groups: Mapping[str, np.ndarray] | None = None, level: float = FLOOR_LEVEL, budget: float = BUDGET,
) -> dict[str, NoiseFloor | None]:
    """The noise floor of ``metrics`` on every row (key ``"all"``) and on each of
    ``groups`` (boolean row masks, e.g. ``{"hard": mask, "easy": ~mask}``), from the same
    simulations. A group without rows gets ``None``.

    ``votes`` is the ``(N, K)`` matrix of whole vote counts (every row with at least one
    vote, as :func:`calaudit.predictions.human_labels.human_from_votes` guarantees).
    ``simulations`` is the number asked for; above ``budget`` row-simulations fewer are
    run, never fewer than :data:`MIN_SIMULATIONS` (``NoiseFloor.simulations`` says how
    many). Seeded by ``seed`` (``numpy.random.default_rng``).
    """
    if simulations < 2:
        raise ValueError(f"simulations must be at least 2, got {simulations}")
    if groups and "all" in groups:
        raise ValueError("\"all\" names every row; give the groups other names")
    unknown = [name for name in metrics if name not in HUMAN_METRICS]
    if unknown:
        raise ValueError(f"unknown human metrics {unknown}; known: {', '.join(HUMAN_METRICS)}")
    counts = np.asarray(votes)
    if counts.ndim != 2:
        raise ValueError(f"expected an (N, K) matrix of vote counts, got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts != np.floor(counts)):
        raise ValueError("vote counts must be whole numbers >= 0")
    if counts.shape[0] and not (counts.sum(axis=1) > 0).all():
        raise ValueError("every row needs at least one vote")
    compact, n_votes = _voted_columns(counts)
    split = compact / n_votes[:, None]
    n_rows, width = compact.shape
    masks = {"all": np.ones(n_rows, dtype=bool),
             **{name: np.asarray(mask, dtype=bool) for name, mask in (groups or {}).items()}}
    runs = int(simulations)
    if n_rows:
        runs = min(runs, max(MIN_SIMULATIONS, int(budget // (n_rows * max(width, 4)))))
    drawn = {group: {name: np.full(runs, np.nan) for name in metrics} for group in masks}
    rng = np.random.default_rng(seed)
    if n_rows:
        for run in range(runs):  # simulations in turn; each one vectorised over the rows
            redrawn = rng.multinomial(n_votes, split) / n_votes[:, None]
            terms = row_terms(split, redrawn, tie_tolerance=0.0)  # vote counts: exact ties
            for group, mask in masks.items():
                if mask.any():
                    values = metrics_from_terms(terms if group == "all" else
                                                {key: column[mask] for key, column in terms.items()})
                    for name in metrics:
                        drawn[group][name][run] = values[name]
    tail = (1.0 - level) / 2.0
    out: dict[str, NoiseFloor | None] = {}
    for group, mask in masks.items():
        if not mask.any():
            out[group] = None
            continue
        figures = {}
        for name in metrics:
            finite = drawn[group][name][np.isfinite(drawn[group][name])]
            if finite.size < 0.5 * runs:
                continue  # mostly undefined: no honest floor
            low, high = np.quantile(finite, [tail, 1.0 - tail])
            figures[name] = FloorValue(float(finite.mean()), float(low), float(high))
        out[group] = NoiseFloor(figures, float(np.median(n_votes[mask])), int(mask.sum()), runs, int(seed),
                                float(level), FLOOR_METHOD)
    return out


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
