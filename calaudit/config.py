"""Settings from ``calaudit.toml`` or ``[tool.calaudit]`` in ``pyproject.toml``.

Precedence, highest first: the command line, environment variables
(``CALAUDIT_MAX_ECE``, ...), the config file, the defaults. The file is found by
walking up from the working directory (``calaudit.toml`` wins over ``pyproject.toml``
in the same directory), or given with ``--config PATH``. Its keys are the long option
names of the command, with dashes or underscores (``max-ece = 0.05``); an unknown key
is an error naming it. The settings become click's ``default_map``, which is how
click gives the command line and environment precedence over them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click

from .errors import UsageError

CONFIG_FILE = "calaudit.toml"
#: Options that make no sense in a shared file (outputs and inputs of one run).
NOT_CONFIGURABLE = {
    "input_path", "data_path", "result_path", "json_path", "out_dir", "config", "help", "debug",
    "junit_path", "markdown_path", "report_path", "save_predictions",
}


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``calaudit.toml``, or ``pyproject.toml`` with a ``[tool.calaudit]`` table."""
    directory = (start or Path.cwd()).resolve()
    for folder in (directory, *directory.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "calaudit" in _read_toml(pyproject).get("tool", {}):
            return pyproject
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None


def read_settings(path: Path) -> dict[str, Any]:
    """The calaudit table of ``path`` (the whole file for ``calaudit.toml``)."""
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("calaudit", {})
    else:
        table = data.get("tool", {}).get("calaudit", data) if "tool" in data else data
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.calaudit] must be a table")
    return table


def _find_param(params: dict[str, click.Option], key: str) -> click.Option | None:
    param = params.get(key.replace("-", "_")) or next((p for p in params.values() if f"--{key}" in p.opts), None)
    return None if param is None or param.name in NOT_CONFIGURABLE else param


def _options(command: click.Command) -> dict[str, click.Option]:
    return {param.name: param for param in command.params if isinstance(param, click.Option)}


def default_map_for(
    command: click.Command, settings: dict[str, Any], path: Path, siblings: list[click.Command] | None = None
) -> dict[str, Any]:
    """Translate file settings into click parameter defaults for ``command``.

    One file serves every command: a key that another command (``siblings``) takes
    is skipped here (``bins`` means nothing to ``check``); a key no command takes is
    an error naming it. Relative paths are relative to the settings file.
    """
    params = _options(command)
    others = [_options(other) for other in (siblings or []) if other is not command]
    defaults: dict[str, Any] = {}
    for key, value in settings.items():
        param = _find_param(params, key)
        if param is None:
            if any(_find_param(other, key) is not None for other in others):
                continue
            known = sorted(
                {max(p.opts, key=len).lstrip("-") for table in (params, *others) for p in table.values()
                 if p.name not in NOT_CONFIGURABLE}
            )
            raise UsageError(f"{path}: unknown setting {key!r}; known settings: {', '.join(known)}")
        if isinstance(param.type, click.Path) and isinstance(value, str) and not Path(value).is_absolute():
            value = str(path.parent / value)
        if isinstance(value, dict):  # max-increase = {ece = 0.01} -> ["ece=0.01"]
            value = [f"{metric}={allowance}" for metric, allowance in value.items()]
        if param.multiple and not isinstance(value, list):
            value = [value]
        if isinstance(value, list) and not param.multiple:
            value = ",".join(str(v) for v in value)
        defaults[param.name] = value
    return defaults


def load_config_callback(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Eager ``--config`` callback: read the file (given or found) into ``ctx.default_map``."""
    path = value if value is not None else find_config()
    if path is None:
        return None
    if not path.is_file():
        raise UsageError(f"{path}: no such config file")
    settings = read_settings(path)
    root = ctx.find_root().command
    siblings = list(root.commands.values()) if isinstance(root, click.Group) else []
    defaults = default_map_for(ctx.command, settings, path, siblings)
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    ctx.meta["calaudit.config"] = str(path)
    return path
