"""Facts about input files: their digest, whether they can be read at all (symlink loops,
permissions, a directory for a file), and what is wrong with text that is not UTF-8."""

from __future__ import annotations

import codecs
import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..errors import InvalidInputError

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


def read_errors() -> tuple[type[BaseException], ...]:
    """What reading a file can raise when the file is damaged: ``OSError`` (an I/O error;
    ``gzip.BadGzipFile``, a failed CRC check), ``EOFError`` (a truncated gzip stream),
    ``zlib.error`` (a corrupt deflate stream)."""
    import zlib

    return (OSError, EOFError, zlib.error)


def unreadable(path: Path | str, exc: BaseException, *, compressed: bool = False) -> InvalidInputError:
    """The one-line error for a file that could not be read to the end (:func:`read_errors`):
    a damaged gzip stream says so, whatever reading step met it."""
    import gzip

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, gzip.BadGzipFile) and text.startswith("Not a gzipped file"):
        return InvalidInputError(
            f"{path}: not gzip-compressed ({text}); a .gz file must be gzip-compressed: rename it without .gz if "
            "it is plain text"
        )
    if (compressed and not isinstance(exc, OSError)) or isinstance(exc, gzip.BadGzipFile):
        return InvalidInputError(
            f"{path}: truncated or corrupt gzip stream ({text}); expected a complete gzip-compressed file "
            "(was the download or copy cut short?)"
        )
    return InvalidInputError(f"{path}: cannot read the file ({text})")


def gzip_problem(path: Path) -> InvalidInputError | None:
    """The :func:`unreadable` error of a gzip file that does not decompress to its end
    (read through once, nothing kept: for error paths), else ``None``."""
    import gzip

    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(_CHUNK):
                pass
    except read_errors() as exc:
        return unreadable(path, exc, compressed=True)
    return None


def first_invalid_utf8(path: Path, *, compressed: bool = False) -> tuple[int, int, bytes] | None:
    """``(line, byte offset, offending bytes)`` of the first invalid UTF-8 sequence.

    Used only after a decoding error, to point the user at the place; ``None`` when
    the whole file decodes. A file that cannot be read to the end (a gzip stream that
    is corrupt, or fails its CRC check) raises :class:`InvalidInputError` saying so.
    """
    import gzip
    import zlib

    opener = gzip.open if compressed else open
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    try:
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
    except (OSError, EOFError, zlib.error) as exc:
        raise unreadable(path, exc, compressed=compressed) from None
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return line, offset, exc.object[exc.start : exc.end]
    return None


# ------------------------------------------------------------------ paths users give


def path_problem(path: Path, *, want_dir: bool = False, missing: str | None = None) -> str | None:
    """Why ``path`` cannot be read as a file (or, with ``want_dir``, listed as a directory).

    ``None`` when it can; otherwise a short reason for an error message: no such file,
    a broken or looping symbolic link, permission denied, or a directory where a file
    is expected (and the reverse); ``missing`` replaces "no such file" (or directory).
    ``os.stat`` is used directly because ``Path.exists()`` reports a symlink loop as a
    missing file and ``Path.is_file()`` raises on a permission error.
    """
    import errno
    import os
    import stat

    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop (the link leads, directly or through other links, back to itself)"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            if os.path.islink(path):
                return f"broken symbolic link (it points to {os.readlink(path)!r}, which does not exist)"
            return missing or ("no such directory" if want_dir else "no such file")
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission denied (calaudit needs to read it)"
        return f"cannot be read ({exc.strerror or exc})"
    if want_dir and not stat.S_ISDIR(info.st_mode):
        return "is a file, not a directory"
    if not want_dir and stat.S_ISDIR(info.st_mode):
        return "is a directory, not a file"
    try:
        if want_dir:
            with os.scandir(path):
                pass
        else:
            os.close(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)))  # a FIFO must not block
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission denied (calaudit needs to read it)"
        return f"cannot be read ({exc.strerror or exc})"
    return None


def file_present(path: Path) -> bool:
    """Whether an optional file (``classes.txt``, ``labels.npy``, ...) is there to read.

    ``False`` when nothing is at ``path``; raises :class:`InvalidInputError` naming the
    file when something is there but cannot be read as a file (a directory, a
    symlink loop, a broken link, no permission), instead of silently ignoring it.
    """
    import os

    if not os.path.lexists(path):
        return False
    problem = path_problem(path)
    if problem is not None:
        raise InvalidInputError(f"{path}: {problem}; expected a file")
    return True


def require_file(path: Path, expected: str) -> None:
    """Raise :class:`InvalidInputError` unless ``path`` is a readable file."""
    problem = path_problem(path)
    if problem is not None:
        raise InvalidInputError(f"{path}: {problem}; expected {expected}")


# ------------------------------------------------------------------ text encodings


def read_head(path: Path, size: int = 4096, *, compressed: bool = False) -> bytes:
    """The first ``size`` bytes of a file (decompressed for gzip); ``b""`` when unreadable."""
    import gzip
    import zlib

    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as handle:
            return handle.read(size)
    except (OSError, EOFError, zlib.error):  # zlib.error: a corrupt deflate stream
        return b""


def utf16_problem(head: bytes) -> str | None:
    """``"looks UTF-16 ..."`` when the first bytes of a text file say it is UTF-16 (or -32).

    A byte-order mark ``FF FE`` / ``FE FF`` says so outright; without one, text that is
    mostly ASCII encoded as UTF-16 has a NUL in every other byte (and would otherwise
    decode as UTF-8 full of NUL characters).
    """
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "it looks UTF-32 (it starts with a UTF-32 byte-order mark)"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "it looks UTF-16 (it starts with a UTF-16 byte-order mark)"
    sample = head[: len(head) - len(head) % 2]
    if len(sample) >= 4:
        nul_even, nul_odd = sample[0::2].count(0), sample[1::2].count(0)
        if max(nul_even, nul_odd) >= 0.4 * (len(sample) // 2):
            return "it looks UTF-16 without a byte-order mark (every other byte is NUL)"
    return None
