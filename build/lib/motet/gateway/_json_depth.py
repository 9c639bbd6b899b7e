"""Refusing deeply nested JSON before it is parsed.

`json.loads` recurses once per level of nesting: `[` * 100_000 (200 KB, under any sensible
body limit) raises RecursionError inside the parser. The scan below finds the depth first,
in C-speed steps: a body with no more brackets than the limit (nearly every real body) is
passed after two `bytes.count` calls; otherwise everything but quotes and brackets is
dropped (`bytes.translate`), strings are cut out, and one loop over the brackets alone
stops at the first level over the limit.
"""

from __future__ import annotations

DEFAULT_MAX_DEPTH = 128

_ONLY_QUOTES_AND_BRACKETS = bytes(sorted(set(range(256)) - set(b'"[]{}')))  # to delete
_OPEN = frozenset(b"[{")


def too_deep(raw: bytes, limit: int) -> bool:
    """True when the JSON text `raw` nests arrays/objects deeper than `limit` levels.
    (Malformed text may be judged either way; the parser refuses it next.)"""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    if b"\\" in raw:  # drop escaped backslashes, then escaped quotes: every " left delimits
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Keep quotes and brackets only; a string without brackets is then `""`, and removing
    # quote pairs keeps every remaining bracket on its side of the strings.
    kept = raw.translate(None, _ONLY_QUOTES_AND_BRACKETS).replace(b'""', b"")
    if b'"' in kept:  # some strings hold brackets: keep what is outside them
        kept = b"".join(kept.split(b'"')[::2])
    depth = 0
    for char in kept:
        if char in _OPEN:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def depth_detail(limit: int) -> str:
    return f"the JSON body is nested deeper than {limit} levels (GatewayOptions.max_json_depth)"
