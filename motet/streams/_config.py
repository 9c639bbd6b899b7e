"""A stream's definition (Motia's `*.stream.py` config) and finding stream files.

A stream file is `*.stream.py` or `*_stream.py` in the steps folder (any depth), exporting

    config = {
        "name": "videoProgress",          # ctx.streams.videoProgress
        "schema": Progress,               # optional: items are validated against it
        "baseConfig": {"storageType": "default"},   # Motia's key, accepted
        "public": False,                  # anyone may subscribe (default: nobody)
        "can_access": allowed,            # or "canAccess": who may subscribe (sync or async)
    }

A stream is private: a client may subscribe only when the stream is `public` or its
`can_access(request, group)` hook returns true (the hook may also be a module-level
`can_access` function of the stream file). `request` is a `StreamRequest` (headers, query
parameters, path), so the hook can check a token.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .._errors import StepDefinitionError
from ..backends._stream_records import STREAM_NAME
from ..steps._discovery import discover_stream_files
from ..steps._schema import load_schema

AccessHook = Callable[..., bool | Awaitable[bool]]

_KEYS = {"name", "schema", "baseConfig", "base_config", "public", "can_access", "canAccess"}


@attrs.frozen
class StreamRequest:
    """What an access hook sees of a subscription request."""

    stream: str
    group: str
    path: str
    headers: Mapping[str, str]  # lower-cased names
    query: Mapping[str, str]  # the first value of each query parameter
    transport: str  # "sse" or "websocket"


@attrs.frozen
class StreamConfig:
    """One stream: its name, optional item schema, and who may subscribe."""

    name: str
    schema: Any = attrs.field(
        default=None, converter=lambda s: None if s is None else load_schema(s)
    )
    public: bool = False
    can_access: AccessHook | None = None
    storage_type: str = "default"
    file: Path | None = None

    async def allows(self, request: StreamRequest) -> bool:
        """Whether this subscription may go ahead: public, or the hook says yes. A hook that
        raises denies (the error is the caller's to log)."""
        if self.public:
            return True
        if self.can_access is None:
            return False
        verdict = self.can_access(request, request.group)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return verdict is True


def stream_from_config(
    config: Any, *, file: Path | None = None, hook: AccessHook | None = None
) -> StreamConfig:
    """A validated StreamConfig from a config dict; StepDefinitionError naming the file and
    field otherwise."""
    if isinstance(config, StreamConfig):
        return config
    if not isinstance(config, Mapping):
        raise StepDefinitionError(
            f"a stream config must be a dict, got {type(config).__name__}", file=file
        )
    name = config.get("name")
    if not isinstance(name, str) or not STREAM_NAME.fullmatch(name):
        raise StepDefinitionError(
            "stream name must be an identifier (letters, digits, '_' or '-', starting with a "
            f"letter or '_'), got {name!r}",
            file=file,
            field="name",
        )
    unknown = sorted(set(config) - _KEYS)
    if unknown:
        raise StepDefinitionError(
            f"stream {name!r}: unknown config keys {unknown}; expected {sorted(_KEYS)}",
            file=file,
            field=unknown[0],
        )
    public = config.get("public", False)
    if not isinstance(public, bool):
        raise StepDefinitionError(
            f"stream {name!r}: public must be true or false, got {public!r}",
            file=file,
            field="public",
        )
    can_access = config.get("can_access", config.get("canAccess", hook))
    if can_access is not None and not callable(can_access):
        raise StepDefinitionError(
            f"stream {name!r}: can_access must be a function (request, group) -> bool, "
            f"got {can_access!r}",
            file=file,
            field="can_access",
        )
    base = config.get("baseConfig", config.get("base_config")) or {}
    if not isinstance(base, Mapping):
        raise StepDefinitionError(
            f"stream {name!r}: baseConfig must be a dict, got {base!r}",
            file=file,
            field="baseConfig",
        )
    schema = config.get("schema")
    if schema is not None:
        # As a step's: a schema type, a pydantic model class, or a JSON Schema dict (Motia's
        # form), compiled here; items are validated against it on `set`.
        try:
            schema = load_schema(schema)
        except ValueError as exc:
            raise StepDefinitionError(f"stream {name!r}: {exc}", file=file, field="schema") from exc
    storage = base.get("storageType", "default")
    return StreamConfig(
        name=name,
        schema=schema,
        public=public,
        can_access=can_access,
        storage_type=str(storage),
        file=file,
    )


def load_streams(root: Path, files: Iterable[Path] | None = None) -> list[StreamConfig]:
    """Import every stream file under `root` (`files`, when the caller has found them already)
    and return their streams, in file order; StepDefinitionError for a file that does not
    import, a bad config, or a name used twice."""
    root = Path(root)
    if not root.is_dir():
        return []
    project_dir = str(root.resolve().parent)
    if project_dir not in sys.path:
        sys.path.insert(0, project_dir)
    found = discover_stream_files(root) if files is None else files
    streams = [_load_file(root, file) for file in found]
    check_stream_set(streams)
    return streams


def check_stream_set(streams: Iterable[StreamConfig]) -> None:
    seen: dict[str, StreamConfig] = {}
    for stream in streams:
        if stream.name in seen:
            raise StepDefinitionError(
                f"duplicate stream name {stream.name!r}: also defined in "
                f"{seen[stream.name].file or 'code (no file)'}",
                file=stream.file,
                field="name",
            )
        seen[stream.name] = stream


def _load_file(root: Path, file: Path) -> StreamConfig:
    rel = file.resolve().relative_to(root.resolve())
    name = "motet_streams__" + "__".join(
        "".join(c if c.isalnum() else "_" for c in part) for part in rel.with_suffix("").parts
    )
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:  # pragma: no cover - .py files always have one
        raise StepDefinitionError("cannot be imported as a Python module", file=file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise StepDefinitionError(
            f"could not import the stream file: {type(exc).__name__}: {exc}", file=file
        ) from exc
    if not hasattr(module, "config"):
        raise StepDefinitionError("a stream file must export `config` (a dict)", file=file)
    hook = getattr(module, "can_access", None) or getattr(module, "canAccess", None)
    return stream_from_config(module.config, file=file, hook=hook if callable(hook) else None)
