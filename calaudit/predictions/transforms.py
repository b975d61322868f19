"""Turning raw scores into probabilities: softmax and sigmoid, computed stably.

calaudit applies these only when the user (``--logits``) or the model signature says
the scores are logits; it never guesses (docs/metrics.md, "Input validity").
"""

from __future__ import annotations

import numpy as np

#: Names recorded in results for the transform applied to the raw scores.
NO_TRANSFORM = "none"
SOFTMAX = "softmax"
SIGMOID = "sigmoid"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``exp(z - max z) / sum exp(z - max z)`` in float64."""
    z = np.array(logits, dtype=np.float64, copy=True)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))``, computed from ``exp(-|z|)`` so it neither overflows nor
    loses the relative precision of small probabilities."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
