"""Which of ``calaudit compare``'s inputs hold logits.

``--logits`` says every input does (as it says of the one input of ``run``);
``--logits-for NAME`` (repeatable) names the inputs that do, by display name
(``--name``, else the file's stem), file name or path as typed. Declared logits that
are probabilities already are refused (exit 2, :func:`calaudit.predictions.validation.refuse_probabilities_as_logits`):
:func:`compare_remedy` words the way out for the option that declared them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import ProbabilitiesAsLogitsError, UsageError, one_line


def logits_per_input(ctx: click.Context, options: dict[str, Any], paths: Sequence[Path],
                     names: Sequence[str]) -> tuple[list[bool], bool]:
    """Whether each input holds logits, and whether they came from ``--logits`` (every
    input) rather than ``--logits-for``.

    Both options at once are a usage error, unless one of them comes from a settings
    file: the command line then wins.
    """
    chosen = tuple(dict.fromkeys(options.get("logits_for") or ()))
    every = bool(options.get("logits"))
    if every and chosen:
        typed = {name for name in ("logits", "logits_for")
                 if ctx.get_parameter_source(name) in (click.core.ParameterSource.COMMANDLINE,
                                                       click.core.ParameterSource.ENVIRONMENT)}
        if len(typed) != 1:
            raise UsageError("--logits (every input holds logits) and --logits-for NAME (only the named inputs do) "
                             "contradict each other; give one of them")
        every = typed == {"logits"}
        chosen = () if every else chosen
    if every:
        return [True] * len(paths), True
    flags = [False] * len(paths)
    for wanted in chosen:
        flags[_input_named(wanted, paths, names)] = True
    return flags, False


def _input_named(wanted: str, paths: Sequence[Path], names: Sequence[str]) -> int:
    """The input ``wanted`` names: its display name, else its path as typed or file name."""
    if wanted in names:
        return list(names).index(wanted)
    matches = [k for k, path in enumerate(paths) if wanted in (str(path), path.name)]
    if not matches:  # the same file written another way (./a.csv, an absolute path)
        target = Path(wanted).resolve()
        matches = [k for k, path in enumerate(paths) if path.resolve() == target]
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(repr(one_line(name)) for name in names)
    if matches:
        raise UsageError(f"--logits-for {one_line(wanted)!r} matches {len(matches)} inputs; name one by its display "
                         f"name ({listed})")
    raise UsageError(f"--logits-for {one_line(wanted)!r} names no input; the inputs are {listed} (display names: "
                     "--name, else each file's name without its suffix)")


def compare_remedy(exc: ProbabilitiesAsLogitsError, name: str, every: bool) -> UsageError:
    """The refusal of one input's declared logits, with the way out ``compare`` offers."""
    if every:
        remedy = ("--logits treats every input's scores as logits: name only the inputs that hold logits with "
                  "--logits-for NAME")
    else:
        remedy = f"drop --logits-for {one_line(name)}"
    return UsageError(f"{exc.finding}; {remedy}")
