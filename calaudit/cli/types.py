"""Click parameter types that refuse, as usage errors (exit 2), values the audit cannot use.

A bad value fails while click reads the command line, the environment or a settings
file (:mod:`calaudit.config` checks file values with these same types), as one line
naming the option and the value: ``Invalid value for '--bins': 100000 is not in the
range 1<=x<=1000.`` Nothing reaches the audit that would end there in a traceback.

This module is imported with the CLI, which must not import numpy (``calaudit --help``
starts fast): the bounds come from the numpy-free :mod:`calaudit.stats.limits`.
"""

from __future__ import annotations

import math
import os
from typing import Any

import click

from ..stats.limits import MAX_BINS, MAX_RESAMPLES, MAX_SEED, MIN_RESAMPLES  # noqa: F401 - used below and in tests


class FiniteFloat(click.FloatRange):
    """A float that is finite (no ``nan``, ``inf``, or ``1e999``, which overflows to
    ``inf``), optionally within a range like :class:`click.FloatRange`."""

    def __init__(self, min: float | None = None, max: float | None = None, *,
                 min_open: bool = False, max_open: bool = False) -> None:
        super().__init__(min, max, min_open=min_open, max_open=max_open)
        self.name = "float" if min is None and max is None else "float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)

    def _describe_range(self) -> str:
        return "" if self.min is None and self.max is None else super()._describe_range()


class Resamples(click.IntRange):
    """Bootstrap resamples: 0 (no intervals) or at least :data:`MIN_RESAMPLES`.

    With fewer, each end of a 95% interval rests on a handful of resamples: two give an
    interval of zero width around a value that is not the measured one.
    """

    def __init__(self) -> None:
        super().__init__(min=0, max=MAX_RESAMPLES)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        count = super().convert(value, param, ctx)
        if 0 < count < MIN_RESAMPLES:
            self.fail(
                f"{count} resamples are too few for a 95% interval (each end would rest on fewer than "
                f"{MIN_RESAMPLES // 40} resamples); use 0 for no intervals, or at least {MIN_RESAMPLES}",
                param, ctx,
            )
        return count

    def _describe_range(self) -> str:
        return f"0 or {MIN_RESAMPLES}<=x<={MAX_RESAMPLES}"


class NonEmptyString(click.types.StringParamType):
    """A name (a column, an output tensor) that is not empty or blank."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = super().convert(value, param, ctx)
        if not text.strip():
            self.fail(f"{text!r} is empty or blank; expected a name", param, ctx)
        return text


class NonEmptyPath(click.Path):
    """A path that is not the empty string (which would mean the working directory)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (str, os.PathLike)) and os.fspath(value) == "":
            self.fail("'' is empty; expected a path", param, ctx)
        return super().convert(value, param, ctx)


class NameList(click.types.StringParamType):
    """Comma-separated names (``cat,dog``); every name non-empty. The value is kept as
    written: the option's callback splits it."""

    name = "names"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = super().convert(value, param, ctx)
        items = [item.strip() for item in text.split(",")]
        if not any(items):
            self.fail(f"{text!r} holds no names; expected names separated by commas (e.g. 'cat,dog')", param, ctx)
        if not all(items):
            self.fail(f"{text!r} has an empty name; expected names separated by commas (e.g. 'cat,dog')",
                      param, ctx)
        return text


class Condition(click.types.StringParamType):
    """A ``--fail-if`` condition (``'ece>0.05'``, ``'human_tvd - noise_floor > 0.1'``),
    checked by :func:`calaudit.gate.condition_rule`.

    Conditions may contain spaces (``'ece > 0.05'``): the environment variable separates
    several with ``;`` instead of click's default whitespace. The value is kept as
    written; the gate parses it again.
    """

    name = "condition"

    def split_envvar_value(self, rv: str) -> list[str]:
        return [part.strip() for part in rv.split(";") if part.strip()]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..gate import RuleError, condition_rule  # the gate imports numpy: only when used

        text = super().convert(value, param, ctx)
        try:
            condition_rule(text)
        except RuleError as exc:
            self.fail(f"{text!r}: {exc}", param, ctx)
        return text


class Allowance(click.types.StringParamType):
    """A ``METRIC=ALLOWANCE`` of ``option`` (``--max-increase`` or ``--max-decrease``),
    checked by :func:`calaudit.gate.allowance_parts`. The value is kept as written."""

    name = "allowance"
    #: A settings file may give several as a table, ``max-increase = {ece = 0.01}``
    #: (:mod:`calaudit.config`).
    table_of_numbers = True

    def __init__(self, option: str) -> None:
        self.option = option

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..gate import RuleError, allowance_parts

        text = super().convert(value, param, ctx)
        try:
            allowance_parts(text, source=self.option)
        except RuleError as exc:
            self.fail(f"{text!r}: {exc}", param, ctx)
        return text


class MemorySize(click.ParamType):
    """A memory budget (``8GB``, ``512MB``, ``25%`` of this machine's memory) -> bytes."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        from ..engine.budget import memory_size

        try:
            return memory_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


BINS = click.IntRange(1, MAX_BINS)
SEED = click.IntRange(0, MAX_SEED)
RESAMPLES = Resamples()
NAME = NonEmptyString()
NAMES = NameList()
CONDITION = Condition()
MAX_INCREASE = Allowance("--max-increase")
MAX_DECREASE = Allowance("--max-decrease")


class ImageSetting(click.ParamType):
    """An image preprocessing value (``--image-size``, ``--scale 1/255``, ...), checked by
    the rule preprocess.json's values follow, so a bad one is click's usage error naming
    the option (exit 2). The image loader is imported only when a value is converted."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.name = key

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ..loaders.image_preprocess import parse_setting

        try:
            return parse_setting(self.key, value)
        except (TypeError, ValueError) as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)
