"""A fused, compiled pass that builds a batch's :class:`StreamStatistics`.

:meth:`StreamStatistics.from_batch` is the reference: a dozen vectorised numpy passes
over the batch (argmax, gathers, bin ids, one ``bincount`` per statistic). Streaming
makes that per-row cost the bottleneck, so :class:`Accumulator` computes the same sums
in one loop over the rows compiled by `numba <https://numba.pydata.org>`_, a
dependency of the plain install wherever numba publishes wheels (``pyproject.toml``):
each row's probabilities are read once, while they are in cache. The tests check it
against the numpy reference (counts equal, sums to 1e-12 relative).

Which runs (``execution.kernel`` in the JSON says): ``CALAUDIT_KERNEL=numpy`` forces
the reference, ``numba`` the compiled kernel; by default (``auto``) the compiled
kernel runs when numba imports and the stream is expected to hold at least
:data:`COMPILED_MIN_ROWS` rows (or its size is unknown). Making the compiled code
ready costs a process 0.5-1 s (a few seconds the first time on a machine, when numba
compiles and caches it), more than it saves on fewer rows, so smaller streamed audits
never import numba.

Bin ids follow :class:`calaudit.stats.binning.EqualWidthBinner` exactly (a candidate from
``ceil(v * M * (1 + 8 eps))``, corrected by one comparison with the float64 edge),
the argmax takes the first of tied maxima as ``np.argmax`` does, and the
log-likelihood clips at :data:`calaudit.stats.metric_info.NLL_EPS`. Only the order in which
floats are added differs from the reference.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Any

import numpy as np

from ..stats.estimators import LOGIT_EPS
from ..stats.metric_info import NLL_EPS

#: ``CALAUDIT_KERNEL``: ``auto`` (numba when it imports, for streams of
#: :data:`COMPILED_MIN_ROWS` rows or more), ``numba`` (required, any size), ``numpy``.
KERNEL_VARIABLE = "CALAUDIT_KERNEL"
#: Under ``auto``, a stream expected to hold fewer rows uses the numpy reference:
#: making the compiled kernels ready (importing numba, loading them from its cache)
#: costs a fresh process 0.5-1 s, which numba wins back at about 0.2 microseconds a row
#: of 10 classes: even near 4 million rows (measured: docs/streaming.md). Tools that
#: accumulate in memory can use the same rule: ``kernel_name(n_rows) == "numba"``.
COMPILED_MIN_ROWS = 4_000_000


def available() -> bool:
    """Whether the compiled kernel can run here (numba imports). Imports numba."""
    return _compiled() is not None


def kernel_name(rows: int | None = None) -> str:
    """The kernel for a stream of ``rows`` rows (``None``: unknown): ``numba`` or
    ``numpy``. Under ``auto`` numba is not imported for fewer than
    :data:`COMPILED_MIN_ROWS` rows."""
    choice = os.environ.get(KERNEL_VARIABLE, "auto").strip().lower()
    if choice == "numpy":
        return "numpy"
    if choice == "numba":
        if not available():
            from ..errors import UsageError

            raise UsageError(f"{KERNEL_VARIABLE}=numba, but numba cannot be imported here ({_numba_error}); "
                             f"expected numba installed (pip install numba), or {KERNEL_VARIABLE}=auto")
        return "numba"
    if rows is not None and rows < COMPILED_MIN_ROWS:
        return "numpy"
    return "numba" if available() else "numpy"


class Accumulator:
    """Sums batches into one :class:`StreamStatistics`.

    With the compiled kernel the batches are added straight into the running output
    arrays (no copy per batch); with the numpy reference each batch's statistics are
    merged into the running total. ``rows``: the rows the stream is expected to hold,
    if known (:func:`kernel_name`). ``routing``: a
    :class:`~calaudit.engine.routing_bins.RoutingHistogram` that every batch is added
    to as well: by the compiled kernel in its own row loop (the rows' top labels and
    confidences are computed once), else by :meth:`RoutingHistogram.add`. Read it
    after :meth:`result` (or :meth:`close`): the helper thread writes it until then.
    """

    def __init__(self, *, n_bins: int, fine_bins: int, rows: int | None = None, routing: Any = None) -> None:
        from ..stats.limits import MAX_BINS
        from .statistics import MAX_FINE_BINS, check_bins

        self.n_bins = check_bins("n_bins", n_bins, MAX_BINS)
        self.fine_bins = check_bins("fine_bins", fine_bins, MAX_FINE_BINS)
        self.kernel = kernel_name(rows)
        self.routing = routing
        self.n_rows = 0
        self._outputs: _Outputs | None = None
        self._merged: Any = None  # the numpy reference's running StreamStatistics
        self._pool: Any = None
        self._pending: Any = None

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # re-raises what the pass raised

    def close(self) -> None:
        """Wait for the pass in flight and stop the helper thread."""
        try:
            self._wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def add(self, y: np.ndarray, proba: np.ndarray) -> None:
        from .statistics import StreamStatistics, check_batch

        y, proba = check_batch(y, proba)
        if self.kernel == "numba":
            if self._outputs is None:
                self._outputs = _Outputs(self.n_bins, self.fine_bins, proba.shape[1])
            elif self._outputs.class_predicted.shape[0] != proba.shape[1]:
                raise ValueError(f"a batch of {proba.shape[1]} classes after batches of "
                                 f"{self._outputs.class_predicted.shape[0]}")
            if proba.shape[0]:
                # The compiled pass releases the GIL: it runs on a helper thread while
                # the caller decodes and validates the next batch. One batch at a time
                # is in flight (memory: two batches), and the passes keep their order.
                self._wait()
                if self._pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="calaudit-kernel")
                self._pending = self._pool.submit(_run, self._outputs, y, proba, self.routing)
            self.n_rows += int(proba.shape[0])
            return
        part = StreamStatistics.from_batch(y, proba, n_bins=self.n_bins, fine_bins=self.fine_bins)
        self._merged = part if self._merged is None else StreamStatistics.merge_all((self._merged, part))
        if self.routing is not None:
            self.routing.add(y, proba)

    def result(self) -> Any:
        """The merged statistics, or ``None`` before the first batch."""
        from .statistics import StreamStatistics

        self.close()
        if self._outputs is not None:
            return StreamStatistics(n_rows=self.n_rows, **self._outputs.fields())
        return self._merged


def _run(outputs: _Outputs, y: np.ndarray, proba: np.ndarray, routing: Any = None) -> None:
    from .statistics import REPORT_BANDS

    n_bins, fine_bins = outputs.top_count.shape[0], outputs.fine_count.shape[0]
    route = _no_routing() if routing is None else routing.kernel_arrays()
    _compiled()(np.ascontiguousarray(proba, dtype=np.float64), np.ascontiguousarray(y, dtype=np.int64),
                _edge_below(n_bins), _edge_below(REPORT_BANDS), _edge_below(fine_bins), NLL_EPS, LOGIT_EPS,
                *outputs.arrays, *route)


@lru_cache(maxsize=1)
def _no_routing() -> tuple[np.ndarray, ...]:
    """The kernel's routing arguments when no histogram rides along: no bins (the
    edges read-only, as :func:`calaudit.engine.routing_bins.routing_edges` is, so numba
    compiles one signature)."""
    edges, starts, tail = np.zeros(1), np.zeros(2, dtype=np.int64), np.zeros((1, 2), dtype=np.int64)
    edges.flags.writeable = starts.flags.writeable = tail.flags.writeable = False
    i8, f8 = np.zeros(0, dtype=np.int64), np.zeros(0)
    return edges, starts, tail, i8, i8.copy(), f8, f8.copy()


def fused_statistics(y: np.ndarray, proba: np.ndarray, *, n_bins: int, fine_bins: int) -> Any:
    """:meth:`StreamStatistics.from_batch` computed by the compiled kernel."""
    from ..stats.limits import MAX_BINS
    from .statistics import MAX_FINE_BINS, StreamStatistics, check_batch, check_bins

    n_bins = check_bins("n_bins", n_bins, MAX_BINS)
    fine_bins = check_bins("fine_bins", fine_bins, MAX_FINE_BINS)
    y, proba = check_batch(y, proba)
    n_rows, n_classes = proba.shape
    out = _Outputs(n_bins, fine_bins, n_classes)
    _run(out, y, proba)
    return StreamStatistics(n_rows=int(n_rows), **out.fields())


class _Outputs:
    """The kernel's output arrays, zeroed, in the order it takes them."""

    def __init__(self, n_bins: int, fine_bins: int, n_classes: int) -> None:
        from .statistics import REPORT_BANDS

        i8, f8 = np.int64, np.float64
        self.top_count = np.zeros(n_bins, i8)
        self.top_correct = np.zeros(n_bins, i8)
        self.top_sum_confidence = np.zeros(n_bins, f8)
        self.top_sum_variance = np.zeros(n_bins, f8)
        self.top_moments = np.zeros((n_bins, 2, 6), f8)
        self.band_count = np.zeros(REPORT_BANDS, i8)
        self.band_correct = np.zeros(REPORT_BANDS, i8)
        self.band_sum_confidence = np.zeros(REPORT_BANDS, f8)
        self.class_count = np.zeros((n_classes, n_bins), i8)
        self.class_outcome = np.zeros((n_classes, n_bins), i8)
        self.class_sum_probability = np.zeros((n_classes, n_bins), f8)
        self.class_moments = np.zeros((n_classes, n_bins, 2, 2), f8)
        self.class_predicted = np.zeros(n_classes, i8)
        self.positive_moments = np.zeros((n_bins, 2, 2), f8)
        self.fine_count = np.zeros(fine_bins, i8)
        self.fine_correct = np.zeros(fine_bins, i8)
        self.fine_sum_confidence = np.zeros(fine_bins, f8)
        self.fine_moments = np.zeros((fine_bins, 2, 3), f8)
        # sum P^2, sum P_y, sum NLL, K = 2: SSE of P[:,1], Spiegelhalter's two sums.
        self.scalars = np.zeros(6, f8)
        # Scratch: rows per (class, bin, outcome) of the call, folded into the counts at its end.
        self.class_split_count = np.zeros((n_classes, n_bins, 2), i8)
        self.arrays = (self.top_count, self.top_correct, self.top_sum_confidence, self.top_sum_variance,
                       self.top_moments, self.band_count, self.band_correct, self.band_sum_confidence,
                       self.class_count, self.class_outcome, self.class_sum_probability, self.class_moments,
                       self.class_predicted, self.positive_moments, self.fine_count, self.fine_correct,
                       self.fine_sum_confidence, self.fine_moments, self.scalars, self.class_split_count)

    def fields(self) -> dict[str, Any]:
        from dataclasses import fields

        from .statistics import StreamStatistics

        names = {f.name for f in fields(StreamStatistics)}
        values = {name: value for name, value in vars(self).items() if name in names}
        scalars = self.scalars
        values.update(sum_squared_probability=float(scalars[0]), sum_true_probability=float(scalars[1]),
                      sum_nll=float(scalars[2]), positive_sum_squared_error=float(scalars[3]),
                      spiegelhalter_sum_deviation=float(scalars[4]), spiegelhalter_sum_spread=float(scalars[5]))
        return values


