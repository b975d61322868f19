"""The human noise floor of a streamed or distributed audit: the in-memory simulations
(:mod:`calaudit.human.noise_floor`), summed batch by batch.

A simulated figure is a sum over rows of per-row terms, and each row's redraws are
seeded by its position (and file, in a dataset of several files; never by its batch),
so every batch adds its rows' terms to each simulation's sums, per part (all, hard,
easy), and partial sums merge by addition: the floor is the same in any batching,
row-group split or Dask partitioning, and one file's equals (to rounding) the in-memory
floor of its rows.

The number of simulations follows the in-memory rule
(:func:`calaudit.human.noise_floor.floor_simulations`: 200, fewer as the rows' load grows,
never fewer than 20). The rule never grows with the load, so a stream starts with 200
and drops the last simulations as rows arrive (their sums miss no row of the kept
ones), and a merge keeps the simulations both sides hold: at the end, the number the
in-memory run would draw on all the rows. With ``--hard-split median`` the hard and
easy parts come from the second pass, with the first pass's number of simulations.

Memory: simulations x parts x 7 float64 (under 40 KB) and the counts of distinct
numbers of votes per part.
"""

from __future__ import annotations

import numpy as np

from ..human.noise_floor import BUDGET, SIMULATIONS, floor_from_sums, floor_load, floor_simulations, floor_sums
from ..human.metrics import TERM_NAMES
from ..human.results import NoiseFloor
from .value_counts import ValueCounts


class FloorSums:
    """Per simulation and part, the sums of the per-row terms of the rows seen so far
    (mergeable); ``parts`` names the parts (``"all"``, ``"hard"``, ``"easy"``)."""

    def __init__(self, parts: tuple[str, ...], *, seed: int, simulations: int = SIMULATIONS,
                 budget: float = BUDGET) -> None:
        self.parts = tuple(parts)
        self.seed = int(seed)
        self.asked = int(simulations)
        self.budget = float(budget)
        self.load = 0
        self.runs = self.asked
        self.sums = np.zeros((self.asked, len(self.parts), len(TERM_NAMES)))
        self.rows = np.zeros(len(self.parts), dtype=np.int64)
        self.votes = [ValueCounts() for _ in self.parts]

    def add(self, votes: np.ndarray, keys: np.ndarray, masks: dict[str, np.ndarray]) -> None:
        """Add a batch: ``votes`` its ``(n, K)`` counts, ``keys`` its rows' keys
        (:func:`calaudit.engine.row_hash.position_keys`), ``masks`` each part's rows."""
        per_row = np.asarray(votes).sum(axis=1)
        self.load += floor_load(per_row)
        self._keep(floor_simulations(self.load, self.asked, self.budget))
        weights = np.stack([masks[name] for name in self.parts])
        self.sums += floor_sums(votes, keys, seed=self.seed, simulations=self.runs, parts=weights)
        for j, name in enumerate(self.parts):
            self.rows[j] += int(np.count_nonzero(masks[name]))
            self.votes[j].add(per_row[masks[name]])

    def _keep(self, runs: int) -> None:
        if runs < self.runs:
            self.runs = runs
            self.sums = self.sums[:runs].copy()

    def merge(self, other: FloorSums) -> FloorSums:
        merged = FloorSums(self.parts, seed=self.seed, simulations=self.asked, budget=self.budget)
        merged.load = self.load + other.load
        runs = min(self.runs, other.runs, floor_simulations(merged.load, self.asked, self.budget))
        merged.runs = runs
        merged.sums = self.sums[:runs] + other.sums[:runs]
        merged.rows = self.rows + other.rows
        merged.votes = [a.merge(b) for a, b in zip(self.votes, other.votes)]
        return merged

    def floors(self) -> dict[str, NoiseFloor | None]:
        """Each part's :class:`NoiseFloor` (``None`` for a part without rows)."""
        return {name: floor_from_sums(self.sums[:, j], int(self.rows[j]), votes_per_item=self.votes[j].median(),
                                      seed=self.seed)
                for j, name in enumerate(self.parts)}
