"""No output of a run may replace one of its inputs, or another of its outputs.

Checked before any work starts (a refused path costs nothing), from the paths as the
writes will resolve them (:func:`calaudit.files.atomic.output_destination`): a symlink
pointing at the prediction file counts as the prediction file, a hard link as the
file it links. A data directory protects everything inside it: an output there would
overwrite a data file or, in an image folder, become a new "class" on the next run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import UsageError
from .atomic import output_destination

#: ``(what it is, path)``: "the prediction file", "the data directory", ...
Named = tuple[str, "str | Path"]


def check_output_paths(outputs: Iterable[Named], inputs: Iterable[Named | tuple[str, None]]) -> None:
    """Raise :class:`UsageError` (exit 2) when an output would replace an input or another output.

    ``outputs`` are ``(option, path)`` pairs (``"-"`` for standard output is skipped);
    ``inputs`` are ``(description, path)`` pairs, ``None`` paths skipped.
    """
    protected = [(what, Path(path)) for what, path in inputs if path is not None]
    seen: dict[Path, str] = {}
    for option, path in outputs:
        if path is None or str(path) == "-":
            continue
        destination, how = output_destination(path)
        if how == "stream":
            continue  # a device or a pipe: written through, never replaced
        for what, source in protected:
            if _covers(source, destination):
                inside = source.is_dir()
                relation = f"is inside {what} {source}" if inside else f"would overwrite {what} {source}"
                raise UsageError(
                    f"{option} {path}: {relation}; calaudit never writes over its inputs (choose another path)"
                )
        key = Path(os.path.normcase(destination))
        if key in seen:
            raise UsageError(f"{option} {path}: {seen[key]} writes the same file; give each output its own path")
        seen[key] = option


def _covers(source: Path, destination: Path) -> bool:
    """Whether writing ``destination`` would touch the input ``source`` (a file or a directory)."""
    real = Path(os.path.realpath(source))
    if real.is_dir():
        return destination == real or real in destination.parents
    if destination == real:
        return True
    try:
        return destination.exists() and real.exists() and os.path.samefile(destination, real)
    except OSError:
        return False


def out_dir_files(out_dir: str | Path | None, names: Sequence[str]) -> list[Named]:
    """The files ``--out-dir`` writes, as ``(option, path)`` pairs."""
    if out_dir is None:
        return []
    return [("--out-dir", Path(out_dir) / name) for name in names]