@lru_cache(maxsize=None)
def _edge_below(n_bins: int) -> np.ndarray:
    """``edge_below[c]``: the lower edge of 1-based bin ``c`` (as EqualWidthBinner)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.concatenate(([-np.inf, -np.inf], edges[1:-1]))


#: Why numba did not import (for the message of ``CALAUDIT_KERNEL=numba``).
_numba_error = "not tried"


@lru_cache(maxsize=1)
def _compiled() -> Any:
    """The compiled kernel, or ``None`` when numba does not import."""
    global _bin_jit, _numba_error
    try:
        import numba
    except Exception as exc:  # not installed, or a numba that refuses this numpy (ImportError), a broken llvmlite
        from ..errors import first_line

        _numba_error = first_line(exc) or type(exc).__name__
        return None
    _numba_error = "imported"
    _bin_jit = numba.njit(inline="always", nogil=True)(_bin)
    try:  # compiled once per machine when numba finds a writable cache directory
        return numba.njit(cache=True, nogil=True, fastmath=False)(_kernel)
    except RuntimeError:  # "no locator available": a read-only install without a home
        return numba.njit(cache=False, nogil=True, fastmath=False)(_kernel)


def _bin(value, scale, n_bins, edge_below):
    """0-based right-closed equal-width bin of ``value`` in [0, 1], EqualWidthBinner's
    rule: a candidate from ``ceil(value * n_bins * (1 + 8 eps))`` (``scale``), then one
    comparison with the float64 edge below it. Compiled inline into :func:`_kernel`."""
    candidate = int(np.ceil(value * scale))
    if candidate < 1:
        candidate = 1
    elif candidate > n_bins:
        candidate = n_bins
    if value <= edge_below[candidate]:
        candidate -= 1
    return candidate - 1


#: :func:`_bin` compiled (set by :func:`_compiled` before it compiles the kernel).
_bin_jit: Any = _bin


def _kernel(proba, y, top_edges, band_edges, fine_edges, nll_eps, logit_eps,
            top_count, top_correct, top_sum_confidence, top_sum_variance, top_moments,
            band_count, band_correct, band_sum_confidence,
            class_count, class_outcome, class_sum_probability, class_moments, class_predicted,
            positive_moments, fine_count, fine_correct, fine_sum_confidence, fine_moments, scalars,
            class_split_count, route_edges, route_starts, route_tail, route_count, route_right, route_low, route_high):
    n_rows, n_classes = proba.shape
    routed = route_count.shape[0] > 0  # the review-routing histogram rides along (no bins: it does not)
    route_last = route_starts.shape[0] - 1
    n_bins = top_count.shape[0]
    n_bands = band_count.shape[0]
    n_fine = fine_count.shape[0]
    eps8 = 1.0 + 8.0 * 2.220446049250313e-16
    top_scale = n_bins * eps8
    band_scale = n_bands * eps8
    fine_scale = n_fine * eps8
    sum_sq = 0.0
    sum_true = 0.0
    sum_nll = 0.0
    positive_sse = 0.0
    deviation = 0.0
    spread = 0.0
    for i in range(n_rows):
        label = y[i]
        best = 0
        confidence = proba[i, 0]
        row_sq = 0.0
        for k in range(n_classes):
            p = proba[i, k]
            row_sq += p * p
            if p > confidence:
                confidence = p
                best = k
            # Every class column's bins.
            b = _bin_jit(p, top_scale, n_bins, top_edges)
            # Only the outcome-split sums here; class_count, class_outcome and
            # class_sum_probability are read off them after the loop.
            hit = 1 if k == label else 0
            class_split_count[k, b, hit] += 1
            class_moments[k, b, hit, 0] += p
            class_moments[k, b, hit, 1] += p * p
        true_p = proba[i, label]
        correct = 1 if best == label else 0
        class_predicted[best] += 1
        log_confidence = np.log(confidence)  # confidence >= 1/K > 0
        if best == label:  # true_p is the confidence: one logarithm serves both
            nll = -log_confidence if confidence >= nll_eps else -np.log(nll_eps)
        else:
            nll = -np.log(max(true_p, nll_eps))
        brier_row = row_sq - 2.0 * true_p + 1.0
        sum_sq += row_sq
        sum_true += true_p
        sum_nll += nll
        c = confidence
        # Top label: equal-width bins, report bands, fine histogram.
        b = _bin_jit(c, top_scale, n_bins, top_edges)
        top_count[b] += 1
        top_correct[b] += correct
        top_sum_confidence[b] += c
        top_sum_variance[b] += c * (1.0 - c)
        top_moments[b, correct, 0] += c
        top_moments[b, correct, 1] += c * c
        top_moments[b, correct, 2] += brier_row
        top_moments[b, correct, 3] += brier_row * brier_row
        top_moments[b, correct, 4] += nll
        top_moments[b, correct, 5] += nll * nll
        b = _bin_jit(c, band_scale, n_bands, band_edges)
        band_count[b] += 1
        band_correct[b] += correct
        band_sum_confidence[b] += c
        b = _bin_jit(c, fine_scale, n_fine, fine_edges)
        fine_count[b] += 1
        fine_correct[b] += correct
        fine_sum_confidence[b] += c
        fine_moments[b, correct, 0] += c
        fine_moments[b, correct, 1] += c * c
        clipped = min(max(c, logit_eps), 1.0 - logit_eps)
        log_clipped = log_confidence if clipped == c else np.log(clipped)
        fine_moments[b, correct, 2] += log_clipped - np.log1p(-clipped)
        if routed:  # routing_bins._routing_pass's search: the first edge >= c, within c's equal-width bin
            if 0.9921875 < c < 1.0:  # or, near 1, within the bucket of u = 1 - c (routing_bins._tail_bounds)
                mantissa, exponent = math.frexp(1.0 - c)
                bucket = (exponent + 52) * 128 + int(mantissa * 256.0) - 128
                lo = route_tail[bucket, 0]
                hi = route_tail[bucket, 1]
            else:
                f = int(c * route_last)  # exact: route_last is a power of two
                lo = route_starts[f]
                hi = route_starts[f + 1] if f < route_last else lo
            while lo < hi:
                mid = (lo + hi) >> 1
                if route_edges[mid] < c:
                    lo = mid + 1
                else:
                    hi = mid
            b = lo - 1 if lo > 0 else 0
            route_count[b] += 1
            route_right[b] += correct
            if c < route_low[b]:
                route_low[b] = c
            if c > route_high[b]:
                route_high[b] = c
        if n_classes == 2:
            p = proba[i, 1]
            positive = 1.0 if label == 1 else 0.0
            residual = p - positive
            squared = residual * residual
            positive_sse += squared
            deviation += (positive - p) * (1.0 - 2.0 * p)
            spread += (1.0 - 2.0 * p) * (1.0 - 2.0 * p) * p * (1.0 - p)
            b = _bin_jit(p, top_scale, n_bins, top_edges)
            outcome = 1 if label == 1 else 0
            positive_moments[b, outcome, 0] += squared
            positive_moments[b, outcome, 1] += squared * squared
    for k in range(n_classes):
        for b in range(n_bins):
            class_count[k, b] += class_split_count[k, b, 0] + class_split_count[k, b, 1]
            class_outcome[k, b] += class_split_count[k, b, 1]
            class_sum_probability[k, b] = class_moments[k, b, 0, 0] + class_moments[k, b, 1, 0]  # cumulative
            class_split_count[k, b, 0] = 0
            class_split_count[k, b, 1] = 0
    scalars[0] += sum_sq
    scalars[1] += sum_true
    scalars[2] += sum_nll
    scalars[3] += positive_sse
    scalars[4] += deviation
    scalars[5] += spread


# ---------------------------------------------------------------- validation of float columns

#: Most classes the fused validation takes: numpy sums a row of up to 128 values with
#: eight running sums (its pairwise_sum), which :func:`_row_sum` reproduces bit for bit.
FUSED_MAX_CLASSES = 128


def fused_probabilities(columns: list[np.ndarray], *, row_sum_tolerance: float,
                        rows: int | None = None) -> tuple[np.ndarray, float] | None:
    """The validated float64 ``(n, K)`` matrix of ``K`` float probability columns and
    its largest ``|row sum - 1|``, in one compiled pass, bit for bit what
    :func:`calaudit.predictions.validation.check_probabilities` gives (rows divided by their numpy
    row sum when any row misses 1); ``None`` whenever that function would do anything
    else (a value that is not in [0, 1], NaN included, so it would clip or raise; a row
    sum beyond the tolerance; an empty row; more than :data:`FUSED_MAX_CLASSES`
    columns; no numba, or a stream of fewer than :data:`COMPILED_MIN_ROWS` ``rows``):
    the caller then validates the ordinary way, which raises the usual one-line error."""
    if kernel_name(rows) != "numba" or not columns or len(columns) > FUSED_MAX_CLASSES:
        return None
    compiled = _compiled_validation()
    stacked = np.stack(columns)  # (K, n), float32 or float64: one copy of the batch
    n_rows = stacked.shape[1]
    out = np.empty((n_rows, stacked.shape[0]), dtype=np.float64)
    row_sums = np.empty(n_rows, dtype=np.float64)
    status, max_deviation = compiled(stacked, out, row_sums)
    if status != 0 or not max_deviation <= row_sum_tolerance:
        return None
    if max_deviation > 0.0:
        if (row_sums == 0.0).any():
            return None
        out /= row_sums[:, None]  # the same division check_probabilities makes
    return out, float(max_deviation)


@lru_cache(maxsize=1)
def _compiled_validation() -> Any:
    import numba

    global _row_sum_jit
    _row_sum_jit = numba.njit(inline="always", nogil=True)(_row_sum)
    try:
        return numba.njit(cache=True, nogil=True)(_validate_columns)
    except RuntimeError:
        return numba.njit(cache=False, nogil=True)(_validate_columns)


def _row_sum(out, i, n):
    """numpy's pairwise sum of row ``i`` (``n <= 128`` contiguous float64 values)."""
    if n < 8:
        total = 0.0
        for k in range(n):
            total += out[i, k]
        return total
    r0, r1, r2, r3 = out[i, 0], out[i, 1], out[i, 2], out[i, 3]
    r4, r5, r6, r7 = out[i, 4], out[i, 5], out[i, 6], out[i, 7]
    k = 8
    while k < n - (n % 8):
        r0 += out[i, k]
        r1 += out[i, k + 1]
        r2 += out[i, k + 2]
        r3 += out[i, k + 3]
        r4 += out[i, k + 4]
        r5 += out[i, k + 5]
        r6 += out[i, k + 6]
        r7 += out[i, k + 7]
        k += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while k < n:
        total += out[i, k]
        k += 1
    return total


#: :func:`_row_sum` compiled (set by :func:`_compiled_validation`).
_row_sum_jit: Any = _row_sum


def _validate_columns(stacked, out, row_sums):
    """Copy ``stacked`` (K, n) into ``out`` (n, K) as float64, row sums into
    ``row_sums``; status 1 at the first value outside [0, 1] (NaN included)."""
    n_classes, n_rows = stacked.shape
    largest = 0.0
    for i in range(n_rows):
        for k in range(n_classes):
            value = np.float64(stacked[k, i])
            if not (value >= 0.0 and value <= 1.0):
                return 1, 0.0
            out[i, k] = value
        total = _row_sum_jit(out, i, n_classes)
        row_sums[i] = total
        deviation = abs(total - 1.0)
        if deviation > largest:
            largest = deviation
    return 0, largest
