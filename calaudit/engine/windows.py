"""Calibration over time: a prediction log's rows grouped into windows of equal length.

``--time-col COL --window 7D`` audits every window of a streamed dataset on its own:
rows, accuracy, mean confidence, the equal-width ECE (the audit's bins) and, with
resampling, intervals for the ECE, the accuracy and the confidence gap.

Times
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

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UsageError, one_line, show
from ..stats.metrics import DEFAULT_N_BINS
from .statistics import StreamStatistics

__all__ = [
    "MAX_WINDOWS", "MAX_WINDOW_BYTES", "MIN_WINDOW_ROWS", "WINDOW_FINE_BINS", "WINDOW_METRICS", "WindowStatistics",
    "check_time_type", "format_instant", "format_window", "parse_instant", "parse_window", "read_times",
    "time_filter", "window_change", "window_extras", "window_results", "window_settings",
]

#: Most windows one audit keeps (a usage error beyond: use a wider window).
MAX_WINDOWS = 10_000
#: Most bytes the windows' statistics may hold (many classes make each window large).
MAX_WINDOW_BYTES = 512 * 2**20
#: Longest window accepted (about 100 years).
MAX_WINDOW_DAYS = 36_525
#: Windows with fewer rows get no interval and are marked ``too_few_rows``.
MIN_WINDOW_ROWS = 30
#: Fine bins of a window's statistics: windows need only the equal-width figures.
WINDOW_FINE_BINS = 16
#: The figures a window's intervals are computed for.
WINDOW_METRICS = ("accuracy", "ece", "confidence_gap")
#: Simulations of a window's noise floor (the large-sample method: cheap per window).
NOISE_SIMULATIONS = 200

NS_PER_SECOND = 10**9
_UNITS = {"H": 3600 * NS_PER_SECOND, "D": 86400 * NS_PER_SECOND, "W": 7 * 86400 * NS_PER_SECOND}
_WINDOW_PATTERN = re.compile(r"([1-9][0-9]{0,6})([HDW])", re.IGNORECASE)
EXPECTED_WINDOW = "expected a whole number of hours, days or weeks such as 12H, 1D, 7D, 30D or 1W"
EXPECTED_TIME = ("expected an ISO-8601 date or time such as 2026-11-02 or 2026-11-02T10:30:00, "
                 "optionally with Z or an offset such as +02:00")
#: Nanoseconds per unit of an Arrow timestamp, date32 (days) and date64 (milliseconds).
_NS_PER = {"s": NS_PER_SECOND, "ms": 10**6, "us": 10**3, "ns": 1}
_DAY_NS = 86400 * NS_PER_SECOND
_INT64_MAX = np.iinfo(np.int64).max
#: Bounds accepted for --since / --until: within what int64 nanoseconds hold.
EARLIEST, LATEST = np.datetime64("1677-09-22"), np.datetime64("2262-04-11")
#: A zone designator after a time of day (``Z``, ``+02:00``, ``+0200``, ``+02``).
_ZONE_PATTERN = r"[T ]\d{2}(?::?\d{2}){0,2}(?:\.\d+)?(?:Z|[+-]\d{2}(?::?\d{2})?)$"


# ------------------------------------------------------------------ window sizes


def parse_window(text: str) -> np.timedelta64:
    """``"7D"`` -> ``numpy.timedelta64`` in nanoseconds. ``<n>H``, ``<n>D``, ``<n>W``
    (any case, at most :data:`MAX_WINDOW_DAYS` days); :class:`UsageError` naming the
    value otherwise."""
    match = _WINDOW_PATTERN.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise UsageError(f"--window is {one_line(str(text))!r}; {EXPECTED_WINDOW}")
    ns = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if ns > MAX_WINDOW_DAYS * _UNITS["D"]:
        raise UsageError(f"--window is {text.strip()!r}; expected at most {MAX_WINDOW_DAYS:,} days")
    return np.timedelta64(ns, "ns")


def format_window(size: np.timedelta64) -> str:
    """A window size as :func:`parse_window` reads it: ``7D``, ``12H``."""
    ns = _ns(size)
    if ns % _UNITS["D"] == 0:
        return f"{ns // _UNITS['D']}D"
    if ns % _UNITS["H"] == 0:
        return f"{ns // _UNITS['H']}H"
    return f"{ns / NS_PER_SECOND:g}s"


def _ns(size: np.timedelta64) -> int:
    ns = int(np.timedelta64(size, "ns").astype(np.int64))
    if ns <= 0:
        raise UsageError(f"a window must be longer than 0; {EXPECTED_WINDOW}")
    return ns


# ------------------------------------------------------------------ instants


def parse_instant(value: Any, *, option: str = "--since") -> np.datetime64 | None:
    """A bound of ``--since`` / ``--until`` as ``numpy.datetime64`` nanoseconds (UTC).

    ``None`` stays ``None``; a :class:`datetime.datetime` without a time zone, a
    :class:`datetime.date` (midnight), a ``numpy.datetime64`` and ISO-8601 text without
    an offset are UTC; an aware datetime or text with an offset is converted.
    :class:`UsageError` naming ``option`` and the value otherwise.
    """
    if value is None:
        return None
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise UsageError(f"{option} is NaT; {EXPECTED_TIME}")
        return _checked_instant(value, option)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return _checked_instant(np.datetime64(value), option)
    if isinstance(value, date):
        return _checked_instant(np.datetime64(value.isoformat(), "D"), option)
    if isinstance(value, str):
        import pyarrow as pa

        text = pa.array([value.strip()], pa.string())
        try:
            ns = _parse_texts(text)
        except _Unparsable:
            if _parses_in_seconds(text):  # a real time, outside what nanoseconds hold
                raise UsageError(f"{option} is {one_line(value)!r}, outside the times calaudit holds; expected a "
                                 f"time from {EARLIEST} to {LATEST}") from None
            raise UsageError(f"{option} is {one_line(value)!r}; {EXPECTED_TIME}") from None
        return _checked_instant(np.datetime64(int(ns[0]), "ns"), option, shown=one_line(value))
    raise UsageError(f"{option} is {one_line(repr(value))}; {EXPECTED_TIME}")


def _parses_in_seconds(text: Any) -> bool:
    """Whether one ISO-8601 text is a time at all (years 1 to 9999, with or without an
    offset), read in seconds: a time that nanoseconds cannot hold still parses."""
    import pyarrow as pa

    return any(_cast(text, target) is not None for target in (pa.timestamp("s"), pa.timestamp("s", "UTC")))


def _checked_instant(value: np.datetime64, option: str, shown: str | None = None) -> np.datetime64:
    if not EARLIEST <= value < LATEST:  # numpy compares across units exactly
        what = f"{shown!r}, outside the times calaudit holds" if shown is not None else str(value)
        raise UsageError(f"{option} is {what}; expected a time from {EARLIEST} to {LATEST}")
    return value.astype("datetime64[ns]")


def format_instant(ns: int | np.datetime64 | None) -> str | None:
    """Nanoseconds since the epoch as ISO-8601 UTC text (``2026-11-02T00:00:00Z``;
    fractions of a second only when there are some)."""
    if ns is None:
        return None
    value = ns.astype("datetime64[ns]") if isinstance(ns, np.datetime64) else np.datetime64(int(ns), "ns")
    text = str(value)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "Z"


def _instant_ns(value: np.datetime64 | None) -> int | None:
    return None if value is None else int(value.astype("datetime64[ns]").astype(np.int64))


# ------------------------------------------------------------------ the time column


def _decoded_type(arrow_type: Any) -> Any:
    import pyarrow as pa

    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


def check_time_type(file: str, column: str, arrow_type: Any) -> None:
    """:class:`InvalidInputError` naming the file and column when a time column's Arrow
    type is not a timestamp, a date or text (numbers are refused: their unit is unknown)."""
    import pyarrow as pa

    value_type = _decoded_type(arrow_type)
    if (pa.types.is_timestamp(value_type) or pa.types.is_date(value_type) or pa.types.is_string(value_type)
            or pa.types.is_large_string(value_type)):
        return
    raise InvalidInputError(
        f"{file}: column {one_line(column)} (--time-col) holds {arrow_type}; expected timestamps, dates or "
        "ISO-8601 text (a number's unit is unknown: write it as a timestamp)"
    )


def time_filter(column: str, arrow_type: Any, since: np.datetime64 | None, until: np.datetime64 | None) -> Any:
    """The ``pyarrow.dataset`` expression ``since <= column < until`` in the column's own
    type, or ``None`` when there is no bound or the column is text (ISO-8601 text has no
    order the Parquet statistics can use: its rows are filtered after reading).

    For a timestamp of unit ``u`` (or dates), ``t >= since`` is exactly
    ``t_u >= ceil(since / u)`` and ``t < until`` is ``t_u < ceil(until / u)``, so the
    expression selects exactly the rows the audit keeps.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    since_ns, until_ns = _instant_ns(since), _instant_ns(until)
    if since_ns is None and until_ns is None:
        return None
    value_type = _decoded_type(arrow_type)
    per_unit = _ns_per_unit(value_type)
    if per_unit is None:
        return None
    if pa.types.is_dictionary(arrow_type):
        return None  # comparisons on dictionary columns are not pushed into the statistics
    field = ds.field(column)
    parts = []
    if since_ns is not None:
        parts.append(field >= _scalar(-(-since_ns // per_unit), value_type))
    if until_ns is not None:
        parts.append(field < _scalar(-(-until_ns // per_unit), value_type))
    return parts[0] if len(parts) == 1 else parts[0] & parts[1]


def _ns_per_unit(value_type: Any) -> int | None:
    """Nanoseconds in one stored unit of a timestamp or date type, else ``None``."""
    import pyarrow as pa

    if pa.types.is_timestamp(value_type):
        return _NS_PER[value_type.unit]
    if pa.types.is_date32(value_type):
        return _DAY_NS
    if pa.types.is_date64(value_type):
        return _NS_PER["ms"]
    return None


def _scalar(units: int, value_type: Any) -> Any:
    """A bound in the column's own unit and type (a timestamp keeps its time zone:
    Arrow compares timestamps only with the same zoning)."""
    import pyarrow as pa

    return pa.scalar(units, type=value_type)


def read_times(array: Any, *, where: Callable[[int], str]) -> np.ndarray:
    """A time column's values as int64 nanoseconds since the epoch (UTC), vectorised.

    ``array`` is an Arrow array or chunked array of a type :func:`check_time_type`
    accepts; ``where(i)`` describes row ``i`` for messages (``"file: row group 2, row 5
    (row 15 of the file), column ts"``). Raises one :class:`InvalidInputError` line for
    the first null or empty value, unparsable text, or a time outside what int64
    nanoseconds hold.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if array.null_count:
        row = int(np.argmax(array.is_null().to_numpy(zero_copy_only=False)))
        raise InvalidInputError(f"{where(row)}: no time (null); expected a time on every row (--time-col)")
    value_type = array.type
    if pa.types.is_string(value_type) or pa.types.is_large_string(value_type):
        texts = pc.utf8_trim_whitespace(array)
        empty = pc.equal(pc.utf8_length(texts), 0).to_numpy(zero_copy_only=False)
        if empty.any():
            row = int(np.argmax(empty))
            raise InvalidInputError(f"{where(row)}: no time (empty text); expected a time on every row (--time-col)")
        try:
            return _parse_texts(texts)
        except _Unparsable as bad:
            value = array[bad.row].as_py()
            raise InvalidInputError(f"{where(bad.row)}: value {show(value)} is not a time we can read; "
                                    f"{EXPECTED_TIME}, from 1677-09-21 to 2262-04-11") from None
    per_unit = _ns_per_unit(value_type)
    if per_unit is None:  # open_prediction_dataset checked the type; a bug otherwise
        raise TypeError(f"read_times: unsupported type {value_type}")
    units = array.view(pa.int32() if pa.types.is_date32(value_type) else pa.int64())
    units = units.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    limit = _INT64_MAX // per_unit
    outside = (units > limit) | (units < -limit)
    if outside.any():
        row = int(np.argmax(outside))
        raise InvalidInputError(f"{where(row)}: value {array[row]} is outside the times calaudit holds; "
                                "expected a time from 1677-09-21 to 2262-04-11")
    return units * per_unit if per_unit != 1 else units.copy()


class _Unparsable(Exception):
    def __init__(self, row: int) -> None:
        super().__init__(row)
        self.row = row


def _parse_texts(texts: Any) -> np.ndarray:
    """ISO-8601 texts (trimmed, no nulls) as int64 nanoseconds (UTC), by Arrow's cast:
    all without an offset (read as UTC), all with one, or both (parsed apart by
    whether a zone follows the time of day). :class:`_Unparsable` names the first bad row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    naive, aware = pa.timestamp("ns"), pa.timestamp("ns", "UTC")
    for target in (naive, aware):
        parsed = _cast(texts, target)
        if parsed is not None:
            return parsed
    zoned = pc.match_substring_regex(texts, _ZONE_PATTERN).to_numpy(zero_copy_only=False)
    out = np.empty(len(texts), dtype=np.int64)
    for mask, target in ((zoned, aware), (~zoned, naive)):
        rows = np.flatnonzero(mask)
        if not rows.size:
            continue
        part = texts.take(pa.array(rows))
        parsed = _cast(part, target)
        if parsed is None:
            raise _Unparsable(int(rows[_first_unparsable(part, target)]))
        out[rows] = parsed
    return out


def _cast(texts: Any, target: Any) -> np.ndarray | None:
    import pyarrow as pa

    try:
        return texts.cast(target).view(pa.int64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _first_unparsable(texts: Any, target: Any) -> int:
    """The first text that does not cast, by bisection (error path only: O(n log n))."""
    low, high = 0, len(texts)  # the first failure is in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if _cast(texts.slice(low, middle - low), target) is not None:
            low = middle
        else:
            high = middle
    return low


# ------------------------------------------------------------------ accumulation


class WindowStatistics:
    """Per-window :class:`StreamStatistics` of a time-stamped stream of predictions.

    ``size`` is a window length (:func:`parse_window`); ``n_bins`` the audit's
    equal-width bins. :meth:`add` takes one batch of rows with their times;
    :meth:`observe` wraps an iterator of :class:`calaudit.engine.scan.Batch` es and adds
    each as it passes, so one read feeds both the whole audit and its windows.
    Instances pickle (a Dask task may return one) and merge by window.
    """

    def __init__(
        self, size: np.timedelta64, *, n_bins: int = DEFAULT_N_BINS, fine_bins: int = WINDOW_FINE_BINS,
        max_windows: int = MAX_WINDOWS, max_bytes: int = MAX_WINDOW_BYTES,
    ) -> None:
        self.size_ns = _ns(size)
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
        """Add a :class:`calaudit.engine.scan.Batch` read with a time column."""
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
    since_ns, until_ns = _instant_ns(since), _instant_ns(until)
    if since_ns is not None:
        start = max(start, since_ns)
    if until_ns is not None:
        end = min(end, until_ns)
    return start, min(end, _INT64_MAX)


def window_results(
    acc: WindowStatistics, *, resamples: int, seed: int = 0, level: float = 0.95, min_rows: int = MIN_WINDOW_ROWS,
    since: np.datetime64 | None = None, until: np.datetime64 | None = None,
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
    mostly this chance part, which the report says.
    """
    out = []
    for index, stats in acc.items():
        start, end = _period(acc, index, since, until)
        summary = _summary(stats, resamples=resamples, seed=_window_seed(seed, index), level=level,
                           min_rows=min_rows)
        out.append({"start": format_instant(start), "end": format_instant(end), **summary})
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
    return {"column": column, "size": format_window(size), "size_seconds": _ns(size) / NS_PER_SECOND,
            "since": format_instant(_instant_ns(since)), "until": format_instant(_instant_ns(until)),
            "aligned_to": "1970-01-01T00:00:00Z", "min_rows": MIN_WINDOW_ROWS}


def window_extras(
    acc: WindowStatistics, *, column: str, since: np.datetime64 | None = None, until: np.datetime64 | None = None,
    resamples: int, seed: int = 0, level: float = 0.95,
) -> dict[str, Any]:
    """What a windowed audit adds to :attr:`calaudit.result.AuditResult.extras`::

        {"windows": window_results(...),
         "window": {**window_settings(...), "resamples": ..., "level": ..., "change": window_change(...)}}

    (``windows`` and ``window`` are top-level keys of the JSON; ``level`` is ``None``
    without resampling)."""
    return {
        "windows": window_results(acc, resamples=resamples, seed=seed, level=level, since=since, until=until),
        "window": {**window_settings(column=column, size=acc.size, since=since, until=until),
                   "resamples": int(resamples), "level": level if resamples > 0 else None,
                   "change": window_change(acc, resamples=resamples, seed=seed, level=level, since=since,
                                           until=until)},
    }
