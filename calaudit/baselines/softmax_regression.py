"""Multinomial logistic regression trained on target distributions directly:
scikit-learn's objective, without expanding each row into K weighted rows.

scikit-learn's ``LogisticRegression(C=C)`` (solver ``lbfgs``) minimises over the
coefficients ``W`` and the unpenalised intercepts ``b``

    (1 / S) sum_rows w (-log p_label(x))  +  ||W||^2 / (2 C S),      S = sum_rows w

(``sklearn/linear_model/_logistic.py``: ``l2_reg_strength = 1 / (C * sw_sum)`` on the
weighted mean loss), with one coefficient column per class when more than two classes
have rows, and one column when two do (the binomial loss: the first class's score is
0). Written as K rows weighted by a target distribution ``q_ik``, the same objective
is

    (1 / S) sum_i sum_k q_ik (-log p_k(x_i))  +  ||W||^2 / (2 C S),   S = sum_ik q_ik

which :func:`fit` minimises on the N rows themselves: the scores ``X W + b``, a stable
log-softmax (the row maximum subtracted before ``exp``), and the gradient
``X^T (P - Q) / S + W / (C S)`` (``P`` scaled by each row's target mass, which is 1
for a distribution), ``(P - Q)`` summed over rows for ``b``. That is K times fewer
rows than the expansion and no copy of ``X`` per class. The minimiser is
``scipy.optimize.minimize(method="L-BFGS-B")`` with scikit-learn's own stopping rule
(``gtol = tol`` on the largest gradient component, ``ftol`` of 64 machine epsilons,
50 line-search steps), so both stop at the same optimum to that tolerance
(tests/test_label_smoothing.py compares them). A class with no target mass gets no
column and probability 0, as in scikit-learn, which sees no row of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SoftmaxFit:
    """A fitted model: ``classes`` (indices out of ``n_classes``) with a column each
    (``binary``: one column, the second class's score against the first's 0),
    ``coef`` (features x columns), ``intercept``, and the optimiser's iterations."""

    classes: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    binary: bool
    n_classes: int
    n_iter: int

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Each row's score for each class of ``classes`` (before the softmax)."""
        s = x @ self.coef + self.intercept
        return np.hstack([np.zeros((s.shape[0], 1)), s]) if self.binary else s

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities over all ``n_classes`` (0 for a class without a column)."""
        s = self.scores(np.asarray(x, dtype=np.float64))
        s -= s.max(axis=1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=1, keepdims=True)
        proba = np.zeros((s.shape[0], self.n_classes))
        proba[:, self.classes] = s
        return proba


def fit(
    x: np.ndarray, targets: np.ndarray, *, C: float = 1.0, tol: float = 1e-8, max_iter: int = 5000,
    start: SoftmaxFit | None = None,
) -> SoftmaxFit:
    """Minimise the soft cross-entropy of ``targets`` (N x K, non-negative) plus
    scikit-learn's L2 penalty over ``x`` (N x d; standardise it first, as scikit-learn
    would be given standardised rows). ``start`` (a fit on the same rows with the same
    classes, e.g. at the previous smoothing amount) is where the optimiser begins;
    otherwise at 0, as scikit-learn does. Needs at least two classes with target mass."""
    from scipy.optimize import minimize

    x = np.ascontiguousarray(x, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    classes = np.flatnonzero(targets.sum(axis=0) > 0)
    if classes.size < 2:
        raise ValueError("a softmax fit needs target mass on at least two classes")
    q = np.ascontiguousarray(targets[:, classes])
    binary = classes.size == 2
    n_rows, d = x.shape
    columns = 1 if binary else classes.size
    mass = q.sum(axis=1, keepdims=True)
    total = float(mass.sum())
    scale, penalty = 1.0 / total, 1.0 / (C * total)
    q_free = q[:, 1:] if binary else q  # the targets of the columns with parameters

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * columns].reshape(d, columns), theta[d * columns:]
        free = x @ w
        free += b
        s = np.hstack([np.zeros((n_rows, 1)), free]) if binary else free
        s -= s.max(axis=1, keepdims=True)
        e = np.exp(s)
        z = e.sum(axis=1, keepdims=True)
        # -sum_k q_ik log p_ik = mass_i log z_i - sum_k q_ik s_ik (the shift cancels).
        loss = float(np.vdot(mass, np.log(z)) - np.vdot(q, s)) * scale + 0.5 * penalty * float(np.vdot(w, w))
        e *= mass / z  # P, each row scaled by its target mass
        residual = (e[:, 1:] if binary else e) - q_free
        grad_w = x.T @ residual
        grad_w *= scale
        grad_w += penalty * w
        return loss, np.concatenate([grad_w.ravel(), residual.sum(axis=0) * scale])

    theta0 = np.zeros(d * columns + columns)
    if start is not None and start.binary == binary and np.array_equal(start.classes, classes) \
            and start.coef.shape == (d, columns):
        theta0 = np.concatenate([start.coef.ravel(), start.intercept])
    found = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                     options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps})
    theta = found.x
    return SoftmaxFit(classes, theta[: d * columns].reshape(d, columns).copy(), theta[d * columns:].copy(), binary,
                      targets.shape[1], int(found.nit))
