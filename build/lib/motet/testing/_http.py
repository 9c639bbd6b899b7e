"""An in-process HTTP client for a test runtime's HTTP steps (no socket)."""

from __future__ import annotations

import json as _json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .._runtime import Runtime

_MISSING: Any = object()


@attrs.frozen
class HttpResult:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def json(self) -> Any:
        return _json.loads(self.body) if self.body else None


class TestClient:
    """`await app.http.post("/pets", json={...})` → HttpResult(status, headers, body)."""

    __test__ = False

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._app: Any = None

    def _quart(self) -> Any:
        if self._app is None:
            from ..gateway import GatewayOptions, build_app

            assert self._runtime.dispatcher is not None
            self._app = build_app(
                [step for step in self._runtime.steps],
                self._runtime.dispatcher,
                converter=self._runtime.converter,
                options=GatewayOptions(),
            )
        return self._app

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = _MISSING,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> HttpResult:
        client = self._quart().test_client()
        kwargs: dict[str, Any] = {"method": method.upper(), "headers": dict(headers or {})}
        if json is not _MISSING:
            kwargs["json"] = json
        elif data is not None:
            kwargs["data"] = data
        if query:
            kwargs["query_string"] = dict(query)
        response = await client.open(path, **kwargs)
        body = await response.get_data()
        return HttpResult(
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=body if isinstance(body, bytes) else body.encode(),
        )

    async def get(self, path: str, **kwargs: Any) -> HttpResult:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> HttpResult:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> HttpResult:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> HttpResult:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> HttpResult:
        return await self.request("DELETE", path, **kwargs)
