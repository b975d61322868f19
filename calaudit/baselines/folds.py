"""Seeded stratified folds shared by every baseline (cross-fitting)."""

from __future__ import annotations

import warnings

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
