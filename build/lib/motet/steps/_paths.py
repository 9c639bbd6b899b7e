"""HTTP trigger paths, parsed once when the trigger is made.

A path is written `/pets/:id` or `/pets/{id}` (a `{name}` may share its segment with text, as
in `/files/{name}.json`; a `:name` takes a whole segment, so `/v1/pets:search` is literal).
`parse_path` checks it and returns every form the rest of motet needs: the OpenAPI path, the
werkzeug rule, the parameter names, the regular expression the gateway matches requests with,
and the shape that decides which paths collide. `HttpTrigger.route` holds the result, so a bad
path is a `StepDefinitionError` at load (naming file, step and field), never a gateway error.
"""

from __future__ import annotations

import re

import attrs

__all__ = ["PathError", "RoutePath", "parse_path"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BRACED = re.compile(r"\{([^{}/]*)\}")


class PathError(ValueError):
    """A path that cannot be served; the message names the path and what is wrong."""


@attrs.frozen
class RoutePath:
    """One path as written (`/pets/:id`), as a werkzeug rule (`/pets/<id>`) and as an
    OpenAPI path (`/pets/{id}`), with its parameter names in order."""

    written: str
    rule: str
    openapi: str
    params: tuple[str, ...]
    pattern: re.Pattern[str]  # matches a decoded request path; groups are the parameters

    @property
    def shape(self) -> str:
        """The path with parameter names erased: two routes with one shape collide."""
        return _BRACED.sub("{}", self.openapi)


def parse_path(path: object) -> RoutePath:
    """Parse a trigger path; a bad one raises PathError saying what and where."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise PathError(f"expected a path starting with '/', like '/pets/:id', got {path!r}")
    if any(c.isspace() for c in path) or "?" in path or "#" in path:
        raise PathError(f"a path has no spaces, query or fragment, got {path!r}")
    rule_parts: list[str] = []
    api_parts: list[str] = []
    regex_parts: list[str] = []
    params: list[str] = []

    def add_param(written: str, name: str) -> str:
        if not _NAME.match(name):
            raise PathError(
                f"path parameter {written!r} in {path!r} needs a name like :id "
                "(letters, digits, '_', not starting with a digit)"
            )
        if name in params:
            raise PathError(f"path parameter {name!r} appears twice in {path!r}")
        params.append(name)
        return name

    for segment in path.split("/")[1:]:
        if segment.startswith(":"):
            name = add_param(segment, segment[1:])
            rule_parts.append(f"<{name}>")
            api_parts.append(f"{{{name}}}")
            regex_parts.append(f"(?P<{name}>[^/]+)")
            continue
        if "<" in segment or ">" in segment:
            raise PathError(
                f"path {path!r} may not contain '<' or '>'; write parameters as ':id' or '{{id}}'"
            )
        literals = _BRACED.split(segment)[::2]
        if any("{" in text or "}" in text for text in literals):
            raise PathError(f"unbalanced braces in path {path!r}")
        rule_parts.append(_BRACED.sub(lambda m: f"<{add_param(m.group(0), m.group(1))}>", segment))
        api_parts.append(_BRACED.sub(lambda m: f"{{{m.group(1)}}}", segment))
        names = _BRACED.findall(segment)
        regex = "".join(
            re.escape(text) + (f"(?P<{names[i]}>[^/]+?)" if i < len(names) else "")
            for i, text in enumerate(literals)
        )
        regex_parts.append(regex)
    return RoutePath(
        written=path,
        rule="/" + "/".join(rule_parts),
        openapi="/" + "/".join(api_parts),
        params=tuple(params),
        pattern=re.compile("/" + "/".join(regex_parts) + r"\Z"),
    )
