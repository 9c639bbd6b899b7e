"""Who may use the operator endpoints (console, metrics, health, dead letters, state).

- Without a token, they answer loopback clients only, and the gateway refuses to bind a
  non-loopback address (anyone on the network could read state and re-drive messages).
  They also refuse (403) a request whose `Host` is not a loopback name or address or the
  configured host: a web page on an attacker's domain that re-resolves that domain to
  127.0.0.1 (DNS rebinding) makes the victim's browser a loopback client, but the browser
  still sends the attacker's domain as `Host`. A request without `Host` (HTTP/1.0, never
  a browser) is allowed.
- With a token (project config `token`, or the MOTET_TOKEN environment variable), every
  client must present it, loopback included (a reverse proxy on the same host makes every
  client look local): `Authorization: Bearer <token>`, or the `motet_token` cookie that
  visiting `/_console?token=<token>` sets.
- Tokens are compared with `hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import quote, unquote

import attrs

from .._errors import GatewayError

TOKEN_ENV = "MOTET_TOKEN"
COOKIE = "motet_token"


def resolve_token(configured: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The project's token, else MOTET_TOKEN; blank counts as none."""
    environ = os.environ if environ is None else environ
    for candidate in (configured, environ.get(TOKEN_ENV)):
        if candidate is not None and candidate.strip():
            return candidate.strip()
    return None


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def host_name(header: str) -> str:
    """The name or address of a Host header, without its port (`[::1]:3000` -> `::1`)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    if header.count(":") == 1:
        return header.partition(":")[0]
    return header


def is_loopback_name(name: str) -> bool:
    """`localhost`, a `*.localhost` name (RFC 6761 keeps them on loopback) or a loopback
    address."""
    name = name.rstrip(".")
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve the operator endpoints on a non-loopback address without a token."""
    if token is None and not is_loopback(host):
        raise GatewayError(
            f"refusing to listen on {host!r} without an operator token: the console, metrics, "
            "dead-letter and state endpoints would be open to the network. Set `token` in "
            f"motet.toml or the {TOKEN_ENV} environment variable, or bind 127.0.0.1"
        )


def _cookie(header: str | None, name: str) -> str | None:
    for part in (header or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return unquote(value)
    return None


def token_cookie(token: str) -> str:
    """The Set-Cookie value that lets the console's own requests carry the token."""
    return f"{COOKIE}={quote(token, safe='')}; Path=/; HttpOnly; SameSite=Strict"


@attrs.frozen
class OperatorAccess:
    token: str | None

    def presented(self, headers: Mapping[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return _cookie(headers.get("cookie"), COOKIE)

    def refusal(self, client_host: str | None, headers: Mapping[str, str]) -> str | None:
        """None when the request may proceed, else why not (for the 401's detail)."""
        if self.token is None:
            if not is_loopback(client_host):
                return (
                    "the operator endpoints answer loopback clients only when no token "
                    "is configured"
                )
            return None
        if self.matches(self.presented(headers)):
            return None
        return (
            "a valid operator token is required: send 'Authorization: Bearer <token>' "
            "or open /_console?token=<token> once"
        )

    def host_refusal(self, headers: Mapping[str, str], *, bound_host: str = "") -> str | None:
        """Without a token: None when the Host header names this machine's loopback (or
        `bound_host`), else why the request is refused (for the 403's detail)."""
        if self.token is not None:
            return None
        header = headers.get("host")
        if header is None:
            return None
        name = host_name(header)
        if is_loopback_name(name) or (bound_host and name == host_name(bound_host)):
            return None
        return (
            f"Host {header[:100]!r} is not this machine's loopback name; without an operator "
            "token the operator endpoints answer only requests addressed to localhost or "
            "127.0.0.1 (a guard against DNS rebinding)"
        )

    def matches(self, presented: str | None) -> bool:
        if self.token is None or presented is None:
            return False
        return hmac.compare_digest(presented.encode(), self.token.encode())
