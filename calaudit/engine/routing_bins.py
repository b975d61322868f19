"""Review routing in a streamed audit: exact counts per fine confidence bin.

In memory, routing (:mod:`calaudit.decisions.routing`) tests the top slices
``confidence >= t`` at every distinct confidence ``t``. A stream cannot keep every
confidence, so :class:`RoutingHistogram` keeps, per fine bin of the top-label
confidence ``c``, the rows, the rows right, and the lowest and highest ``c`` seen:
mergeable (sums, min, max), ``O(bins)`` whatever the number of rows.

**Candidates.** The slice of a bin is every row in it or in a bin above. Its rows and
rows right are exact (cumulative counts; rows of one bin enter together, as tied rows
do in memory), and it is exactly the rows with ``c >= `` the lowest confidence of the
bin: that confidence, a value some row has, is the slice's threshold. So a streamed
threshold is an in-memory candidate, and the streamed routing is the in-memory
procedure (:func:`calaudit.decisions.routing.route_slices`, the same code) with the
candidates restricted to one per non-empty bin. The bins, and so the candidates and
the label-free starts, depend on the confidences only; the p-values are exact binomial
tests on exact counts: the guarantee (docs/metrics.md, section 12) holds unchanged.

**The bins** (:func:`routing_edges`, right-closed like calaudit's other bins): the
``2**14`` equal-width bins of the audit's fine histogram, each further split, above
``1 - 2**-7`` (0.9921875), on a log scale of ``1 - c``: :data:`PER_OCTAVE` bins per
halving of ``1 - c`` down to ``1 - 2**-53``, the largest double below 1, and ``c = 1``
alone. Why: softmax outputs saturate; for many models most rows sit above 0.9999,
where one equal-width bin (``1 - c < 6.1e-5``) would hold them all and leave a 99%
target nothing but all-or-nothing. Near 1, ``1 - c`` is about ``exp(-margin)`` (the
logit margin of the top class over the next), and margins spread on a linear scale,
so equal steps of ``log(1 - c)`` are equal steps of margin: 1.09% of ``1 - c`` per bin
(0.011 in margin) at every scale. Below ``1 - 2**-7`` the equal-width step (6.1e-5) is
the finer one. 18,994 bins in all: about 600 KB of counts and bounds. Confidences on the ``2**-14`` grid each
sit alone in a bin, so there the streamed routing equals the in-memory one exactly.

**How far from the in-memory threshold.** Every in-memory candidate lies in a bin
whose lowest confidence is a streamed candidate at most one bin away (6.1e-5 in
confidence below 0.9921875, 1.09% of ``1 - c`` above). The two procedures test
different candidate sets, so neither threshold bounds the other in general; where the
p-values change smoothly they pass at the same place, to within one bin.

**Risk-coverage.** The curve and AURC are computed from the slices as in memory, rows
of a bin sharing its error rate (as tied rows do). That is the in-memory AURC when
every bin holds one distinct confidence (``low == high``); otherwise
:meth:`RoutingHistogram.aurc_bounds` gives the least and the greatest AURC the rows
could have in memory, over every order and tie within the bins (``execution.routing``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

import numpy as np

from ..decisions.routing import DEFAULT_TARGETS, TopSlices, route_slices
from ..result import Routing

__all__ = ["PER_OCTAVE", "TAIL_FROM", "WIDTH_BINS", "RoutingHistogram", "routing_edges", "streamed_routing"]

#: Equal-width bins of the confidence (the audit's fine histogram).
WIDTH_BINS = 2**14
#: The log-scale bins cover ``1 - c <= 2**-TAIL_FROM``.
TAIL_FROM = 7
#: Log-scale bins per halving of ``1 - c``.
PER_OCTAVE = 64
#: ``1 - 2**-LAST_OCTAVE`` is the largest double below 1.
LAST_OCTAVE = 53
#: Bits of the mantissas of the log-scale steps (exact in float64, the same on every machine).
_MANTISSA_BITS = 20
#: What ``execution.routing.resolution`` says.
RESOLUTION = (f"equal-width bins of 2^-{WIDTH_BINS.bit_length() - 1} in confidence, and above "
              f"1 - 2^-{TAIL_FROM} (0.9921875) {PER_OCTAVE} bins per halving of 1 - confidence (each 1.09% of "
              f"1 - confidence) down to 1 - 2^-{LAST_OCTAVE}; confidence 1 alone")


def _octave_steps() -> list[int]:
    """``round(2**20 * 2**(-j / 64))`` for ``j`` in ``0..63``, in exact integer arithmetic
    (``x`` rounds it when ``(2x - 1)**64 < 2**(64 * 21 - j) <= (2x + 1)**64``)."""
    steps = []
    for j in range(PER_OCTAVE):
        target = 1 << (PER_OCTAVE * (_MANTISSA_BITS + 1) - j)  # (2 * 2**20 * 2**(-j/64))**64
        x = int(2.0 ** (_MANTISSA_BITS - j / PER_OCTAVE))
        while (2 * x + 1) ** PER_OCTAVE < target:
            x += 1
        while x > 0 and (2 * x - 1) ** PER_OCTAVE >= target:
            x -= 1
        steps.append(x)
    return steps


@lru_cache(maxsize=1)
def routing_edges() -> np.ndarray:
    """The bin edges, ascending, from 0 to 1 (read-only): ``k / 2**14`` for every ``k``
    and ``1 - 2**-(7 + j / 64)`` for ``j`` up to ``46 * 64`` (``1 - c`` rounded to 21
    significant bits, then ``1 - u`` in float64: basic IEEE operations, so every Dask
    worker builds the same edges)."""
    width = np.arange(WIDTH_BINS + 1, dtype=np.float64) / WIDTH_BINS
    steps = np.asarray(_octave_steps(), dtype=np.float64)
    octaves = np.arange(TAIL_FROM, LAST_OCTAVE)
    tail = (steps[None, :] * np.exp2(-(octaves[:, None] + _MANTISSA_BITS).astype(np.float64))).reshape(-1)
    tail = np.append(tail, 2.0**-LAST_OCTAVE)
    edges = np.unique(np.concatenate((width, 1.0 - tail)))
    edges.flags.writeable = False
    return edges


@lru_cache(maxsize=1)
def _width_starts() -> np.ndarray:
    """``starts[f]``: the index of the edge ``f / 2**14`` among :func:`routing_edges`
    (the bins of ``c`` in ``(f / 2**14, (f + 1) / 2**14]`` lie between ``starts[f]`` and
    ``starts[f + 1]``)."""
    edges = routing_edges()
    starts = np.searchsorted(edges, np.arange(WIDTH_BINS + 1) / WIDTH_BINS).astype(np.int64)
    starts.flags.writeable = False
    return starts


#: Buckets per halving of ``1 - c`` in :func:`_tail_bounds` (narrower than a log-scale bin).
TAIL_BUCKETS = 128


@lru_cache(maxsize=1)
def _tail_bounds() -> np.ndarray:
    """``bounds[k]``: indices ``lo <= hi`` of :func:`routing_edges` between which the
    first edge ``>= c`` lies, for every ``c`` whose ``u = 1 - c`` (exact: ``c >= 0.5``)
    is in bucket ``k = (e + 52) * 128 + floor(m * 256) - 128`` (``u = m * 2**e``,
    ``m`` in [0.5, 1), :func:`math.frexp`), ``u`` in ``[2**-53, 2**-7)``: a search of
    one or two edges where the last equal-width bin holds 2,900. Exact: the first edge
    ``>= c`` is the first whose ``1 - edge`` (exact too) is ``<= u``, and that index
    does not increase with ``u``, so the bucket's ends bound it."""
    edges = routing_edges()
    descending = 1.0 - edges  # exact where it matters (edges >= 0.5)
    ascending = descending[::-1]
    e = np.repeat(np.arange(-52, -6), TAIL_BUCKETS)
    j = np.tile(np.arange(TAIL_BUCKETS), 52 - 6)
    start = np.ldexp((TAIL_BUCKETS + j) / (2.0 * TAIL_BUCKETS), e)
    stop = np.ldexp((TAIL_BUCKETS + j + 1) / (2.0 * TAIL_BUCKETS), e)

    def first_within(u: np.ndarray) -> np.ndarray:  # first index i with 1 - edges[i] <= u
        return edges.shape[0] - np.searchsorted(ascending, u, side="right")

    bounds = np.column_stack((np.maximum(first_within(stop) - 1, 0), first_within(start))).astype(np.int64)
    bounds.flags.writeable = False
    return bounds


