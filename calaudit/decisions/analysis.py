"""The vendor decisions added to one audit: segments and review routing.

``calaudit run`` and ``calaudit compare`` call :func:`add_decisions` on each model's
audit with the same options, so every model is judged alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..predictions.value import Predictions
from ..result import AuditResult
from .routing import DEFAULT_TARGETS, route_predictions
from .segments import DEFAULT_GROUP_MAX_LEVELS, find_segments, group_segments


def add_decisions(
    result: AuditResult,
    predictions: Predictions,
    *,
    groups: dict[str, np.ndarray] | None = None,
    search: dict[str, np.ndarray] | None = None,
    min_group_size: int = 50,
    max_levels: int = DEFAULT_GROUP_MAX_LEVELS,
    progress: Callable[[str, int, int], None] | None = None,
    targets: Sequence[float] = (),
    recalibrate: bool = False,
    folds: int = 5,
    seed: int = 0,
    row_keys: np.ndarray | None = None,
) -> AuditResult:
    """``result`` with its segments (``groups``: the ``--group-by`` columns; ``search``:
    the columns ``--find-segments`` searches) and its review routing (``targets``, the
    report's 90/95/99% when empty; with ``recalibrate``, also after cross-fitted
    temperature scaling). A ``groups`` column with more than ``max_levels`` distinct
    values is refused; ``progress(step, done, total)`` is told how the segment tests,
    the search and the measuring advance; ``row_keys`` (uint64 per row, default its
    position) split the search's halves.

    Segments and routing use the audit's bins, resamples, seed and level.
    """
    options: dict[str, Any] = {
        "n_bins": result.n_bins,
        "bootstrap": int(result.options.get("bootstrap", 0)),
        "seed": seed,
        "level": float(result.options.get("level", 0.95)),
    }
    analyses = []
    if groups:
        analyses.append(group_segments(predictions, groups, min_group_size=min_group_size, max_levels=max_levels,
                                       progress=progress, **options))
    if search is not None:
        analyses.append(find_segments(predictions, search, min_group_size=min_group_size, progress=progress,
                                      row_keys=row_keys, **options))
    routing = route_predictions(predictions, tuple(targets) or DEFAULT_TARGETS, level=options["level"],
                                recalibrate=recalibrate, folds=folds, seed=seed)
    return dataclasses.replace(result, groups=tuple(analyses), routing=routing)
