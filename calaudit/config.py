"""Settings from ``calaudit.toml`` or ``[tool.calaudit]`` in ``pyproject.toml``.

Precedence, highest first: the command line, environment variables
(``CALAUDIT_MAX_ECE``, ...), the config file, the defaults. The file is found by
walking up from the working directory (``calaudit.toml`` wins over ``pyproject.toml``
in the same directory), or given with ``--config PATH``. Its keys are the long option
names of the command, with dashes or underscores (``max-ece = 0.05``); an unknown key
is an error naming it. The settings become click's ``default_map``, which is how
click gives the command line and environment precedence over them.

Values are checked here, strictly, before click sees them: click would read
``bins = 7.5`` as 7 and ``bins = true`` as 1. A flag takes ``true`` / ``false``, an
integer option an integer, a number option an integer or a float (finite), a text,
choice or path option a string, and only a repeatable option a list (or, for an option
whose click type says ``table_of_numbers = True``, such as ``max-increase`` /
``max-decrease``, a table of ``metric = allowance``). Each value then
goes through the option's own click type (:mod:`calaudit.cli.types`), so the ranges
are those of the command line. A bad value is a usage error (exit 2) naming the file,
the key, the value and what was expected.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import click

from .errors import UsageError
from .files.info import path_problem

CONFIG_FILE = "calaudit.toml"
#: Options that make no sense in a shared file (outputs and inputs of one run).
NOT_CONFIGURABLE = {
    "input_path", "data_path", "result_path", "json_path", "out_dir", "config", "help", "debug",
    "junit_path", "markdown_path", "report_path", "save_predictions", "output_model",
}


def _unusable(path: Path) -> str | None:
    """Why ``path`` cannot be read as a settings file, or ``None`` when it is a regular file."""
    problem = path_problem(path, missing="no such file")
    if problem is None and not stat.S_ISREG(os.stat(path).st_mode):
        return "not a regular file"
    return problem


def _settings_file(path: Path) -> bool:
    """True when a settings file could be at ``path``: nothing there is False; something
    there that cannot be read (a directory, a link loop) is an error, not a silent skip."""
    if not os.path.lexists(path):
        return False
    problem = _unusable(path)
    if problem is not None:
        raise UsageError(f"{path}: cannot use the settings file: {problem}")
    return True


def _tool_table(data: dict[str, Any]) -> Any:
    tool = data.get("tool")
    return tool.get("calaudit") if isinstance(tool, dict) else None


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``calaudit.toml``, or ``pyproject.toml`` with a ``[tool.calaudit]`` table."""
    directory = (start or Path.cwd()).resolve()
    for folder in (directory, *directory.parents):
        candidate = folder / CONFIG_FILE
        if _settings_file(candidate):
            return candidate
        pyproject = folder / "pyproject.toml"
        if _settings_file(pyproject) and _tool_table(_read_toml(pyproject)) is not None:
            return pyproject
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the settings file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")  # a byte-order mark, as some editors write, is fine
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UsageError(
            f"{path}: the settings file is not UTF-8: byte 0x{raw[exc.start]:02x} at line {line}, column {column} "
            f"(byte offset {exc.start}); save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None


def read_settings(path: Path) -> dict[str, Any]:
    """The calaudit table of ``path`` (the whole file for ``calaudit.toml``)."""
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        table = _tool_table(data)
        table = {} if table is None else table
    else:
        table = _tool_table(data)
        table = data if table is None else table
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.calaudit] must be a table")
    return table


def _find_param(params: dict[str, click.Option], key: str) -> click.Option | None:
    param = params.get(key.replace("-", "_")) or next((p for p in params.values() if f"--{key}" in p.opts), None)
    return None if param is None or param.name in NOT_CONFIGURABLE else param


def _options(command: click.Command) -> dict[str, click.Option]:
    return {param.name: param for param in command.params if isinstance(param, click.Option)}


