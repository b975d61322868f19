"""The memory budget that decides whether a prediction file is audited in memory or
streamed (``--memory-limit``).

An in-memory audit holds the ``N x K`` probability matrix in float64 and, at its
peak (validation, the metric suite, the bootstrap), about three times that
(:data:`PEAK_FACTOR`). A file whose estimated peak is above the budget is streamed
(:mod:`calaudit.engine.stream`), whose memory does not grow with ``N``.

The estimate is read without decoding the file: a Parquet footer gives the rows and
columns exactly; a CSV's rows are estimated from its size (:data:`CSV_BYTES_PER_VALUE`
bytes of text per value, a low guess, so a large CSV errs towards streaming), and a
gzip file's from its size times :data:`GZIP_RATIO`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import UsageError

#: An in-memory audit's peak over the float64 probability matrix it holds.
PEAK_FACTOR = 3
#: Default budget: this share of the machine's physical memory.
DEFAULT_SHARE = 0.25
#: Bytes of CSV text per probability value assumed by the estimate ("0.123456," is 9).
CSV_BYTES_PER_VALUE = 8
#: Assumed compression ratio of a .csv.gz prediction file.
GZIP_RATIO = 4

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20,
          "MIB": 1 << 20, "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
EXPECTED_SIZE = "expected a size such as 8GB, 512MB or 2.5G, or a share of this machine's memory such as 25%"


def machine_memory() -> int | None:
    """Physical memory of this machine in bytes, or ``None`` where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def default_memory_limit() -> int:
    """A quarter of this machine's memory (4 GiB where it cannot be read)."""
    total = machine_memory()
    return int(total * DEFAULT_SHARE) if total else 4 << 30


def parse_memory_limit(text: str) -> int:
    """``8GB``, ``512MB``, ``2.5G``, ``1048576`` (bytes) or ``25%`` (of this machine's
    memory) -> bytes; binary units (1 GB = 2**30 bytes). ``UsageError`` otherwise."""
    try:
        return memory_size(text)
    except ValueError as exc:
        raise UsageError(f"--memory-limit {exc}") from None


def memory_size(text: str) -> int:
    """:func:`parse_memory_limit` raising ``ValueError("'<text>': <what is expected>")``."""
    value = str(text).strip()
    if value.endswith("%"):
        try:
            share = float(value[:-1])
        except ValueError:
            share = -1.0
        if not 0.0 < share <= 100.0:
            raise ValueError(f"{text!r}: a share must be above 0% and at most 100%; {EXPECTED_SIZE}")
        total = machine_memory()
        if total is None:
            raise ValueError(f"{text!r}: this machine does not report its memory; give a size "
                             "such as 8GB")
        return max(1, int(total * share / 100.0))
    match = _SIZE.match(value)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r}: {EXPECTED_SIZE}")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise ValueError(f"{text!r}: must be at least 1 byte; {EXPECTED_SIZE}")
    return size


def format_size(count: int) -> str:
    """``count`` bytes for a message: ``3.2 GB``, ``512.0 MB``, ``900 bytes``."""
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def estimated_audit_bytes(path: Path) -> int | None:
    """The estimated peak memory of an in-memory audit of prediction file ``path``
    (module docstring), or ``None`` when it cannot be told (not a file, unreadable
    footer: the loader then reports the problem itself)."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if not path.is_file():
        return None
    name = path.name.lower()
    if name.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq

            metadata = pq.ParquetFile(path).metadata
        except Exception:  # noqa: BLE001 - the loader gives the one-line error
            return None
        return int(metadata.num_rows) * max(int(metadata.num_columns), 2) * 8 * PEAK_FACTOR
    if name.endswith(".csv.gz"):
        return size * GZIP_RATIO // CSV_BYTES_PER_VALUE * 8 * PEAK_FACTOR
    if name.endswith(".csv"):
        return size // CSV_BYTES_PER_VALUE * 8 * PEAK_FACTOR
    return None
