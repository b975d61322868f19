"""Calibration over time: a prediction log's rows grouped into windows of equal length.

``--time-col COL --window 7D`` audits every window of a streamed dataset on its own:
rows, accuracy, mean confidence, the equal-width ECE (the audit's bins) and, with
resampling, intervals for the ECE, the accuracy and the confidence gap.

Times (:mod:`calaudit.engine.times`)
    A time column holds Parquet timestamps (any unit; with a time zone they are
    instants, without one they are read as UTC), dates (``date32``/``date64``: midnight
    UTC), or ISO-8601 text (``2026-11-02``, ``2026-11-02T10:30:00``, optionally with
    ``Z`` or an offset such as ``+02:00``; text without an offset is UTC). Every time is
    held as int64 nanoseconds since 1970-01-01T00:00:00Z, so times from 1677-09-21 to
    2262-04-11 can be held; a time outside them, a null, an empty text or a text that is
    no ISO-8601 time is an error naming the file, the row group and the row
    (:func:`read_times`).

Windows
    A window size is ``<n>H``, ``<n>D`` or ``<n>W`` (hours, days, weeks of 7 days;
    :func:`parse_window`). Windows are aligned to the UTC epoch: window ``i`` holds the
    rows with ``i * size <= t < (i + 1) * size``, ``t`` counted from
    1970-01-01T00:00:00Z. So ``1D`` windows are UTC calendar days, ``12H`` windows start
    at 00:00 and 12:00 UTC, ``7D`` and ``1W`` windows start on Thursdays at 00:00 UTC
    (1970-01-01 was a Thursday) and ``30D`` windows are not calendar months. The same
    rows always fall in the same windows, whatever ``--since`` says or the order in
    which files and batches are read.

Statistics
    :class:`WindowStatistics` keeps one small :class:`StreamStatistics` per window that
    holds rows (the audit's equal-width bins, :data:`WINDOW_FINE_BINS` fine bins). The
    rows of a batch are grouped by window with one ``argsort`` (none when the batch is
    already in time order), so the work per row does not depend on the number of
    windows; only the windows present in a batch are looped over. Window statistics
    merge by adding those of the same window (for a Dask reduction), and are capped at
    :data:`MAX_WINDOWS` windows (fewer when many classes make each window's statistics
    large, :data:`MAX_WINDOW_BYTES`): beyond the cap, a usage error asks for a wider
    window.

Figures
    :func:`window_results` gives each window's figures, equal to those of the
    in-memory audit of the same rows, and intervals from
    :func:`calaudit.engine.resample.stream_intervals` on the window's statistics
    (windows with fewer than :data:`MIN_WINDOW_ROWS` rows are marked ``too_few_rows``
    and get none). A window's ``start`` and ``end`` are cut to ``--since`` /
    ``--until`` when a bound falls inside it. :func:`window_change` compares the latest
    window with enough rows with all the earlier rows, for the report's
    plain-language sentence, by the test of :mod:`calaudit.engine.drift`, which
    judges the window at its own size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import UsageError
from ..stats.metrics import DEFAULT_N_BINS
from .statistics import StreamStatistics
from .times import INT64_MAX, NS_PER_SECOND, format_instant, format_window, instant_ns, size_ns

__all__ = [
    "MAX_WINDOWS", "MAX_WINDOW_BYTES", "MIN_WINDOW_ROWS", "WINDOW_FINE_BINS", "WINDOW_METRICS", "WindowStatistics",
    "window_change", "window_extras", "window_results", "window_settings",
]

#: Most windows one audit keeps (a usage error beyond: use a wider window).
MAX_WINDOWS = 10_000
#: Most bytes the windows' statistics may hold (many classes make each window large).
MAX_WINDOW_BYTES = 512 * 2**20
#: Windows with fewer rows get no interval and are marked ``too_few_rows``.
MIN_WINDOW_ROWS = 30
#: Fine bins of a window's statistics: windows need only the equal-width figures.
WINDOW_FINE_BINS = 16
#: The figures a window's intervals are computed for.
WINDOW_METRICS = ("accuracy", "ece", "confidence_gap")
#: Simulations of a window's noise floor (the large-sample method: cheap per window).
NOISE_SIMULATIONS = 200

# ------------------------------------------------------------------ accumulation


class WindowStatistics:
    """Per-window :class:`StreamStatistics` of a time-stamped stream of predictions.

    ``size`` is a window length (:func:`parse_window`); ``n_bins`` the audit's
    equal-width bins. :meth:`add` takes one batch of rows with their times;
    :meth:`observe` wraps an iterator of :class:`calaudit.engine.batch.Batch` es and adds
    each as it passes, so one read feeds both the whole audit and its windows.
    Instances pickle (a Dask task may return one) and merge by window.
    """

    def __init__(
        self, size: np.timedelta64, *, n_bins: int = DEFAULT_N_BINS, fine_bins: int = WINDOW_FINE_BINS,
        max_windows: int = MAX_WINDOWS, max_bytes: int = MAX_WINDOW_BYTES,
    ) -> None:
        self.size_ns = size_ns(size)
        self.n_bins = int(n_bins)
        self.fine_bins = int(fine_bins)
        self.max_windows = int(max_windows)
        self.max_bytes = int(max_bytes)
        self._windows: dict[int, StreamStatistics] = {}
        self._window_bytes: int | None = None

    @property
    def size(self) -> np.timedelta64:
        return np.timedelta64(self.size_ns, "ns")

    def __len__(self) -> int:
        return len(self._windows)

    @property
    def n_rows(self) -> int:
        return sum(stats.n_rows for stats in self._windows.values())

    def items(self) -> list[tuple[int, StreamStatistics]]:
        """``(window index, statistics)`` in time order; window ``i`` starts ``i * size``
        after 1970-01-01T00:00:00Z."""
        return sorted(self._windows.items())

    def start_ns(self, index: int) -> int:
        return index * self.size_ns

    # ------------------------------------------------------------ adding rows

    def add(self, time_ns: np.ndarray, y_true: np.ndarray, y_proba: np.ndarray) -> None:
        """Add one batch: ``time_ns`` int64 nanoseconds (UTC) per row, ``y_true`` and
        ``y_proba`` as :meth:`StreamStatistics.from_batch` takes them (only read)."""
        times = np.asarray(time_ns)
        if times.dtype != np.int64 or times.shape != (np.shape(y_true)[0],):
            raise ValueError(f"time_ns must be int64 of shape ({np.shape(y_true)[0]},), got {times.dtype} "
                             f"{times.shape}")
        if not times.size:
            return
        index = np.floor_divide(times, self.size_ns)  # floor: times before 1970 too
        if index.size == 1 or bool(np.all(index[1:] >= index[:-1])):
            # In time order (the usual log): each window is a slice, no copy, no sort.
            cuts = np.flatnonzero(index[1:] != index[:-1]) + 1
            starts = np.concatenate(([0], cuts))
            keys = index[starts]
            stops = np.concatenate((cuts, [index.size]))
            self._reserve(keys, np.shape(y_proba)[1])
            for key, start, stop in zip(keys.tolist(), starts.tolist(), stops.tolist()):
                self._add(key, y_true[start:stop], y_proba[start:stop])
            return
        keys, inverse = np.unique(index, return_inverse=True)
        self._reserve(keys, np.shape(y_proba)[1])
        order = np.argsort(inverse, kind="stable")  # rows of each window together, in batch order
        bounds = np.concatenate(([0], np.cumsum(np.bincount(inverse, minlength=keys.size))))
        for position, key in enumerate(keys.tolist()):
            rows = order[bounds[position]:bounds[position + 1]]
            self._add(key, y_true[rows], y_proba[rows])

    def add_batch(self, batch: Any) -> None:
        """Add a :class:`calaudit.engine.batch.Batch` read with a time column."""
        if getattr(batch, "time", None) is None:
            raise ValueError("this batch carries no times: open the dataset with time_col")
        self.add(batch.time, batch.y, batch.proba)

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        """Yield ``batches`` unchanged, adding each to these windows on the way."""
        for batch in batches:
            self.add_batch(batch)
            yield batch

    def _add(self, key: int, y: np.ndarray, proba: np.ndarray) -> None:
        part = StreamStatistics.from_batch(y, proba, n_bins=self.n_bins, fine_bins=self.fine_bins)
        existing = self._windows.get(key)
        self._windows[key] = part if existing is None else existing.merge(part)

    def _reserve(self, keys: np.ndarray, n_classes: int) -> None:
        """A usage error, before any work, when ``keys`` would take the windows over the cap."""
        new = sum(1 for key in keys.tolist() if key not in self._windows)
        if new == 0:
            return
        limit = self._limit(n_classes)
        if len(self._windows) + new > limit:
            raise UsageError(
                f"the rows fall in more than {limit:,} {'window' if limit == 1 else 'windows'} of "
                f"{format_window(self.size)} (--window); "
                "use a wider window, or --since/--until to audit a shorter period"
            )

    def _limit(self, n_classes: int) -> int:
        if self._window_bytes is None:
            empty = StreamStatistics.from_batch(np.zeros(0, dtype=np.intp), np.zeros((0, n_classes)),
                                                n_bins=self.n_bins, fine_bins=self.fine_bins)
            self._window_bytes = max(_statistics_bytes(empty), 1)
        return max(1, min(self.max_windows, self.max_bytes // self._window_bytes))

    # ------------------------------------------------------------ merging

    def merge(self, other: WindowStatistics) -> WindowStatistics:
        """The windows of both (the statistics of a window in both are merged)."""
        return WindowStatistics.merge_all((self, other))

    @classmethod
    def merge_all(cls, parts: Iterable[WindowStatistics]) -> WindowStatistics:
        """One accumulator holding the windows of all ``parts`` (same size and bins);
        the cap applies to the merged windows."""
        merged: WindowStatistics | None = None
        for part in parts:
            if not isinstance(part, WindowStatistics):
                raise TypeError(f"can only merge WindowStatistics, got {type(part).__name__}")
            if merged is None:
                merged = cls(part.size, n_bins=part.n_bins, fine_bins=part.fine_bins,
                             max_windows=part.max_windows, max_bytes=part.max_bytes)
            elif (part.size_ns, part.n_bins, part.fine_bins) != (merged.size_ns, merged.n_bins, merged.fine_bins):
                raise ValueError("cannot merge windows of different sizes or bins: build both alike")
            if not part._windows:
                continue
            n_classes = next(iter(part._windows.values())).n_classes
            merged._reserve(np.fromiter(part._windows, dtype=np.int64), n_classes)
            for key, stats in part._windows.items():
                existing = merged._windows.get(key)
                merged._windows[key] = stats if existing is None else existing.merge(stats)
        if merged is None:
            raise ValueError("merge_all needs at least one WindowStatistics")
        return merged


def _statistics_bytes(stats: StreamStatistics) -> int:
    return sum(value.nbytes for value in vars(stats).values() if isinstance(value, np.ndarray))


# ------------------------------------------------------------------ figures


def _figures(stats: StreamStatistics) -> dict[str, float]:
    """Accuracy, mean confidence, confidence gap and equal-width ECE, by the formulas of
    :meth:`StreamStatistics.metrics` (which the in-memory audit equals)."""
    n_rows = stats.n_rows
    accuracy = int(stats.top_correct.sum()) / n_rows
    mean_confidence = float(stats.top_sum_confidence.sum()) / n_rows
    ece = float(stats.reliability_bins().top_label.weighted_error(n_rows))
    return {"accuracy": accuracy, "mean_confidence": mean_confidence,
            "confidence_gap": mean_confidence - accuracy, "ece": ece}


def _window_seed(seed: int, index: int) -> int:
    """A seed per window, fixed by the window (not by which other windows hold rows)."""
    return int(np.random.SeedSequence([int(seed), int(index) + 2**40]).generate_state(1)[0])


def _intervals(stats: StreamStatistics, figures: dict[str, float], *, resamples: int, seed: int,
               level: float) -> dict[str, dict[str, float]]:
    from .resample import stream_intervals

    reference = {name: figures[name] for name in WINDOW_METRICS}
    result = stream_intervals(stats, reference=reference, metrics=WINDOW_METRICS, resamples=resamples,
                              level=level, seed=seed)
    return {name: result.intervals[name].to_dict() for name in WINDOW_METRICS if name in result.intervals}


def _summary(stats: StreamStatistics, *, resamples: int, seed: int, level: float,
             min_rows: int) -> dict[str, Any]:
    figures = _figures(stats)
    too_few = stats.n_rows < min_rows
    intervals = None
    if resamples > 0 and not too_few:
        intervals = _intervals(stats, figures, resamples=resamples, seed=seed, level=level)
    # The ECE of few rows is mostly chance: say how much a calibrated model would show.
    noise = stats.consistency_test(simulations=NOISE_SIMULATIONS, seed=seed)
    return {"rows": stats.n_rows, **figures, "ece_noise_floor": noise.noise_floor, "too_few_rows": too_few,
            "intervals": intervals}


def _period(acc: WindowStatistics, index: int, since: np.datetime64 | None,
            until: np.datetime64 | None) -> tuple[int, int]:
    """Window ``index``'s start and end (ns), cut to ``since <= t < until``: the period
    whose rows the window holds (``--since 2026-09-01`` with 7-day windows makes the
    first window start on 1 September, not on the Thursday before)."""
    start, end = acc.start_ns(index), acc.start_ns(index) + acc.size_ns
    since_ns, until_ns = instant_ns(since), instant_ns(until)
    if since_ns is not None:
        start = max(start, since_ns)
    if until_ns is not None:
        end = min(end, until_ns)
    return start, min(end, INT64_MAX)


def window_results(
    acc: WindowStatistics, *, resamples: int, seed: int = 0, level: float = 0.95, min_rows: int = MIN_WINDOW_ROWS,
    since: np.datetime64 | None = None, until: np.datetime64 | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every window that holds rows, in time order, as a JSON-ready dict::

        {"start": "2026-11-02T00:00:00Z", "end": "2026-11-09T00:00:00Z", "rows": 12345,
         "accuracy": 0.84, "mean_confidence": 0.91, "confidence_gap": 0.07, "ece": 0.071,
         "ece_noise_floor": 0.004, "too_few_rows": false,
         "intervals": {"accuracy": {"low": ..., "high": ...}, "ece": {...}, "confidence_gap": {...}}}

    ``start`` is inclusive and ``end`` exclusive (UTC), cut to ``since`` and ``until``
    (the ``--since`` / ``--until`` bounds) when they fall inside the window. The
    figures equal those of the in-memory audit of the window's rows with the same
    bins. ``intervals`` (at ``level``, from ``resamples`` grouped bootstrap resamples
    of the window's statistics, each window with its own seed derived from ``seed``
    and its index) is ``None`` when ``resamples`` is 0 or the window has fewer than
    ``min_rows`` rows (``too_few_rows``). ``ece_noise_floor`` is the mean ECE a
    perfectly calibrated model with the window's confidences would show
    (:meth:`StreamStatistics.consistency_test`, the large-sample method,
    :data:`NOISE_SIMULATIONS` simulations): the ECE of a window with few rows is
    mostly this chance part, which the report says. ``progress("Measuring windows",
    done, total)`` is told of each window done.
    """
    out = []
    items = acc.items()
    for done, (index, stats) in enumerate(items):
        if progress is not None:
            progress("Measuring windows", done, len(items))
        start, end = _period(acc, index, since, until)
        summary = _summary(stats, resamples=resamples, seed=_window_seed(seed, index), level=level,
                           min_rows=min_rows)
        out.append({"start": format_instant(start), "end": format_instant(end), **summary})
    if progress is not None:
        progress("Measuring windows", len(items), len(items))
    return out


