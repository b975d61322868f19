"""Writing an output safely: a reader sees the old file or the complete new one, never half,
and nothing but the named file is ever replaced.

* A regular file (or a path that does not exist yet) is written through a temporary
  file in the same directory, then renamed over the destination.
* A symbolic link is followed: its target is written atomically; the link stays.
* A character device or a FIFO (``/dev/null``, ``/dev/stdout``, a named pipe) is
  written through, as a shell redirection would: renaming over it would replace the
  device node with a regular file (as root, ``--json /dev/null`` would destroy it).
  Anything under ``/dev`` or ``/proc`` is opened as given, never renamed over.
* A directory, a block device or a socket is refused (exit 2).

Failing to create the output (no such directory, permission denied, a symlink loop)
is a usage error (exit 2: choose another path); failing while writing the bytes
(disk full, an I/O error) is :class:`OutputWriteError` (exit 3).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from ..errors import OutputWriteError, UsageError

#: Write errors that say the data could not be stored, not that the path was wrong.
_WRITE_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EPIPE}
#: Paths opened as given: devices, /dev/stdout, /dev/fd/N, /proc/self/fd/N.
_PASS_THROUGH_ROOTS = ("/dev/", "/proc/")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def output_error(path: Path, exc: OSError, *, writing: bool) -> Exception:
    """The one-line error of an output ``path`` that ``exc`` kept from being written: a
    full disk or an I/O error while ``writing`` is a file problem (exit 3), anything else
    a place that cannot be written to (exit 2)."""
    if writing and exc.errno in _WRITE_FAILURES:
        return OutputWriteError(f"{path}: cannot write the output ({_reason(exc)})")
    return UsageError(f"{path}: cannot write here ({_reason(exc)})")


def output_destination(path: str | Path) -> tuple[Path, str]:
    """Where writing ``path`` really goes and how: ``(destination, "replace" | "stream")``.

    Symbolic links are resolved (their target is what gets written); a special file is
    streamed into. Raises :class:`UsageError` for a symlink loop, a directory, a block
    device or a socket.
    """
    path = Path(path)
    if os.path.abspath(path).startswith(_PASS_THROUGH_ROOTS):
        kind = _kind(path)
        if kind in ("directory", "block device", "socket"):
            raise UsageError(f"{path}: is a {kind}; expected a file to write the output to")
        return path, "stream"
    try:
        destination = Path(os.path.realpath(path, strict=False))
        os.stat(path)  # raises ELOOP for a symlink loop; ENOENT is fine (a new file)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{path}: symlink loop; expected a file to write the output to") from None
        if exc.errno != errno.ENOENT:
            raise output_error(path, exc, writing=False) from None
    kind = _kind(destination)
    if kind in ("directory", "block device", "socket"):
        raise UsageError(f"{path}: is a {kind}; expected a file to write the output to")
    if kind in ("character device", "fifo"):
        return destination, "stream"
    return destination, "replace"


def _kind(path: Path) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "file"


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` (see the module docstring for links and special files).

    Parent directories are created. Returns the path as given.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    destination, how = output_destination(path)
    if how == "stream":
        _stream(path, destination, payload)
    else:
        _replace(path, destination, payload)
    return path


def _stream(shown: Path, destination: Path, payload: bytes) -> None:
    try:
        handle = open(destination, "wb")  # noqa: SIM115 - closed below, errors mapped
    except OSError as exc:
        raise output_error(shown, exc, writing=False) from None
    try:
        with handle:
            handle.write(payload)
            handle.flush()
    except OSError as exc:
        raise output_error(shown, exc, writing=True) from None


def _replace(shown: Path, destination: Path, payload: bytes) -> None:
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    except OSError as exc:
        raise output_error(shown, exc, writing=False) from None
    try:
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise output_error(shown, exc, writing=True) from None
        try:
            mode = stat.S_IMODE(os.stat(destination).st_mode)  # an existing file keeps its mode
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # mkstemp creates the file 0600; a new file gets a normal mode
        try:
            os.chmod(temporary, mode)
            os.replace(temporary, destination)
        except OSError as exc:
            raise output_error(shown, exc, writing=False) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
