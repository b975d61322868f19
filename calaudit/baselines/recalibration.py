"""Post-hoc recalibration of the vendor's scores, fitted on training folds only.

* temperature scaling (Guo et al. 2017): ``softmax(z / T)``, one parameter, fitted by
  minimising the negative log-likelihood; ``z`` are the model's logits when it gives
  them, else its log-probabilities. It never changes which class is predicted.
  Fitted on human soft labels ``H`` instead (``temperature-soft``), ``T`` minimises
  the cross-entropy with the human distribution,
  ``mean_i -sum_k H_ik log softmax(z_i / T)_k`` (the hard fit is the case H = one-hot).
* vector scaling (Guo et al. 2017): ``softmax(w * z + b)`` with one weight and bias
  per class, fitted by L-BFGS on the NLL.
* isotonic regression (Zadrozny & Elkan 2002): one monotone map per class
  (one-vs-rest, scikit-learn's ``IsotonicRegression``), rows renormalised.
* histogram binning (Zadrozny & Elkan 2001): per class, each equal-width bin of
  ``P[:, k]`` maps to the frequency of class k among training rows in that bin; rows
  renormalised.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPS = 1e-12
HISTOGRAM_BINS = 15


def log_scores(proba: np.ndarray, logits: np.ndarray | None) -> np.ndarray:
    """The scores temperature and vector scaling act on: logits, else log-probabilities."""
    return logits if logits is not None else np.log(np.maximum(proba, EPS))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of scores (each row shifted by its largest first)."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _nll(z: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    terms = log_norm - z[np.arange(z.shape[0]), y]
    return float(np.mean(terms) if weights is None else np.average(terms, weights=weights))


def fit_temperature(z: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """``T`` minimising the NLL of ``softmax(z / T)``, searched on ``log T`` in [-5, 5];
    ``weights`` (one per row) make it the weighted mean NLL (a streamed baseline's
    stratified sample: :mod:`calaudit.engine.baseline_maps`)."""
    from scipy.optimize import minimize_scalar

    # softmax(z / T) = softmax((z - max z) / T) for T > 0, and the shifted rows' largest
    # score is 0 at any T: shift once, not at every step of the search.
    shifted = z - z.max(axis=1, keepdims=True)
    true = shifted[np.arange(shifted.shape[0]), y]

    def nll(log_t: float) -> float:
        scale = np.exp(-log_t)
        terms = np.log(np.exp(shifted * scale).sum(axis=1)) - true * scale
        return float(np.mean(terms) if weights is None else np.average(terms, weights=weights))

    found = minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))


def _soft_nll(z: np.ndarray, targets: np.ndarray) -> float:
    """``mean_i -sum_k H_ik log softmax(z_i)_k`` (rows of ``targets`` sum to 1)."""
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - np.einsum("ij,ij->i", targets, z)))


def fit_temperature_soft(z: np.ndarray, targets: np.ndarray) -> float:
    """``T`` minimising the cross-entropy of ``softmax(z / T)`` with the target
    distributions ``targets`` (the human votes), searched on ``log T`` in [-5, 5] like
    :func:`fit_temperature`."""
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(lambda log_t: _soft_nll(z / np.exp(log_t), targets), bounds=(-5.0, 5.0),
                            method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))


def temperature_soft(train_z: np.ndarray, train_targets: np.ndarray, test_z: np.ndarray) -> tuple[np.ndarray, dict]:
    """Temperature scaling fitted on one fold's human distributions, applied to the held-out scores."""
    t = fit_temperature_soft(train_z, train_targets)
    return softmax(test_z / t), {"temperature": t}


