"""Calibration against the human distribution: the model's probabilities compared with
what people said (docs/metrics.md, section 13).

``P`` is the model's ``(N, K)`` probability matrix, ``H`` the human distribution of
the same rows (``H = votes / votes.sum(row)``, or the soft labels), ``eps`` =
:data:`calaudit.stats.metric_info.NLL_EPS` = 2.220446049250313e-16, logs are natural and
``0 log 0 = 0``. With ``entropy(p) = -sum_k p_k log p_k``:

* ``human_tvd`` = ``mean_i 1/2 sum_k |P_ik - H_ik|``: the total variation distance,
  Baan et al.'s DistCE;
* ``human_kl`` = ``mean_i sum_k H_ik (log H_ik - log max(P_ik, eps))``: the
  Kullback-Leibler divergence of the model from the people (terms with ``H_ik = 0``
  contribute 0; a row's sum is clipped at 0, which rounding can undershoot by a few
  units of 1e-16);
* ``human_cross_entropy`` = ``mean_i -sum_k H_ik log max(P_ik, eps)``: the log loss
  against the soft label, ``= human_kl + mean_i entropy(H_i)``;
* ``human_entropy_gap`` = ``mean_i (entropy(P_i) - entropy(H_i))``: above 0 the model
  is more uncertain than people, below 0 more certain (no ``eps`` in ``entropy(P)``:
  ``0 log 0 = 0`` exactly);
* ``human_entropy_gap_abs`` = ``mean_i |entropy(P_i) - entropy(H_i)|``: Baan et al.'s
  EntCE;
* ``human_plurality_agreement`` = the share of rows whose ``argmax_k P_ik`` (ties: the
  first index, as everywhere in calaudit) is the **unique** plurality class of ``H_i``,
  among the rows whose plurality is not tied (:func:`calaudit.predictions.human_labels.tied_mask`
  with ``tie_tolerance``: 0 for vote counts, :data:`~calaudit.predictions.human_labels.SOFT_TIE_TOLERANCE`
  for soft labels, the default); NaN when every row is tied.

Reference: Baan, Aziz, Plank & Fernandez (2022), "Stop Measuring Calibration When
Humans Disagree", EMNLP 2022 (DistCE = TVD, EntCE = the absolute entropy gap).

Every metric is a mean of a per-row term (agreement a ratio of two sums), so
:func:`row_terms` computes the terms once and the bootstrap of
:mod:`calaudit.human.intervals` resamples them.
"""

from __future__ import annotations

import numpy as np

from ..predictions.human_labels import SOFT_TIE_TOLERANCE, tied_mask
from ..stats.metric_info import NLL_EPS, MetricInfo

#: Largest ``-log max(p, eps)``: the ceiling of the cross-entropy and the KL divergence.
_LOG_FLOOR = float(-np.log(NLL_EPS))

HUMAN_METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo(
            "human_tvd", "Distance from the human distribution (TVD)", "lower",
            "how far the model's probabilities are from how people's answers split: 0 the same, 1 no overlap",
            "mean_i 1/2 sum_k |P[i,k] - H[i,k]| (Baan et al. 2022, DistCE)", 0.0, 1.0,
        ),
        MetricInfo(
            "human_kl", "KL divergence from the human distribution", "lower",
            "information lost when the model's probabilities stand in for how people's answers split",
            "mean_i sum_k H[i,k] (log H[i,k] - log max(P[i,k], eps)), 0 log 0 = 0, eps = 2.220446049250313e-16",
            0.0, _LOG_FLOOR,
        ),
        MetricInfo(
            "human_cross_entropy", "Cross-entropy against the human distribution", "lower",
            "log loss against people's answers rather than one label: human_kl plus the people's own uncertainty",
            "mean_i -sum_k H[i,k] log max(P[i,k], eps), eps = 2.220446049250313e-16", 0.0, _LOG_FLOOR,
        ),
        MetricInfo(
            "human_entropy_gap", "Entropy gap (model minus people)", "zero",
            "above 0 the model is more uncertain than people, below 0 more certain",
            "mean_i (entropy(P[i]) - entropy(H[i])), entropy(p) = -sum_k p_k log p_k, 0 log 0 = 0",
            -np.inf, np.inf,
        ),
        MetricInfo(
            "human_entropy_gap_abs", "Absolute entropy gap", "lower",
            "how far, item by item, the model's uncertainty is from people's, either way",
            "mean_i |entropy(P[i]) - entropy(H[i])| (Baan et al. 2022, EntCE)", 0.0, np.inf,
        ),
        MetricInfo(
            "human_plurality_agreement", "Agreement with the plurality vote", "higher",
            "share of items where the model's top answer is people's most common answer (tied votes left out)",
            "sum_i 1[argmax_k P[i,k] == plurality(H[i])] / #{i: plurality of H[i] not tied}", 0.0, 1.0,
        ),
    )
}

