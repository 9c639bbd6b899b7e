"""Credentials never reach a log line or an error message.

A backend URL may carry a password (`redis://:secret@host:6379/0`, `redis://user:secret@...`,
`...?password=secret`). Wherever motet prints or logs a URL, or text that may hold one (an
error from a client library), it passes it through `redact` first: the user-info part
becomes `***` and a password query parameter's value too, so the line still says which
host and database it is about.
"""

from __future__ import annotations

import re

# scheme://userinfo@ : the user-info runs to the last '@' before the host part ends
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
_QUERY_SECRET = re.compile(r"(?P<key>[?&](?:password|passwd|pass|pwd|secret|token)=)[^&#\s'\"]*")

REDACTED = "***"


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by `***`."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}{REDACTED}", text)
