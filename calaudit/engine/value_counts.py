"""Mergeable counts of distinct values (vote totals, entropies): exact quantiles of a
stream while the distinct values are few (:class:`ValueCounts`)."""

from __future__ import annotations

import numpy as np


class ValueCounts:
    """How many rows hold each distinct value (vote totals, entropies), merged by
    addition: exact quantiles while at most ``cap`` distinct values are seen; beyond
    that, values are rounded to fewer significant digits (``digits``, from 15 down)
    until they fit, and the quantiles are as close as that rounding."""

    CAP = 1 << 16

    def __init__(self, cap: int = CAP) -> None:
        self.cap = cap
        self.values = np.empty(0)
        self.counts = np.empty(0, dtype=np.int64)
        self.digits: int | None = None  # None: exact
        self.low = np.inf
        self.high = -np.inf
        self._pending: list[np.ndarray] = []
        self._pending_size = 0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            return
        self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))
        self._pending.append(values)
        self._pending_size += values.size
        if self._pending_size >= self.cap:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        found, counts = np.unique(rounded(np.concatenate(self._pending), self.digits), return_counts=True)
        self._pending, self._pending_size = [], 0
        self._combine(found, counts)

    def _combine(self, values: np.ndarray, counts: np.ndarray) -> None:
        values = np.concatenate([self.values, values])
        counts = np.concatenate([self.counts, counts])
        while True:
            unique, inverse = np.unique(rounded(values, self.digits), return_inverse=True)
            if unique.size <= self.cap:
                break
            self.digits = 15 if self.digits is None else self.digits - 1
        self.values = unique
        self.counts = np.bincount(inverse.ravel(), weights=counts, minlength=unique.size).astype(np.int64)

    def merge(self, other: ValueCounts) -> ValueCounts:
        merged = ValueCounts(self.cap)
        for source in (self, other):
            source._flush()
        merged.digits = _coarser(self.digits, other.digits)
        merged.low, merged.high = min(self.low, other.low), max(self.high, other.high)
        merged._combine(np.concatenate([self.values, other.values]), np.concatenate([self.counts, other.counts]))
        return merged

    @property
    def exact(self) -> bool:
        self._flush()
        return self.digits is None

    @property
    def total(self) -> int:
        self._flush()
        return int(self.counts.sum())

    def median(self) -> float:
        """``numpy.median`` of the values counted (the mean of the two middle ones for an
        even count)."""
        self._flush()
        n = int(self.counts.sum())
        if n == 0:
            return float("nan")
        ends = np.cumsum(self.counts)
        below, above = self.values[np.searchsorted(ends, [(n - 1) // 2, n // 2], side="right")]
        return float(np.mean([below, above]))


def _coarser(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def rounded(values: np.ndarray, digits: int | None) -> np.ndarray:
    """``values`` to ``digits`` significant digits (``None``: as they are)."""
    if digits is None:
        return values
    magnitude = np.floor(np.log10(np.where(values != 0, np.abs(values), 1.0)))
    scale = 10.0 ** (digits - 1 - magnitude)
    return np.round(values * scale) / scale