def window_change(
    acc: WindowStatistics, *, resamples: int, seed: int = 0, level: float = 0.95, min_rows: int = MIN_WINDOW_ROWS,
    since: np.datetime64 | None = None, until: np.datetime64 | None = None,
) -> dict[str, Any] | None:
    """The latest window with at least ``min_rows`` rows against every row before it,
    for the report's sentence; ``None`` without such a window and rows before it.

    ``direction`` is :func:`calaudit.engine.drift.change_direction` of
    :func:`calaudit.engine.drift.change_test` (``test`` in the result) at
    ``alpha = 1 - level``: ``"worse"`` only when the window's ECE is beyond what chance
    gives a window of its size whose gap in every confidence bin is the earlier rows'
    (and above its own noise floor), ``"better"`` for the converse, ``"unclear"``
    otherwise, and also when the earlier rows are fewer than ``min_rows``. The test
    draws simulations, not resamples: it runs with ``resamples`` 0 too, seeded from
    ``seed`` and the window. ``later`` counts the windows after the latest one, each
    with too few rows to judge.
    """
    items = acc.items()
    eligible = [position for position, (_, stats) in enumerate(items) if stats.n_rows >= min_rows]
    if not eligible or eligible[-1] == 0:
        return None
    from .drift import change_direction, change_test

    latest_position = eligible[-1]
    latest_index, latest = items[latest_position]
    earlier = StreamStatistics.merge_all(stats for _, stats in items[:latest_position])
    first_index = items[0][0]
    latest_summary = _summary(latest, resamples=resamples, seed=_window_seed(seed, latest_index), level=level,
                              min_rows=min_rows)
    earlier_summary = _summary(earlier, resamples=resamples, seed=_window_seed(seed + 1, first_index),
                               level=level, min_rows=min_rows)
    alpha = 1.0 - level
    test = change_test(latest, earlier, seed=_window_seed(seed + 2, latest_index), alpha=alpha)
    direction = "unclear"  # the earlier rows are too few to judge against
    if earlier.n_rows >= min_rows:
        direction = change_direction(
            test.p_worse, test.p_better, alpha=alpha, latest_ece=latest_summary["ece"],
            latest_floor=latest_summary["ece_noise_floor"], earlier_ece=earlier_summary["ece"],
            earlier_floor=earlier_summary["ece_noise_floor"])
    start, end = _period(acc, latest_index, since, until)
    first, _ = _period(acc, first_index, since, until)
    later = items[latest_position + 1:]
    return {
        "direction": direction,
        "test": test.to_dict(),
        "latest": {"start": format_instant(start), "end": format_instant(end), **latest_summary},
        "earlier": {"start": format_instant(first), "end": format_instant(start), "windows": latest_position,
                    **earlier_summary},
        "later": {"windows": len(later), "rows": sum(stats.n_rows for _, stats in later)},
    }


