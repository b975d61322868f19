"""Seeded stratified folds shared by every baseline (cross-fitting)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np


def stratified_folds(y: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold number (0..n_folds-1) of each row, stratified by class, shuffled with ``seed``.

    Classes with fewer rows than folds are spread as far as they go (scikit-learn's
    warning about them is expected and silenced).
    """
    from sklearn.model_selection import StratifiedKFold

    folds = np.empty(y.shape[0], dtype=np.intp)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, test) in enumerate(splitter.split(np.zeros(y.shape[0]), y)):
            folds[test] = fold
    return folds


class StepCounter:
    """Counts the units of a long step (a cross-fitted fold's fit, a block of
    resamples) for a ``progress(label, done, total)`` callback (the CLI's progress bar;
    ``None``: nothing is told). Made before the first unit (it says ``0`` of
    ``total``), called after each with the units it did (default 1)."""

    def __init__(self, progress: Callable[[str, int, int], None] | None, label: str, total: int) -> None:
        self.progress, self.label, self.total, self.done = progress, label, total, 0
        if progress is not None:
            progress(label, 0, total)

    def __call__(self, units: int = 1) -> None:
        self.done += units
        if self.progress is not None:
            self.progress(self.label, self.done, self.total)