#: The metrics that are means of one per-row term, in :data:`HUMAN_METRICS` order.
MEAN_METRICS = ("human_tvd", "human_kl", "human_cross_entropy", "human_entropy_gap", "human_entropy_gap_abs")
#: Every per-row term :func:`row_terms` returns: the mean metrics' terms, then ``agree``
#: (1 where the model's top class is the row's unique plurality class) and ``counted``
#: (1 where the plurality is not tied).
TERM_NAMES = (*MEAN_METRICS, "agree", "counted")
#: Row-class cells processed at once: the block's temporaries stay in cache.
_BLOCK_CELLS = 1 << 16


def row_terms(proba: np.ndarray, distribution: np.ndarray, *,
              tie_tolerance: float = SOFT_TIE_TOLERANCE) -> dict[str, np.ndarray]:
    """The per-row terms of every human metric, each an ``(N,)`` float64 array.

    ``proba`` (P) and ``distribution`` (H) are ``(N, K)`` matrices in the same row and
    class order, rows summing to 1 (as :class:`calaudit.Predictions` and
    :class:`calaudit.predictions.human_labels.HumanLabels` guarantee). Keys: :data:`TERM_NAMES`.
    ``tie_tolerance`` decides which pluralities are tied (``HumanLabels.tie_tolerance``).
    Rows are processed in blocks, so no temporary is larger than a block.
    """
    p_all = np.asarray(proba, dtype=np.float64)
    h_all = np.asarray(distribution, dtype=np.float64)
    if p_all.ndim != 2 or p_all.shape != h_all.shape:
        raise ValueError(
            f"expected probabilities and human distribution of the same (N, K) shape, got {p_all.shape} "
            f"and {h_all.shape}"
        )
    n_rows, n_classes = p_all.shape
    out = {name: np.empty(n_rows) for name in TERM_NAMES}
    block = max(1, _BLOCK_CELLS // max(n_classes, 1))
    for start in range(0, n_rows, block):  # blocks of rows, each vectorised
        stop = min(start + block, n_rows)
        p, h = p_all[start:stop], h_all[start:stop]
        log_p = np.log(np.maximum(p, NLL_EPS))
        log_h = log_or_zero(h)  # 0 where H = 0, so H log H = 0 there
        out["human_tvd"][start:stop] = np.minimum(0.5 * np.abs(p - h).sum(axis=1), 1.0)
        out["human_kl"][start:stop] = np.maximum(np.einsum("ij,ij->i", h, log_h - log_p), 0.0)
        out["human_cross_entropy"][start:stop] = -np.einsum("ij,ij->i", h, log_p)
        gap = np.einsum("ij,ij->i", h, log_h) - np.einsum("ij,ij->i", p, log_or_zero(p))
        out["human_entropy_gap"][start:stop] = gap
        out["human_entropy_gap_abs"][start:stop] = np.abs(gap)
        counted = ~tied_mask(h, tie_tolerance)
        out["agree"][start:stop] = counted & (p.argmax(axis=1) == h.argmax(axis=1))
        out["counted"][start:stop] = counted
    return out


def metrics_from_terms(terms: dict[str, np.ndarray]) -> dict[str, float]:
    """The six human metrics from :func:`row_terms` (or any subset or resample of its
    rows): means of the five mean terms, agreement ``sum(agree) / sum(counted)`` (NaN
    when no row counts); every value NaN without rows."""
    n_rows = terms["counted"].shape[0]
    values = {name: float(terms[name].mean()) if n_rows else float("nan") for name in MEAN_METRICS}
    counted = float(terms["counted"].sum())
    values["human_plurality_agreement"] = float(terms["agree"].sum()) / counted if counted > 0 else float("nan")
    return values


def human_metrics(proba: np.ndarray, distribution: np.ndarray, *,
                  tie_tolerance: float = SOFT_TIE_TOLERANCE) -> dict[str, float]:
    """Every human metric of the model's probabilities against the human distribution
    (definitions: the module docstring), keyed like :data:`HUMAN_METRICS`."""
    return metrics_from_terms(row_terms(proba, distribution, tie_tolerance=tie_tolerance))


def log_or_zero(values: np.ndarray) -> np.ndarray:
    """``log(values)`` where positive, 0 elsewhere (so ``0 log 0`` comes out 0)."""
    return np.log(np.where(values > 0, values, 1.0))
