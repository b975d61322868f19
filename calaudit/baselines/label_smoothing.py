"""The label-smoothing retraining baseline (Szegedy et al. 2016; Mueller, Kornblith &
Hinton 2019, "When does label smoothing help?").

A reference model (multinomial logistic regression by default, an MLP as an option)
is trained on the same features twice: with hard labels, and with labels smoothed to
``(1 - eps) + eps/K`` for the true class and ``eps/K`` for the others. scikit-learn
estimators take hard labels only, so the smoothed cross-entropy is trained exactly by
expanding each row into K rows, one per class, weighted by its smoothed target:

    sum_i sum_k q_ik (-log p_k(x_i))  ==  sum over expanded rows of  w * (-log p_label(x))

with ``w = q_ik`` (tests/test_label_smoothing.py checks the identity and the fitted
coefficients against a direct minimisation of the smoothed loss).

The same expansion trains on any target distribution (:func:`expand_targets`): the
``soft-labels`` baseline uses the human distribution ``H`` (annotator votes) as
``q``, so it minimises ``sum_i sum_k H_ik (-log p_k(x_i))`` plus the same penalty
(tests/test_soft_label_baselines.py checks it against a direct minimisation).
"""

from __future__ import annotations

import numpy as np

DEFAULT_SMOOTHING = 0.1
MODELS = ("logistic", "mlp")


def smoothed_targets(y: np.ndarray, n_classes: int, smoothing: float) -> np.ndarray:
    """``q_ik = (1 - eps) 1[y_i = k] + eps / K``."""
    q = np.full((y.shape[0], n_classes), smoothing / n_classes)
    q[np.arange(y.shape[0]), y] += 1.0 - smoothing
    return q


def expand_targets(x: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows repeated K times with labels 0..K-1 and weights ``targets[i, k]``, in row
    order then class order; cells of weight 0 are left out (they add nothing to the
    loss, and a vote matrix is mostly zeros)."""
    n_rows, n_classes = targets.shape
    weights = targets.ravel()
    keep = weights > 0
    rows = np.repeat(np.arange(n_rows), n_classes)[keep]
    labels = np.tile(np.arange(n_classes), n_rows)[keep]
    return x[rows], labels, weights[keep]


def expand(x: np.ndarray, y: np.ndarray, n_classes: int, smoothing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows repeated K times with labels 0..K-1 and weights ``q_ik`` (hard labels: no expansion)."""
    if smoothing == 0.0:
        return x, y, np.ones(y.shape[0])
    return expand_targets(x, smoothed_targets(y, n_classes, smoothing))


def make_model(kind: str, seed: int):
    """A fresh, standardised reference model."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        # A tight tolerance: the default (1e-4) stops L-BFGS about 1e-3 short of the
        # smoothed-loss minimum; the tests compare with a direct minimisation.
        model = LogisticRegression(max_iter=5000, C=1.0, tol=1e-8)
    elif kind == "mlp":
        model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, early_stopping=False, random_state=seed)
    else:
        raise ValueError(f"unknown baseline model {kind!r}; expected one of {', '.join(MODELS)}")
    return make_pipeline(StandardScaler(), model)


def fit_predict(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, n_classes: int, smoothing: float, *,
    kind: str = "logistic", seed: int = 0, targets: np.ndarray | None = None,
) -> np.ndarray:
    """Train on one fold's training rows and return held-out probabilities over all K classes.

    The targets are the labels ``train_y`` smoothed by ``smoothing``, or, when
    ``targets`` (N_train, K) is given, those distributions (``smoothing`` is then
    ignored): the human soft labels of the ``soft-labels`` baseline.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    if targets is None:
        present = np.unique(train_y)
        if present.size < 2:
            # A training fold that holds one class: the only model it supports predicts that
            # class, with the smoothed target's confidence.
            proba = np.full((test_x.shape[0], n_classes), smoothing / n_classes)
            proba[:, present[0]] += 1.0 - smoothing
            return proba
        x, labels, weights = expand(train_x, train_y, n_classes, smoothing)
    else:
        x, labels, weights = expand_targets(train_x, targets)
        if np.unique(labels).size < 2:
            # Every target on one class: the constant model that minimises the loss
            # predicts the mean target (that class, with certainty).
            return np.repeat(targets.mean(axis=0, keepdims=True), test_x.shape[0], axis=0)
    model = make_model(kind, seed)
    last = model.steps[-1][0]
    fit_weights = {f"{last}__sample_weight": weights}
    if targets is not None:
        # Cells of weight 0 were left out, so rows with split targets appear more often
        # than the others: the scaler weighs each cell by its target, which gives every
        # training row weight 1 in total (the standardisation of the training rows).
        fit_weights[f"{model.steps[0][0]}__sample_weight"] = weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, labels, **fit_weights)
    proba = np.zeros((test_x.shape[0], n_classes))
    proba[:, model.classes_] = model.predict_proba(test_x)  # classes absent from a fold get 0
    total = proba.sum(axis=1, keepdims=True)
    return proba / np.where(total > 0, total, 1.0)
