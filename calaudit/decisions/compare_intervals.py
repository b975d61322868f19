"""Each model's own intervals read off ``compare``'s paired draws, so the rows are
resampled once, not once per model and again for the pairs.

The paired bootstrap (:func:`calaudit.decisions.compare.paired_draws`) draws its rows as
the audit's exact bootstrap does (``numpy.random.default_rng(seed)``, the same blocks of
:func:`calaudit.stats.bootstrap.exact_block_size`) and measures every metric of every
model on them, around the audit's own figures and smooth-ECE bandwidth: for a model
whose audit would resample exactly (``N x K x resamples`` within
:data:`calaudit.stats.bootstrap.EXACT_BUDGET`), its draws are the draws its audit makes,
and the intervals read off them are its audit's, to the last bit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..result import AuditResult
from ..stats.bootstrap import EXACT_BUDGET, intervals_of_samples


def paired_intervals_reusable(n_rows: int, n_classes: int, resamples: int) -> bool:
    """Whether a model's audit would draw exactly the paired draws (its exact bootstrap)."""
    return bool(resamples) and n_rows * n_classes * resamples <= EXACT_BUDGET


def with_paired_intervals(audit: AuditResult, draws: dict[str, np.ndarray], *, resamples: int, level: float,
                          seed: int) -> AuditResult:
    """``audit`` with the intervals of its metrics read off its paired ``draws``."""
    intervals = intervals_of_samples(draws, dict(audit.metrics), method="exact", resamples=resamples, level=level,
                                     seed=seed)
    extras: dict[str, Any] = dict(audit.extras)
    if isinstance(extras.get("execution"), dict):
        extras["execution"] = {**extras["execution"], "intervals": intervals.method}
    return replace(audit, intervals=intervals, extras=extras)
