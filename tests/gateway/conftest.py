"""Shared pieces of the gateway tests: schemas, HTTP steps, and a direct HttpInvoker.

`DirectInvoker` is the runtime's side of the gateway reduced to what the contract says:
it really calls `step.handler(request, ctx)` with a small context and returns what the
handler returned; `log_error` writes through motet's LogHub so tests read the log lines.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypedDict

import attrs
import pytest
import trio

from motet._logging import Logger, LogHub, LogRecord
from motet.gateway import GatewayOptions, Request, Response, build_app, gateway_app, serve
from motet.steps._model import HttpTrigger, Step
from motet.steps._schema import make_converter


@attrs.frozen
class NewPet:
    name: str
    age: int
    tags: list[str] = attrs.Factory(list)


@attrs.frozen
class Pet:
    id: str
    name: str
    age: int


@dataclasses.dataclass(frozen=True)
class SearchQuery:
    q: str
    limit: int = 10
    tag: list[str] = dataclasses.field(default_factory=list)
    exact: bool = False


class Owner(TypedDict):
    owner: str
    pet: str


@dataclasses.dataclass
class Note:
    text: str


@attrs.frozen
class Ctx:
    """The minimal handler context: what these handlers use."""

    trace_id: str
    logger: Logger
    emitted: list[tuple[str, Any]]

    async def emit(self, topic: str, data: Any) -> None:
        await trio.lowlevel.checkpoint()  # a real emit awaits the backend
        self.emitted.append((topic, data))


class DirectInvoker:
    def __init__(self) -> None:
        self.records: list[LogRecord] = []
        self.hub = LogHub(lambda: 0.0)
        self.hub.add_sink(self.records.append)
        self.emitted: list[tuple[str, Any]] = []
        self.calls = 0

    async def invoke_http(self, step: Step, trigger: HttpTrigger, request: Request) -> Any:
        self.calls += 1
        ctx = Ctx(
            request.trace_id,
            self.hub.logger(step=step.name, trace_id=request.trace_id),
            self.emitted,
        )
        result = step.handler(request, ctx)
        if inspect.isawaitable(result):
            result = await result
        return result

    def log_error(self, message: str, *, trace_id: str, step: str | None, **fields: Any) -> None:
        self.hub.logger(step=step, trace_id=trace_id).error(message, **fields)


# --- handlers -------------------------------------------------------------------------


async def create_pet(request: Request, ctx: Ctx) -> Any:
    new: NewPet = request.body
    pet = Pet(id="p1", name=new.name, age=new.age)
    await ctx.emit("pet.created", attrs.asdict(pet))
    return {"status": 201, "body": pet, "headers": {"location": "/pets/p1"}}


async def get_pet(request: Request, ctx: Ctx) -> Any:
    return Response(200, {"id": request.path_params["id"], "query": dict(request.query)})


async def delete_pet(request: Request, ctx: Ctx) -> None:
    return None


def get_owner_pet(request: Request, ctx: Ctx) -> Any:  # a plain def handler
    return dict(request.pathParams)


async def search(request: Request, ctx: Ctx) -> Any:
    return [request.query.get("q"), request.queryParams.get("tag")]


async def boom(request: Request, ctx: Ctx) -> Any:
    raise RuntimeError("secret database password in this message")


async def boom_group(request: Request, ctx: Ctx) -> Any:
    async def fail() -> None:
        raise KeyError("inner")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fail)
        nursery.start_soon(trio.sleep_forever)


async def slow(request: Request, ctx: Ctx) -> Any:
    await trio.sleep_forever()


async def echo(request: Request, ctx: Ctx) -> Any:
    return {
        "body": request.body,
        "raw": len(request.raw_body),
        "method": request.method,
        "path": request.path,
        "trace_id": request.trace_id,
        "x_custom": request.headers.get("x-custom"),
        "header_names_lower": all(k == k.lower() for k in request.headers),
    }


async def text(request: Request, ctx: Ctx) -> Any:
    return {"status": 200, "body": "<h1>hi</h1>", "headers": {"Content-Type": "text/html"}}


async def note(request: Request, ctx: Ctx) -> Any:
    return Note("dataclass body")


async def bad_status(request: Request, ctx: Ctx) -> Any:
    return {"status": "ok", "body": 1}


async def not_json(request: Request, ctx: Ctx) -> Any:
    return {"when": object()}


def _step(name: str, handler: Callable[..., Any], *triggers: HttpTrigger) -> Step:
    return Step(name=name, triggers=triggers, handler=handler, flows=("pets",))


def make_steps() -> list[Step]:
    return [
        _step(
            "create-pet", create_pet, HttpTrigger("POST", "/pets", body=NewPet, response={201: Pet})
        ),
        _step("get-pet", get_pet, HttpTrigger("GET", "/pets/:id")),
        _step("delete-pet", delete_pet, HttpTrigger("DELETE", "/pets/{id}")),
        _step(
            "owner-pet",
            get_owner_pet,
            HttpTrigger("GET", "/owners/{owner}/pets/:pet", response={200: Owner}),
        ),
        _step("search", search, HttpTrigger("GET", "/search", query=SearchQuery)),
        _step("boom", boom, HttpTrigger("POST", "/boom")),
        _step("boom-group", boom_group, HttpTrigger("POST", "/boom-group")),
        _step("slow", slow, HttpTrigger("GET", "/slow", timeout=0.3)),
        _step("echo", echo, HttpTrigger("POST", "/echo")),
        _step("text", text, HttpTrigger("GET", "/text")),
        _step("note", note, HttpTrigger("GET", "/note")),
        _step("bad-status", bad_status, HttpTrigger("GET", "/bad-status")),
        _step("not-json", not_json, HttpTrigger("GET", "/not-json")),
    ]


@pytest.fixture
def invoker() -> DirectInvoker:
    return DirectInvoker()


@pytest.fixture
def converter() -> Any:
    return make_converter()


@pytest.fixture(params=["plain", "quart"])
def app(request: pytest.FixtureRequest, invoker: DirectInvoker, converter: Any) -> Any:
    """The gateway both ways it is served: the plain ASGI app `motet start` runs, and the
    quart-trio app `build_app` gives users who add their own routes. (Modules that drive
    Quart's own test client override this with `quart_app`.)"""
    make = gateway_app if request.param == "plain" else build_app
    return make(
        make_steps(),
        invoker,
        converter=converter,
        options=GatewayOptions(max_body_size=4096, read_timeout=0.5),
    )


def quart_app(invoker: DirectInvoker, converter: Any) -> Any:
    return build_app(
        make_steps(),
        invoker,
        converter=converter,
        options=GatewayOptions(max_body_size=4096, read_timeout=0.5),
    )


Starter = Callable[..., Awaitable[str]]


@pytest.fixture
async def start_server(nursery: trio.Nursery) -> AsyncIterator[Starter]:
    """`await start_server(app, **options)` serves on 127.0.0.1:<free port>, returns the URL;
    every server is stopped gracefully when the test ends."""
    stop = trio.Event()

    async def start(app: Any, **options: Any) -> str:
        options.setdefault("port", 0)
        urls: list[str] = await nursery.start(
            functools.partial(serve, app, GatewayOptions(**options), shutdown_trigger=stop.wait)
        )
        return urls[0]

    yield start
    stop.set()
