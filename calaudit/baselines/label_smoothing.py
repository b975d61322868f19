"""The label-smoothing retraining baseline (Szegedy et al. 2016; Mueller, Kornblith &
Hinton 2019, "When does label smoothing help?").

A reference model (multinomial logistic regression by default, an MLP as an option)
is trained on the same features twice: with hard labels, and with labels smoothed to
``(1 - eps) + eps/K`` for the true class and ``eps/K`` for the others, minimising the
smoothed cross-entropy ``sum_i sum_k q_ik (-log p_k(x_i))`` plus an L2 penalty.

The logistic model is trained on the targets directly (:mod:`.softmax_regression`:
scikit-learn's ``LogisticRegression(C=1)`` objective, gradient ``X^T (P - Q)``), one
fold's amounts in turn, each fit starting from the previous one's solution
(:func:`fit_predict_path`). scikit-learn's estimators take hard labels only, so the
MLP is trained by expanding each row into K rows, one per class, weighted by its
target (:func:`expand_targets`):

    sum_i sum_k q_ik (-log p_k(x_i))  ==  sum over expanded rows of  w * (-log p_label(x))

with ``w = q_ik``. tests/test_label_smoothing.py checks the identity, and the
logistic fit against scikit-learn on the expanded rows and a direct minimisation.

The same fits train on any target distribution: the ``soft-labels`` baseline uses
the human distribution ``H`` (annotator votes) as ``q``
(tests/test_soft_label_baselines.py checks it against a direct minimisation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

DEFAULT_SMOOTHING = 0.1
MODELS = ("logistic", "mlp")
#: The logistic reference model: scikit-learn's ``LogisticRegression(C=1)``, solved to a
#: tight tolerance (the default, 1e-4, stops L-BFGS about 1e-3 short of the minimum).
LOGISTIC_C, LOGISTIC_TOL, LOGISTIC_MAX_ITER = 1.0, 1e-8, 5000
#: Below this many multiply-adds per product the logistic fit runs on one BLAS thread.
SINGLE_THREAD_WORK = 1 << 24


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
    """A fresh, standardised scikit-learn reference model: the MLP, or the
    ``LogisticRegression`` whose objective :mod:`.softmax_regression` minimises
    without expanding rows (benchmarks/bench_baselines.py ``--before`` times the two)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        model = LogisticRegression(max_iter=LOGISTIC_MAX_ITER, C=LOGISTIC_C, tol=LOGISTIC_TOL)
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
    if kind == "logistic":
        q = smoothed_targets(train_y, n_classes, smoothing) if targets is None else targets
        return _logistic_path(train_x, test_x, [q])[0]
    return _sklearn_fit_predict(train_x, train_y, test_x, n_classes, smoothing, kind=kind, seed=seed,
                                targets=targets)


def fit_predict_path(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, n_classes: int, amounts: Sequence[float], *,
    kind: str = "logistic", seed: int = 0, targets: np.ndarray | None = None,
    on_fit: Callable[[], None] | None = None,
) -> list[np.ndarray]:
    """One fold's held-out probabilities at each smoothing amount of ``amounts``, then,
    when ``targets`` is given, trained on those distributions (one more array);
    ``on_fit`` is called after each fit.

    The logistic model is standardised once and each fit starts from the previous
    one's solution: the fits of one fold share its training rows, so a warm start
    never carries a held-out row into a fit (it changes where the optimiser begins,
    not the optimum it stops at). The MLP is trained from scratch each time.
    """
    target_sets = [smoothed_targets(train_y, n_classes, eps) for eps in amounts]
    if targets is not None:
        target_sets.append(targets)
    if kind == "logistic":
        return _logistic_path(train_x, test_x, target_sets, on_fit)
    out = []
    for eps in amounts:
        out.append(_sklearn_fit_predict(train_x, train_y, test_x, n_classes, eps, kind=kind, seed=seed))
        if on_fit is not None:
            on_fit()
    if targets is not None:
        out.append(_sklearn_fit_predict(train_x, train_y, test_x, n_classes, 0.0, kind=kind, seed=seed,
                                        targets=targets))
        if on_fit is not None:
            on_fit()
    return out


def _logistic_path(
    train_x: np.ndarray, test_x: np.ndarray, target_sets: Sequence[np.ndarray],
    on_fit: Callable[[], None] | None = None,
) -> list[np.ndarray]:
    """The logistic reference model trained on each target matrix in turn
    (:func:`fit_predict_path`). Every row with the same target (a fold of one class)
    is fitted exactly by the constant model that predicts it: the gradient is 0 there."""
    from sklearn.preprocessing import StandardScaler

    from . import softmax_regression

    scaler = StandardScaler().fit(np.asarray(train_x, dtype=np.float64))
    train_s, test_s = scaler.transform(train_x), scaler.transform(np.asarray(test_x, dtype=np.float64))
    out: list[np.ndarray] = []
    previous = None
    n_classes = max(np.shape(q)[1] for q in target_sets)
    with blas_threads(train_s.shape[0] * train_s.shape[1] * n_classes):
        for q in target_sets:
            q = np.asarray(q, dtype=np.float64)
            if np.all(q == q[:1]):
                out.append(np.repeat(q[:1] / q[0].sum(), test_s.shape[0], axis=0))
            else:
                previous = softmax_regression.fit(train_s, q, C=LOGISTIC_C, tol=LOGISTIC_TOL,
                                                  max_iter=LOGISTIC_MAX_ITER, start=previous)
                out.append(previous.predict_proba(test_s))
            if on_fit is not None:
                on_fit()
    return out


def blas_threads(work: int):
    """One BLAS thread while fitting when a product of the fit (``work`` = rows x
    features x classes multiply-adds) is small: L-BFGS takes some hundred dependent
    steps of a few milliseconds each, and threads handed so little work spin rather
    than help (three times slower on a busy two-core machine); larger products keep
    the machine's threads."""
    import contextlib

    if work > SINGLE_THREAD_WORK:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _sklearn_fit_predict(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, n_classes: int, smoothing: float, *,
    kind: str, seed: int, targets: np.ndarray | None = None,
) -> np.ndarray:
    """A scikit-learn reference model (the MLP) trained on the expanded rows."""
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
