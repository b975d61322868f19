"""Facts about input files: their digest, and where a byte sequence stops being UTF-8."""

from __future__ import annotations

import codecs
import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Digests:
    """SHA-256 digests computed on a background thread.

    hashlib releases the GIL while it hashes, so data files are hashed while the
    model runs instead of before it; :meth:`result` waits for them (provenance is
    only written after inference).
    """

    def __init__(self) -> None:
        self._futures: dict[str, Future[str]] = {}

    def add(self, name: str, path: Path) -> None:
        self._futures[name] = _executor().submit(sha256_of, path)

    def result(self) -> dict[str, str]:
        return {name: future.result() for name, future in self._futures.items()}


_EXECUTOR: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="calaudit-sha256")
    return _EXECUTOR


def first_invalid_utf8(path: Path, *, compressed: bool = False) -> tuple[int, int, bytes] | None:
    """``(line, byte offset, offending bytes)`` of the first invalid UTF-8 sequence.

    Used only after a decoding error, to point the user at the place; ``None`` when
    the whole file decodes.
    """
    import gzip

    opener = gzip.open if compressed else open
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    with opener(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                # The decoder may hold back the start of a sequence from the previous
                # chunk; exc.object is what it tried to decode.
                held = len(exc.object) - len(chunk)
                start = exc.start - held
                line += chunk.count(b"\n", 0, max(start, 0))
                return line, offset + start, exc.object[exc.start : exc.end]
            line += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return line, offset, exc.object[exc.start : exc.end]
    return None