def _toml(value: Any) -> str:
    """``value`` as it is written in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string, control characters escaped
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + "}"
    return repr(value) if isinstance(value, (int, float)) else str(value)


def _kind(param: click.Option) -> str:
    """What TOML type the option takes: ``flag``, ``integer``, ``number``, ``string``, or
    ``custom`` for a type of its own that reads TOML values itself (image preprocessing
    settings take ``mean = [0.485, 0.456, 0.406]`` as ``preprocess.json`` does)."""
    if param.is_flag or isinstance(param.type, click.types.BoolParamType):
        return "flag"
    if isinstance(param.type, click.types.IntParamType):
        return "integer"
    if isinstance(param.type, click.types.FloatParamType):
        return "number"
    if isinstance(param.type, (click.types.StringParamType, click.Choice, click.Path)):
        return "string"
    return "custom"


def _expected(param: click.Option) -> str:
    kind = _kind(param)
    if kind == "flag":
        return "true or false"
    if kind in ("integer", "number"):
        what = "an integer" if kind == "integer" else "a finite number"
        describe = getattr(param.type, "_describe_range", None)
        bounds = describe() if describe is not None else ""
        return f"{what} ({bounds})" if bounds else what
    if isinstance(param.type, click.Choice):
        return "one of " + ", ".join(_toml(str(choice)) for choice in param.type.choices)
    if isinstance(param.type, click.Path):
        return "a path (a string)"
    return "a string" if kind == "string" else f"a {param.type.name} value"


def _check_element(param: click.Option, element: Any, ctx: click.Context | None) -> str | None:
    """What is wrong with one value of ``param`` read from TOML, or ``None``."""
    kind = _kind(param)
    number = isinstance(element, (int, float)) and not isinstance(element, bool)
    fits = {
        "flag": isinstance(element, bool),
        "integer": number and isinstance(element, int),
        "number": number,
        "string": isinstance(element, str),
        "custom": True,  # its convert judges
    }[kind]
    if not fits or (kind == "number" and not math.isfinite(element)):
        return f"expected {_expected(param)}"
    if kind == "flag":
        return None
    try:
        param.type.convert(element, param, ctx)
    except click.BadParameter as exc:
        # "'ece>nan': expected ..." -> "expected ...": the message already shows the value.
        return exc.message.removeprefix(f"{element!r}: ")
    return None


def _setting_value(param: click.Option, key: str, value: Any, path: Path, ctx: click.Context | None) -> Any:
    """The file's ``value`` for ``param``, checked, in the shape click's ``default_map`` takes."""
    where = f"{path}: {key} = {_toml(value)}"
    if isinstance(value, dict):
        if not getattr(param.type, "table_of_numbers", False):  # see the module docstring
            raise UsageError(f"{where}: expected {_expected(param)}, not a table")
        for metric, allowance in value.items():  # max-increase = {ece = 0.01} -> ["ece=0.01"]
            if isinstance(allowance, bool) or not isinstance(allowance, (int, float)):
                raise UsageError(f"{where}: expected a number as the allowance of {metric}, not {_toml(allowance)}")
        value = [f"{metric}={allowance!r}" for metric, allowance in value.items()]
    if isinstance(value, list) and not param.multiple and _kind(param) != "custom":
        raise UsageError(f"{where}: expected {_expected(param)}, not a list ({key} takes one value)")
    listed = isinstance(value, list) and param.multiple
    for index, element in enumerate(value if listed else [value]):
        problem = _check_element(param, element, ctx)
        if problem is not None:
            item = f"item {index + 1} ({_toml(element)}): " if listed else ""
            raise UsageError(f"{where}: {item}{problem}")
    if isinstance(param.type, click.Path):  # relative to the settings file
        value = str(value) if Path(value).is_absolute() else str(path.parent / value)
    if param.multiple and not isinstance(value, list):
        value = [value]
    return value


def default_map_for(
    command: click.Command, settings: dict[str, Any], path: Path, siblings: list[click.Command] | None = None,
    ctx: click.Context | None = None,
) -> dict[str, Any]:
    """Translate file settings into click parameter defaults for ``command``.

    One file serves every command: a key that another command (``siblings``) takes
    is skipped here (``bins`` means nothing to ``check``), though its value is still
    checked; a key no command takes is an error naming it. Relative paths are
    relative to the settings file. Values are checked as the module docstring says.
    """
    params = _options(command)
    others = [_options(other) for other in (siblings or []) if other is not command]
    defaults: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for key, value in settings.items():
        param = _find_param(params, key)
        if param is None:
            elsewhere = next((found for other in others if (found := _find_param(other, key)) is not None), None)
            if elsewhere is not None:
                _setting_value(elsewhere, key, value, path, ctx)
                continue
            known = sorted(
                {max(p.opts, key=len).lstrip("-") for table in (params, *others) for p in table.values()
                 if p.name not in NOT_CONFIGURABLE}
            )
            raise UsageError(f"{path}: unknown setting {key!r}; known settings: {', '.join(known)}")
        if param.name in keys:
            raise UsageError(f"{path}: {key} and {keys[param.name]} are the same setting; keep one")
        keys[param.name] = key
        defaults[param.name] = _setting_value(param, key, value, path, ctx)
    return defaults


def load_config_callback(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Eager ``--config`` callback: read the file (given or found) into ``ctx.default_map``."""
    path = value if value is not None else find_config()
    if path is None:
        return None
    problem = _unusable(path)
    if problem is not None:
        raise UsageError(f"{path}: cannot use the settings file: {problem}")
    settings = read_settings(path)
    root = ctx.find_root().command
    siblings = list(root.commands.values()) if isinstance(root, click.Group) else []
    defaults = default_map_for(ctx.command, settings, path, siblings, ctx)
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    ctx.meta["calaudit.config"] = str(path)
    return path