def window_settings(
    *, column: str, size: np.timedelta64, since: np.datetime64 | None = None, until: np.datetime64 | None = None,
) -> dict[str, Any]:
    """``extras["window"]`` of the result: the time column, the window size (``7D``) and
    the ``--since`` / ``--until`` bounds (ISO-8601 UTC or ``None``)."""
    return {"column": column, "size": format_window(size), "size_seconds": size_ns(size) / NS_PER_SECOND,
            "since": format_instant(instant_ns(since)), "until": format_instant(instant_ns(until)),
            "aligned_to": "1970-01-01T00:00:00Z", "min_rows": MIN_WINDOW_ROWS}


def window_extras(
    acc: WindowStatistics, *, column: str, since: np.datetime64 | None = None, until: np.datetime64 | None = None,
    resamples: int, seed: int = 0, level: float = 0.95, progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """What a windowed audit adds to :attr:`calaudit.result.AuditResult.extras`::

        {"windows": window_results(...),
         "window": {**window_settings(...), "resamples": ..., "level": ..., "change": window_change(...)}}

    (``windows`` and ``window`` are top-level keys of the JSON; ``level`` is ``None``
    without resampling; ``progress`` as in :func:`window_results`)."""
    return {
        "windows": window_results(acc, resamples=resamples, seed=seed, level=level, since=since, until=until,
                                  progress=progress),
        "window": {**window_settings(column=column, size=acc.size, since=since, until=until),
                   "resamples": int(resamples), "level": level if resamples > 0 else None,
                   "change": window_change(acc, resamples=resamples, seed=seed, level=level, since=since,
                                           until=until)},
    }