class RoutingHistogram:
    """Rows, rows right, and the lowest and highest top-label confidence per bin of
    :func:`routing_edges` (module docstring). :meth:`add` takes a validated batch,
    :meth:`observe` wraps an iterator of :class:`calaudit.engine.batch.Batch` es (one
    read feeds the audit and its routing); instances pickle and :meth:`merge`."""

    def __init__(self, expected_rows: int | None = None) -> None:
        # The kernel rule of the statistics pass (calaudit.engine.kernel.kernel_name):
        # a stream expected to hold few rows never imports numba.
        self.expected_rows = expected_rows
        bins = routing_edges().shape[0] - 1
        self.count = np.zeros(bins, dtype=np.int64)
        self.right = np.zeros(bins, dtype=np.int64)
        self.low = np.full(bins, np.inf)
        self.high = np.full(bins, -np.inf)

    @property
    def bins(self) -> int:
        return int(self.count.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.count.sum())

    # ------------------------------------------------------------ adding rows

    def add(self, y_true: np.ndarray, y_proba: np.ndarray) -> None:
        """Add one batch: ``y_true`` ``(n,)`` class indices, ``y_proba`` ``(n, K)``
        validated probabilities (only read). The top label is the first of tied maxima
        and the confidence its probability, as :class:`calaudit.stats.metrics.TopLabel`."""
        from .kernel import kernel_name
        from .statistics import check_batch

        y, proba = check_batch(y_true, y_proba)
        if not y.shape[0]:
            return
        compiled = _compiled() if kernel_name(self.expected_rows) == "numba" else None
        if compiled is not None:
            compiled(np.ascontiguousarray(proba, dtype=np.float64), np.ascontiguousarray(y, dtype=np.int64),
                     routing_edges(), _width_starts(), self.count, self.right, self.low, self.high)
            return
        from ..stats.metrics import TopLabel

        top = TopLabel.of(y, proba)
        self.add_top(top.confidence, top.correct)

    def add_top(self, confidence: Any, correct: Any) -> None:
        """Add rows given by their top-label confidence (in [0, 1]) and outcome (0/1)."""
        confidence = np.asarray(confidence, dtype=np.float64)
        correct = np.asarray(correct)
        if confidence.ndim != 1 or correct.shape != confidence.shape:
            raise ValueError(f"confidence and correct must be 1-D of one length, got {confidence.shape} and "
                             f"{correct.shape}")
        if not ((confidence >= 0.0) & (confidence <= 1.0)).all():
            raise ValueError("confidence must lie in [0, 1]")
        ids = np.maximum(np.searchsorted(routing_edges(), confidence, side="left") - 1, 0)
        self.count += np.bincount(ids, minlength=self.bins)
        self.right += np.bincount(ids, weights=correct.astype(np.float64), minlength=self.bins).astype(np.int64)
        np.minimum.at(self.low, ids, confidence)
        np.maximum.at(self.high, ids, confidence)

    def kernel_arrays(self) -> tuple[np.ndarray, ...]:
        """What the statistics kernel takes to add rows here in its own row loop
        (:class:`calaudit.engine.kernel.Accumulator` with ``routing=``): the edges, the
        equal-width starts, then the count, right, low and high arrays it updates."""
        return routing_edges(), _width_starts(), _tail_bounds(), self.count, self.right, self.low, self.high

    def add_batch(self, batch: Any) -> None:
        self.add(batch.y, batch.proba)

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        """Yield ``batches`` unchanged, adding each on the way."""
        for batch in batches:
            self.add_batch(batch)
            yield batch

    # ------------------------------------------------------------ merging

    def merge(self, other: RoutingHistogram) -> RoutingHistogram:
        """The rows of both (a new histogram)."""
        return RoutingHistogram.merge_all((self, other))

    @classmethod
    def merge_all(cls, parts: Iterable[RoutingHistogram]) -> RoutingHistogram:
        merged = cls()
        for part in parts:
            if not isinstance(part, RoutingHistogram):
                raise TypeError(f"can only merge RoutingHistogram, got {type(part).__name__}")
            if part.bins != merged.bins:
                raise ValueError(f"cannot merge routing histograms of {part.bins} and {merged.bins} bins")
            merged.count += part.count
            merged.right += part.right
            np.minimum(merged.low, part.low, out=merged.low)
            np.maximum(merged.high, part.high, out=merged.high)
        return merged

    # ------------------------------------------------------------ routing

    def top_slices(self) -> TopSlices:
        """The candidate top slices, most confident first: one per non-empty bin, its
        threshold the bin's lowest confidence, its rows and rows right cumulated from
        the top bin down (exact)."""
        full = np.flatnonzero(self.count)[::-1]
        if not full.size:
            raise ValueError("no rows to route: the routing histogram is empty")
        return TopSlices(self.low[full].copy(), np.cumsum(self.count[full]), np.cumsum(self.right[full]))

    def aurc_bounds(self) -> tuple[float, float]:
        """The least and the greatest AURC the in-memory audit could give for these
        counts, over every order and every tie within each bin (both attained).

        In memory a row's risk is ``E(n) / n``, the error rate of the smallest top
        slice holding it (its tie's end ``n``). Take a bin of ``m`` rows, ``r`` right
        and ``e`` wrong, below ``n0`` rows holding ``E0`` errors (``E = E0 + e``). The
        ``i``-th row of the bin has ``n >= n0 + i``, and ``E(n) / n`` is at most
        ``E / (n0 + e)`` (errors first) for ``i <= e`` and ``E / (n0 + i)`` after; at
        least ``E0 / (n0 + r)`` (right answers first) for ``i <= r`` and
        ``(E0 + i - r) / (n0 + i)`` after. Ties of all the errors (or all the right
        answers) at the top of the bin reach the bounds. Summed over the bin::

            high = e E / (n0 + e) + E (H(n0 + m) - H(n0 + e))
            low  = r E0 / (n0 + r) + e - (n0 - E0 + r) (H(n0 + m) - H(n0 + r))

        with ``H`` the harmonic numbers (``digamma(k + 1)`` up to a constant). A bin
        holding a single confidence (``low == high``) is one tie in memory too: ``m E /
        (n0 + m)`` exactly, summed as :func:`~calaudit.decisions.routing.risk_coverage`
        sums it. Both ends divided by ``N``; equal, and the streamed AURC, when every
        bin holds one confidence."""
        from scipy.special import digamma

        full = np.flatnonzero(self.count)[::-1]
        slices = self.top_slices()
        m = np.diff(slices.n, prepend=0)
        r = self.right[full].astype(np.float64)
        e = m - r
        n0 = (slices.n - m).astype(np.float64)
        e0 = (slices.n - slices.right).astype(np.float64) - e
        errors = e0 + e
        h_all = digamma(n0 + m + 1.0)
        high = (np.where(e > 0, e * errors / np.maximum(n0 + e, 1.0), 0.0)
                + errors * (h_all - digamma(n0 + e + 1.0)))
        low = (np.where(r > 0, r * e0 / np.maximum(n0 + r, 1.0), 0.0)
               + e - (n0 - e0 + r) * (h_all - digamma(n0 + r + 1.0)))
        exact = m * (1.0 - slices.right / slices.n)  # as risk_coverage computes it: the same float sums
        single = self.low[full] == self.high[full]
        total = int(slices.n[-1])
        low_sum = float(np.sum(np.where(single, exact, np.minimum(low, exact))) / total)
        high_sum = float(np.sum(np.where(single, exact, np.maximum(high, exact))) / total)
        if single.all():  # the streamed AURC itself, to the last bit
            low_sum = high_sum = float(np.dot(m, 1.0 - slices.right / slices.n) / total)
        return low_sum, high_sum

    def describe(self) -> dict[str, Any]:
        """What ``execution.routing`` says: where the thresholds came from, the
        resolution, and the AURC's interval."""
        full = self.count > 0
        low, high = self.aurc_bounds()
        return {
            "from": "exact counts per fine confidence bin; a threshold is the lowest confidence of its bin",
            "bins": self.bins, "resolution": RESOLUTION, "candidates": int(full.sum()),
            "bins_with_several_confidences": int((full & (self.low < self.high)).sum()),
            "aurc_bounds": [low, high],
        }


