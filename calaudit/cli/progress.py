"""Progress on a terminal for steps whose length is known only once they start."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def lazy_progress(options: dict[str, Any], label: str) -> Iterator[Callable[[int, int], None]]:
    """A ``(done, total)`` callback that draws click's progress bar on stderr when it is a
    terminal and ``--quiet`` is not given (:func:`calaudit.cli.stream.progress_bar`).
    The bar is made at the first call, once the total is known; a call with another
    total (the next step) starts a new bar."""
    from .stream import progress_bar

    shown: list[Any] = []  # [bar, total, done]

    def close() -> None:
        if shown:
            shown[0].__exit__(None, None, None)
            shown.clear()

    def update(done: int, total: int) -> None:
        if not shown or shown[1] != total:
            close()
            shown.extend([progress_bar(options, total, label), total, 0])
            shown[0].__enter__()
        shown[0].update(done - shown[2])
        shown[2] = done

    try:
        yield update
    finally:
        close()