def fit_vector_scaling(z: np.ndarray, y: np.ndarray, *, l2: float = 1e-4,
                       weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-class weight ``w`` and bias ``b`` of ``softmax(w * z + b)`` (small L2 pull to w=1, b=0);
    ``weights`` (one per row) weight the mean NLL."""
    from scipy.optimize import minimize

    n, k = z.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0
    share = None if weights is None else (np.asarray(weights, dtype=np.float64) / np.sum(weights))[:, None]

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:k], params[k:]
        scores = z * w + b
        p = softmax(scores)
        loss = _nll(scores, y, weights) + l2 * (np.sum((w - 1.0) ** 2) + np.sum(b**2))
        residual = (p - onehot) / n if share is None else (p - onehot) * share
        grad_w = np.sum(residual * z, axis=0) + 2 * l2 * (w - 1.0)
        grad_b = np.sum(residual, axis=0) + 2 * l2 * b
        return loss, np.concatenate([grad_w, grad_b])

    start = np.concatenate([np.ones(k), np.zeros(k)])
    found = minimize(objective, start, jac=True, method="L-BFGS-B")
    return found.x[:k], found.x[k:]


def _renormalise(p: np.ndarray) -> np.ndarray:
    total = p.sum(axis=1, keepdims=True)
    uniform = np.full_like(p, 1.0 / p.shape[1])
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), uniform)


def fit_isotonic(train_p: np.ndarray, train_y: np.ndarray, weights: np.ndarray | None = None) -> list:
    """One fitted ``IsotonicRegression`` per class (one-vs-rest); ``weights`` per row."""
    from sklearn.isotonic import IsotonicRegression

    models = []
    for k in range(train_p.shape[1]):  # one model per class, not per row
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        model.fit(train_p[:, k], (train_y == k).astype(np.float64), sample_weight=weights)
        models.append(model)
    return models


def apply_isotonic(models: list, test_p: np.ndarray) -> np.ndarray:
    out = np.empty_like(test_p)
    for k, model in enumerate(models):
        out[:, k] = model.predict(test_p[:, k])
    return _renormalise(out)


def isotonic(train_p: np.ndarray, train_y: np.ndarray, test_p: np.ndarray) -> np.ndarray:
    return apply_isotonic(fit_isotonic(train_p, train_y), test_p)


def fit_histogram(train_p: np.ndarray, train_y: np.ndarray, n_bins: int = HISTOGRAM_BINS,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """``(K, n_bins)``: per class, each equal-width bin's frequency of the class among
    the training rows in it (``weights`` per row), NaN for an empty bin."""
    from ..stats.binning import equal_width_bin_ids

    n_classes = train_p.shape[1]
    table = np.empty((n_classes, n_bins))
    for k in range(n_classes):  # one table per class, not per row
        train_ids = equal_width_bin_ids(np.ascontiguousarray(train_p[:, k]), n_bins)
        hit = (train_y == k).astype(np.float64)
        if weights is None:
            count = np.bincount(train_ids, minlength=n_bins)
            hits = np.bincount(train_ids, weights=hit, minlength=n_bins)
        else:
            count = np.bincount(train_ids, weights=weights, minlength=n_bins)
            hits = np.bincount(train_ids, weights=hit * weights, minlength=n_bins)
        table[k] = np.where(count > 0, hits / np.where(count > 0, count, 1), np.nan)
    return table


def apply_histogram(table: np.ndarray, test_p: np.ndarray) -> np.ndarray:
    from ..stats.binning import equal_width_bin_ids

    out = np.empty_like(test_p)
    for k in range(table.shape[0]):
        # An empty training bin keeps the model's own value for that bin's rows.
        frequency = table[k][equal_width_bin_ids(np.ascontiguousarray(test_p[:, k]), table.shape[1])]
        out[:, k] = np.where(np.isnan(frequency), test_p[:, k], frequency)
    return _renormalise(out)


def histogram_binning(train_p: np.ndarray, train_y: np.ndarray, test_p: np.ndarray,
                      n_bins: int = HISTOGRAM_BINS) -> np.ndarray:
    return apply_histogram(fit_histogram(train_p, train_y, n_bins), test_p)


#: name -> (description, fit-and-apply on one fold). Each function takes the training
#: and held-out probabilities, log-scores and labels and returns held-out probabilities
#: plus the fitted parameters worth reporting.
Method = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, dict]]


def _temperature(train_p, train_z, train_y, test_p, test_z):
    t = fit_temperature(train_z, train_y)
    return softmax(test_z / t), {"temperature": t}


def _vector(train_p, train_z, train_y, test_p, test_z):
    w, b = fit_vector_scaling(train_z, train_y)
    return softmax(test_z * w + b), {}


def _isotonic(train_p, train_z, train_y, test_p, test_z):
    return isotonic(train_p, train_y, test_p), {}


def _histogram(train_p, train_z, train_y, test_p, test_z):
    return histogram_binning(train_p, train_y, test_p), {}


#: The temperature fitted on human soft labels (run by the ``soft-labels`` baseline; it
#: takes the human distributions, so it is not one of :data:`METHODS`).
TEMPERATURE_SOFT = ("temperature-soft", "Temperature scaling fitted on the human votes")
#: Its name by the kind of human labels it was fitted on (vote counts or soft labels).
TEMPERATURE_SOFT_NAMES = {"votes": TEMPERATURE_SOFT[1], "soft": "Temperature scaling fitted on the human soft labels"}

METHODS: dict[str, tuple[str, Method]] = {
    "temperature": ("Temperature scaling", _temperature),
    "vector": ("Vector scaling", _vector),
    "isotonic": ("Isotonic regression", _isotonic),
    "histogram": ("Histogram binning", _histogram),
}