def streamed_routing(histogram: RoutingHistogram, targets: Iterable[float] = (), *,
                     level: float = 0.95) -> tuple[Routing, dict[str, Any]]:
    """The review routing of a streamed audit (``targets``: the report's 90/95/99% when
    empty) and what ``execution.routing`` says about it."""
    wanted = tuple(targets) or DEFAULT_TARGETS
    return route_slices(histogram.top_slices(), wanted, level=level), histogram.describe()


# ------------------------------------------------------------------ compiled pass


@lru_cache(maxsize=1)
def _compiled() -> Any:
    """The compiled pass, or ``None`` without numba."""
    try:
        import numba
    except ImportError:
        return None
    try:  # compiled once per machine when numba finds a writable cache directory
        return numba.njit(cache=True, nogil=True)(_routing_pass)
    except RuntimeError:  # "no locator available": a read-only install without a home
        return numba.njit(cache=False, nogil=True)(_routing_pass)


def _routing_pass(proba, y, edges, starts, count, right, low, high):
    """One pass over a batch: each row's top label (the first of tied maxima), its
    bin (right-closed: the first edge ``>= c``, searched between the edges of its
    equal-width bin), and the bin's count, right answers, lowest and highest ``c``."""
    n_rows, n_classes = proba.shape
    last = starts.shape[0] - 1
    for i in range(n_rows):
        best = 0
        c = proba[i, 0]
        for k in range(1, n_classes):
            if proba[i, k] > c:
                c = proba[i, k]
                best = k
        f = int(c * last)  # exact: last is a power of two
        lo = starts[f]
        hi = starts[f + 1] if f < last else lo
        while lo < hi:
            mid = (lo + hi) >> 1
            if edges[mid] < c:
                lo = mid + 1
            else:
                hi = mid
        b = lo - 1 if lo > 0 else 0
        count[b] += 1
        if best == y[i]:
            right[b] += 1
        if c < low[b]:
            low[b] = c
        if c > high[b]:
            high[b] = c
