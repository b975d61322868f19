"""Progress on a terminal for long steps: fitting baselines, resampling, searching segments.

The library never imports the CLI: its long steps take an optional
``progress(label, done, total)`` callback (:data:`Progress`) and call it as they go; the
commands pass :func:`step_progress`'s, which draws click's progress bar on stderr when
stderr is a terminal and ``--quiet`` is not given, and does nothing otherwise. Nothing
goes to stdout, so ``--json -`` stays a clean document.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import monotonic
from typing import Any

#: ``progress(label, done, total)``: ``done`` of ``total`` units of the step ``label``.
Progress = Callable[[str, int, int], None]
#: A step's bar appears once the step has run this long (seconds): a step that ends
#: sooner prints nothing, so a quick run stays as quiet as before.
SHOW_AFTER = 0.5
#: The callback of the outermost open :func:`step_progress`, shared by nested ones.
_ACTIVE: list[Progress] = []


def shows_progress(options: dict[str, Any]) -> bool:
    """Bars are drawn on a terminal's stderr only, and never with ``--quiet``."""
    return not options.get("quiet") and sys.stderr.isatty()


@contextmanager
def step_progress(options: dict[str, Any]) -> Iterator[Progress]:
    """A :data:`Progress` callback for the command's long steps.

    One bar at a time, on stderr: a call with another label or total than the last
    (the next step) closes the bar of the last and starts the next one's clock. A
    step's bar is drawn only once it has run :data:`SHOW_AFTER` seconds, and then
    shows the units done so far. Off a terminal, or with ``--quiet``, it does nothing.
    Inside another ``step_progress`` (a model run inside ``compare``) it yields the
    outer one's callback, so two bars never interleave."""
    if _ACTIVE:
        yield _ACTIVE[-1]
        return
    if not shows_progress(options):
        yield _ignore
        return
    import click

    state: dict[str, Any] = {"key": None, "started": 0.0, "bar": None, "shown": 0}

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
        state.update(key=None, bar=None, shown=0)

    def update(label: str, done: int, total: int) -> None:
        if total <= 0:
            return
        if state["key"] != (label, total) or done < state["shown"]:  # the next step
            close()
            state.update(key=(label, total), started=monotonic())
        if state["bar"] is None:
            if monotonic() - state["started"] < SHOW_AFTER:
                return
            state["bar"] = click.progressbar(length=total, label=label, file=sys.stderr)
            state["bar"].__enter__()
        step = min(done, total) - state["shown"]
        if step > 0:
            state["bar"].update(step)
            state["shown"] += step

    _ACTIVE.append(update)
    try:
        yield update
    finally:
        _ACTIVE.pop()
        close()


def _ignore(label: str, done: int, total: int) -> None:
    return None


def labelled(progress: Progress | None, prefix: str) -> Progress | None:
    """``progress`` with every label led by ``prefix`` (``compare``: the model's name)."""
    if progress is None:
        return None
    return lambda label, done, total: progress(f"{prefix}: {label[:1].lower()}{label[1:]}", done, total)

