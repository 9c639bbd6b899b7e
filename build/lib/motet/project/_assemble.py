"""The one place a project's settings are assembled, for `motet start`, `open_runtime` and
`open_test_runtime` alike. In rising precedence:

    defaults                      ProjectConfig(); an entry point may change a default
                                  (open_runtime's backend is "memory": no file unasked)
    iii-config.yaml               not read yet: its layer goes between defaults and files
    motet.toml / [tool.motet]     `load_project`
    MOTET_* environment           MOTET_BACKEND, MOTET_PORT, ... (ENV_VARS)
    flags / keyword arguments     `--port 8080`, `open_runtime(backend="sqlite")`

Each layer sets only the keys it names; queue tables (`[queue]`, `[queues."t"]`) come from
the file alone. Every value is checked by the same reader, so an error names the file and
field, the variable, or the argument it came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._errors import ProjectConfigError
from ._config import GATEWAY_KEYS, SCALAR_KEYS, ProjectConfig, _Reader, load_project, read_settings

__all__ = ["ENV_PREFIX", "ENV_VARS", "assemble_config"]

ENV_PREFIX = "MOTET_"
# Every variable read, by config key: MOTET_BACKEND, MOTET_PORT, MOTET_HOST, MOTET_TOKEN, ...
ENV_VARS: Mapping[str, str] = {key: ENV_PREFIX + key.upper() for key in SCALAR_KEYS}
_INTEGERS = ("port", *(k for k, kind in GATEWAY_KEYS.items() if kind is int))
_NUMBERS = ("cron_grace", *(k for k, kind in GATEWAY_KEYS.items() if kind is float))


def assemble_config(
    root: Path | str = ".",
    *,
    environ: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    flags: bool = False,
    **overrides: Any,
) -> ProjectConfig:
    """The project's settings in `root`: `defaults` < the project file < `MOTET_*` variables
    of `environ` (default `os.environ`) < `overrides` (keyword arguments, or with `flags`
    the command line's `--port`...; None means "not given"). Raises ProjectConfigError
    naming where a bad value came from."""
    root = Path(root)
    environ = os.environ if environ is None else environ
    config = load_project(root)
    if defaults:
        unset = {k: v for k, v in defaults.items() if k not in config.origins}
        config = attrs.evolve(config, **unset)
    config = _layer(config, _from_environ(environ), _Reader("environment", ENV_PREFIX, "env"))
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(k for k in given if k not in SCALAR_KEYS)
    if unknown:
        raise TypeError(f"unknown setting {unknown[0]!r}; known: {', '.join(SCALAR_KEYS)}")
    reader = _Reader("command line", "--", "flag") if flags else _Reader("arguments", "")
    return _layer(config, given, reader)


def _layer(config: ProjectConfig, table: Mapping[str, Any], reader: _Reader) -> ProjectConfig:
    if not table:
        return config
    values = read_settings(reader, {k: v for k, v in table.items() if k != "backend"})
    if "backend" in table:
        # A file's or variable's backend is checked here; a flag's or argument's where the
        # backend is built (`backend_from_url`), whose message names `--backend` itself.
        values["backend"] = (
            read_settings(reader, {"backend": table["backend"]})["backend"]
            if reader.file == "environment"
            else table["backend"]
        )
    spoken = "argument " if reader.file == "arguments" else ""  # "argument port", "--port"
    origins = {**config.origins, **{key: spoken + reader.name(key) for key in values}}
    return attrs.evolve(config, origins=origins, **values)


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """The `MOTET_*` variables that are set (and not blank), as the values a file would hold:
    numbers parsed, the rest as strings for the reader to check."""
    table: dict[str, Any] = {}
    for key, var in ENV_VARS.items():
        raw = environ.get(var)
        if raw is None or not raw.strip():
            continue
        table[key] = _parse(key, var, raw.strip())
    return table


def _parse(key: str, var: str, raw: str) -> Any:
    try:
        if key in _INTEGERS:
            return int(raw)
        if key in _NUMBERS:
            return float(raw)
    except ValueError:
        kind = "a whole number" if key in _INTEGERS else "a number"
        raise ProjectConfigError(
            f"expected {kind}, got {raw!r}", file="environment", field=var
        ) from None
    return raw
