"""Time in a prediction log: window sizes, ``--since`` / ``--until`` instants, and the
time column (docs/metrics.md, section 15; the rules are in the docstring of
:mod:`calaudit.engine.windows`).

A time column holds Parquet timestamps (any unit; with a time zone they are instants,
without one they are read as UTC), dates (midnight UTC), or ISO-8601 text. Every time
is held as int64 nanoseconds since 1970-01-01T00:00:00Z; a time outside what they hold,
a null, an empty text or a text that is no ISO-8601 time is an error naming the file,
the row group and the row (:func:`read_times`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UsageError, one_line, show

__all__ = [
    "EXPECTED_TIME", "EXPECTED_WINDOW", "check_time_type", "format_instant", "format_window", "instant_ns",
    "parse_instant", "parse_window", "read_times", "size_ns", "time_filter",
]

#: Longest window accepted (about 100 years).
MAX_WINDOW_DAYS = 36_525
NS_PER_SECOND = 10**9
_UNITS = {"H": 3600 * NS_PER_SECOND, "D": 86400 * NS_PER_SECOND, "W": 7 * 86400 * NS_PER_SECOND}
_WINDOW_PATTERN = re.compile(r"([1-9][0-9]{0,6})([HDW])", re.IGNORECASE)
EXPECTED_WINDOW = "expected a whole number of hours, days or weeks such as 12H, 1D, 7D, 30D or 1W"
EXPECTED_TIME = ("expected an ISO-8601 date or time such as 2026-11-02 or 2026-11-02T10:30:00, "
                 "optionally with Z or an offset such as +02:00")
#: Nanoseconds per unit of an Arrow timestamp, date32 (days) and date64 (milliseconds).
_NS_PER = {"s": NS_PER_SECOND, "ms": 10**6, "us": 10**3, "ns": 1}
_DAY_NS = 86400 * NS_PER_SECOND
INT64_MAX = np.iinfo(np.int64).max
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
    ns = size_ns(size)
    if ns % _UNITS["D"] == 0:
        return f"{ns // _UNITS['D']}D"
    if ns % _UNITS["H"] == 0:
        return f"{ns // _UNITS['H']}H"
    return f"{ns / NS_PER_SECOND:g}s"


def size_ns(size: np.timedelta64) -> int:
    """A window size in nanoseconds, refused unless longer than 0."""
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


def instant_ns(value: np.datetime64 | None) -> int | None:
    """An instant as int64 nanoseconds since the epoch (``None`` stays ``None``)."""
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

    since_ns, until_ns = instant_ns(since), instant_ns(until)
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
    limit = INT64_MAX // per_unit
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
