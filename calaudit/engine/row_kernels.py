"""Compiled row passes of the in-memory audit's row-level figures (numba, when the
kernel is; :func:`calaudit.engine.kernel.kernel_name`).

Each has a numpy reference in :mod:`calaudit.stats` and gives its numbers bit for
bit: the same products, added in the same (row) order as ``np.bincount`` adds them,
with fastmath off. They only save the temporaries numpy allocates and the passes it
makes over them; ``tests/test_engine_memory.py`` checks them against the references.

* :func:`top_label`: :meth:`calaudit.stats.metrics.TopLabel.of` (argmax, first of tied
  maxima; the confidence; right or wrong; the true class's probability);
* :func:`spread_to_grid`: :func:`calaudit.stats.estimators.spread_to_grid` (the smooth
  ECE's rounding of the rows onto a grid, done once per grid size of its bandwidth
  search).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..stats import estimators
from ..stats.metrics import TopLabel

__all__ = ["spread_to_grid", "top_label"]


def top_label(y: np.ndarray, proba: np.ndarray) -> TopLabel:
    """:meth:`TopLabel.of` in one compiled pass over the rows."""
    n_rows = proba.shape[0]
    prediction = np.empty(n_rows, dtype=np.intp)
    confidence = np.empty(n_rows)
    correct = np.empty(n_rows)
    true_probability = np.empty(n_rows)
    _compiled()[0](np.ascontiguousarray(proba, dtype=np.float64), np.ascontiguousarray(y, dtype=np.intp),
                   prediction, confidence, correct, true_probability)
    return TopLabel(prediction, confidence, correct, true_probability)


def spread_to_grid(f: np.ndarray, weights: tuple[np.ndarray | None, ...], points: int) -> tuple[np.ndarray, ...]:
    """:func:`calaudit.stats.estimators.spread_to_grid` in one compiled pass per weight."""
    f = np.ascontiguousarray(f, dtype=np.float64)
    if points < 2 or f.ndim != 1:  # no interval to spread over, or resamples: the reference
        return estimators.spread_to_grid(f, weights, points)
    spread = _compiled()[1]
    grids = []
    for weight in weights:
        lower = np.zeros(points)
        upper = np.zeros(points)
        if weight is None:
            spread(f, np.empty(0), False, points, lower, upper)
        else:
            spread(f, np.ascontiguousarray(weight, dtype=np.float64), True, points, lower, upper)
        lower[1:] += upper[:-1]
        grids.append(lower)
    return tuple(grids)


def _top_label(proba, y, prediction, confidence, correct, true_probability):
    n_rows, n_classes = proba.shape
    for i in range(n_rows):
        best = 0
        largest = proba[i, 0]
        for k in range(1, n_classes):
            if proba[i, k] > largest:  # strictly: ties go to the lowest index, as np.argmax
                largest = proba[i, k]
                best = k
        prediction[i] = best
        confidence[i] = largest
        correct[i] = 1.0 if best == y[i] else 0.0
        true_probability[i] = proba[i, y[i]]


def _spread(f, weight, weighted, points, lower, upper):
    """``lower[left] += (1 - frac) w`` and ``upper[left] += frac w`` row by row, the
    position as ``estimators.spread_to_grid`` computes it (float64 ``f * (points - 1)``,
    truncated, clipped to ``0..points - 2``)."""
    scale = np.float64(points - 1)
    last = points - 2
    for i in range(f.shape[0]):
        position = f[i] * scale
        left = int(position)
        if left < 0:
            left = 0
        elif left > last:
            left = last
        frac = position - np.float64(left)
        if weighted:
            lower[left] += (1.0 - frac) * weight[i]
            upper[left] += frac * weight[i]
        else:
            lower[left] += 1.0 - frac
            upper[left] += frac


@lru_cache(maxsize=1)
def _compiled() -> Any:
    import numba

    def compile_(function: Any) -> Any:
        try:  # compiled once per machine when numba finds a writable cache directory
            return numba.njit(cache=True, nogil=True, fastmath=False)(function)
        except RuntimeError:  # "no locator available": a read-only install without a home
            return numba.njit(cache=False, nogil=True, fastmath=False)(function)

    return compile_(_top_label), compile_(_spread)
