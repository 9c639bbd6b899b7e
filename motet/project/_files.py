"""Which config files a project has, and how they layer: Motia's `iii-config.yaml` below
motet's own `motet.toml` / `[tool.motet]`, key by key.

    motet start                  iii-config.yaml (or an iii config.yaml) and motet.toml, both
                                 when both exist: motet.toml wins for each key it sets, down to
                                 each queue option of each topic
    motet start -c FILE          FILE alone (`iii -c iii-config.yaml`): a .yaml/.yml file is read
    MOTET_CONFIG=FILE            as iii-config.yaml, a .toml file as motet.toml (pyproject.toml:
                                 its [tool.motet]); nothing else is looked for

A Motia file makes the project a Motia project: its `async def` handlers run on asyncio
(`handlers = "asyncio"`) unless motet.toml or MOTET_HANDLERS says otherwise. What was read,
what wins and every key not used are in `ProjectConfig.report`, said once at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import ProjectConfigError
from ..steps._model import QueueOverrides
from ..steps._queue_options import merge_overrides
from ._config import ProjectConfig, load_project, load_toml_file
from ._motia_files import MOTIA_FILES, looks_like_iii

if TYPE_CHECKING:
    from ._iii_config import IIIConfig

__all__ = ["find_iii_config", "load_config_files"]

YAML_SUFFIXES = (".yaml", ".yml")


def find_iii_config(root: Path) -> Path | None:
    """The project's Motia file, if it has one (`MOTIA_FILES`, first found)."""
    for name in MOTIA_FILES:
        candidate = root / name
        if candidate.is_file() and looks_like_iii(candidate):
            return candidate
    return None


def load_config_files(
    root: Path,
    config_file: Path | str | None = None,
    *,
    origin: str = "-c",
    environ: Mapping[str, str] | None = None,
) -> ProjectConfig:
    """The file layers of the project in `root`: `config_file` alone when given (`origin`
    names where it was given, for messages), else iii-config.yaml < motet.toml."""
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ProjectConfigError(f"no such file (given by {origin})", file=path)
        if path.suffix in YAML_SUFFIXES:
            from ._iii_config import load_iii_config

            iii = load_iii_config(path, environ)
            return _layered(iii, ProjectConfig(root=root), f"{path}", f"from {origin}; ")
        if path.suffix == ".toml":
            return attrs.evolve(
                load_toml_file(root, path), report=(f"config: {path} (from {origin})",)
            )
        raise ProjectConfigError(
            f"expected a .yaml/.yml file (read as iii-config.yaml) or a .toml file (read as "
            f"motet.toml), given by {origin}",
            file=path,
        )
    found = find_iii_config(root)
    toml = load_project(root)
    if found is None:
        return toml
    from ._iii_config import load_iii_config  # a project without a Motia file never loads it

    config = _layered(load_iii_config(found, environ), toml, found.name)
    others = [
        f"not used: {name} (only {found.name} is read; `-c {name}` reads it instead)"
        for name in MOTIA_FILES
        if name != found.name and (root / name).is_file() and looks_like_iii(root / name)
    ]
    return attrs.evolve(config, report=(*config.report, *others)) if others else config


def _layered(iii: IIIConfig, toml: ProjectConfig, name: str, given: str = "") -> ProjectConfig:
    """`toml`'s keys over `iii`'s; queue options merged option by option."""
    origin = str(iii.file)
    values: dict[str, Any] = {"handlers": "asyncio"}
    notes = list(iii.notes)
    if iii.steps is not None:
        values["steps"] = iii.steps
    elif "steps" not in toml.origins and _src_only(toml.root):
        # Motia 1.0 discovers step files under src/, 0.x under steps/.
        values["steps"] = "src"
        notes.append(f"{iii.file.name}: steps are loaded from 'src' (there is no steps/)")
    origins = {key: f"{origin} (a Motia project)" for key in values}
    if iii.queue != QueueOverrides():
        origins["queue"] = origin
    if iii.queues:
        origins["queues"] = origin
    report = [f"config: {name} ({given}a Motia project: async handlers run on asyncio)"]
    if toml.file is not None:
        report.append(
            f"config: both {iii.file.name} and {toml.file.name} are read; for each key both "
            f"set, {toml.file.name} wins (MOTET_* variables and flags win over both)"
        )
    conflicts: list[str] = []
    queue = _merge(iii.queue, toml.queue, "queue", iii.file, toml.file, conflicts)
    queues = dict(iii.queues)
    for topic, options in toml.queues.items():
        base = queues.get(topic, QueueOverrides())
        queues[topic] = _merge(base, options, f"queues.{topic!r}", iii.file, toml.file, conflicts)
    for key, value in values.items():
        if key in toml.origins and getattr(toml, key) != value:
            conflicts.append(
                f"config: {key}: {toml.file.name if toml.file else 'motet.toml'}'s "
                f"{getattr(toml, key)!r} wins over {value!r} from {iii.file.name}"
            )
    report += [*conflicts, *notes]
    report += [f"not used: {line}" for line in iii.ignored]
    unset = {k: v for k, v in values.items() if k not in toml.origins}
    return attrs.evolve(
        toml,
        file=toml.file or iii.file,
        queue=queue,
        queues=queues,
        origins={**origins, **toml.origins},
        report=tuple(report),
        **unset,
    )


def _merge(
    base: QueueOverrides,
    top: QueueOverrides,
    where: str,
    iii_file: Path,
    toml_file: Path | None,
    conflicts: list[str],
) -> QueueOverrides:
    for a in attrs.fields(QueueOverrides):
        below, above = getattr(base, a.name), getattr(top, a.name)
        if below is not None and above is not None and below != above:
            conflicts.append(
                f"config: {where}.{a.name}: {toml_file.name if toml_file else 'motet.toml'}'s "
                f"{above!r} wins over {below!r} from {iii_file.name}"
            )
    return merge_overrides(base, top)


def _src_only(root: Path) -> bool:
    return not (root / "steps").is_dir() and (root / "src").is_dir()
