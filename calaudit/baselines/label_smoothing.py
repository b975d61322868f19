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


def expand(x: np.ndarray, y: np.ndarray, n_classes: int, smoothing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows repeated K times with labels 0..K-1 and weights ``q_ik`` (hard labels: no expansion)."""
    if smoothing == 0.0:
        return x, y, np.ones(y.shape[0])
    q = smoothed_targets(y, n_classes, smoothing)
    rows = np.repeat(np.arange(x.shape[0]), n_classes)
    labels = np.tile(np.arange(n_classes), x.shape[0])
    return x[rows], labels, q.ravel()


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
    kind: str = "logistic", seed: int = 0,
) -> np.ndarray:
    """Train on one fold's training rows and return held-out probabilities over all K classes."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    present = np.unique(train_y)
    if present.size < 2:
        # A training fold that holds one class: the only model it supports predicts that
        # class, with the smoothed target's confidence.
        proba = np.full((test_x.shape[0], n_classes), smoothing / n_classes)
        proba[:, present[0]] += 1.0 - smoothing
        return proba
    x, labels, weights = expand(train_x, train_y, n_classes, smoothing)
    model = make_model(kind, seed)
    last = model.steps[-1][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, labels, **{f"{last}__sample_weight": weights})
    proba = np.zeros((test_x.shape[0], n_classes))
    proba[:, model.classes_] = model.predict_proba(test_x)  # classes absent from a fold get 0
    total = proba.sum(axis=1, keepdims=True)
    return proba / np.where(total > 0, total, 1.0)
