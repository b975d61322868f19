"""Synthetic soft labels: what an ensemble's own uncertainty gives for free, beside
what people's votes give (docs/metrics.md, section 13, "A synthetic source").

Human soft labels cost an annotation budget. The cheapest synthetic alternative is
to make soft labels from models alone: the mean of an ensemble's probabilities is
spread out where the ensemble is unsure, as votes are where people are. With one
model (``calaudit run``), the ensemble is a **bootstrap ensemble of the retrained
reference model**, built inside each cross-fitting fold from that fold's training
rows alone:

1. :data:`HEADS` copies of the reference model (the label-smoothing baseline's, same
   features and settings) are fitted on hard labels, each on a bootstrap resample of
   the fold's training rows (drawn with replacement, seeded);
2. each training row's synthetic soft label is the mean of the probabilities of the
   heads that did not see it (out of bag: a head scoring a row it was fitted on would
   be surer than it is on new items); a row every head saw (about 2.5% of rows with
   eight heads) takes the mean of all heads;
3. the reference model is fitted on those soft labels, exactly as on the human
   distributions (:func:`calaudit.baselines.label_smoothing.fit_predict` with
   ``targets``), and scores the fold's held-out rows.

No held-out row is seen by any fit that scores it, and no vote is used: the
synthetic source costs only compute. It is then scored exactly as the human soft
labels are (:func:`calaudit.baselines.comparison.annotation_value`: cross-entropy
against the votes on the contested items, with a paired interval).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Heads of the bootstrap ensemble fitted in each fold.
HEADS = 8
#: The result key and name of the synthetic soft-label baseline.
KEY = "synthetic-soft-labels"
NAME = "Retrained reference model, synthetic soft labels from a bootstrap ensemble"


def synthetic_targets(
    x: np.ndarray, y: np.ndarray, n_classes: int, *, model: str, seed: int, heads: int, rng: np.random.Generator,
    on_fit: Callable[[], None] | None = None,
) -> np.ndarray:
    """The synthetic soft labels of training rows ``x``, ``y`` (module docstring, steps
    1 and 2): ``(n, K)`` rows summing to 1."""
    from .label_smoothing import fit_predict

    n_rows = y.shape[0]
    out_of_bag = np.zeros((n_rows, n_classes))
    counted = np.zeros(n_rows)
    every = np.zeros((n_rows, n_classes))
    for _ in range(heads):  # a loop over the heads, each fit vectorised
        rows = rng.integers(0, n_rows, n_rows)
        proba = fit_predict(x[rows], y[rows], x, n_classes, 0.0, kind=model, seed=seed)
        unseen = np.bincount(rows, minlength=n_rows) == 0
        out_of_bag[unseen] += proba[unseen]
        counted += unseen
        every += proba
        if on_fit is not None:
            on_fit()
    targets = np.where(counted[:, None] > 0, out_of_bag / np.maximum(counted, 1.0)[:, None], every / heads)
    return targets / targets.sum(axis=1, keepdims=True)


def cross_fitted_synthetic(
    features: np.ndarray, y: np.ndarray, fold_of: np.ndarray, n_classes: int, *, model: str, seed: int,
    heads: int = HEADS, on_fit: Callable[[], None] | None = None,
) -> np.ndarray:
    """Out-of-fold probabilities of the reference model trained on synthetic soft
    labels (module docstring). ``on_fit`` is called after each fit (``heads + 1`` per
    fold). Seeded by ``seed``: the same inputs give the same probabilities."""
    from .label_smoothing import fit_predict

    out = np.empty((y.shape[0], n_classes))
    rng = np.random.default_rng([int(seed), 0x5E7])
    for fold in range(int(fold_of.max()) + 1):  # one ensemble per fold
        train, test = fold_of != fold, fold_of == fold
        targets = synthetic_targets(features[train], y[train], n_classes, model=model, seed=seed, heads=heads,
                                    rng=rng, on_fit=on_fit)
        out[test] = fit_predict(features[train], y[train], features[test], n_classes, 0.0, kind=model, seed=seed,
                                targets=targets)
        if on_fit is not None:
            on_fit()
    return out


def details(model: str, features: str, heads: int = HEADS) -> dict[str, object]:
    """What the JSON records about the synthetic baseline."""
    return {"smoothing": None, "model": model, "features": features, "heads": heads,
            "targets": (f"the out-of-bag mean of {heads} reference models fitted on bootstrap resamples of each fold's "
                        "training rows (hard labels); no votes")}
