"""Facts about input files: their digest, and where a byte sequence stops being UTF-8."""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
