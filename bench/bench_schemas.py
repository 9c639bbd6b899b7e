"""JSON Schema validators on a pydantic-generated schema, next to motet's attrs/cattrs path on
the same body (issue 13: which validator motet uses for `Model.model_json_schema()`).

    .venv/bin/python bench/bench_schemas.py [--rounds 7]

The schema is `Order.model_json_schema()` of the pydantic model below: `$defs`/`$ref`, nested
objects, arrays of objects, an enum, formats (uuid, date-time, date), nullable `anyOf`, a
pattern, a Literal, a dict. The attrs classes `AOrder`... describe the same body for motet's
own path (the strict cattrs converter). Each candidate validates a valid body (an order of 5
items, 1.2 KB of JSON) and an invalid one (4 problems) and must agree on which is which.
Figures are each candidate's best of `--rounds` interleaved rounds; under a shared machine's
load compare the ratios to the attrs/cattrs row of the same run, not the absolute figures.
"""

from __future__ import annotations

import argparse
import datetime
import enum
import json
import timeit
import uuid
from collections.abc import Callable
from typing import Any, Literal

import attrs
import fastjsonschema
import jsonschema
import jsonschema_rs
from pydantic import BaseModel, Field

from motet import InputValidationError
from motet.steps._schema import make_converter, validate
from motet.steps._schema_dict import load_json_schema


class Status(enum.StrEnum):
    NEW = "new"
    PAID = "paid"
    SHIPPED = "shipped"


class Address(BaseModel):
    street: str
    city: str
    zip: str = Field(pattern=r"^[0-9]{5}$")
    country: str = "FR"


class Customer(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    email: str
    address: Address | None = None


class Item(BaseModel):
    sku: str
    quantity: int = Field(ge=1)
    price: float = Field(gt=0)
    tags: list[str] = []


class Order(BaseModel):
    id: uuid.UUID
    created: datetime.datetime
    deliver_on: datetime.date | None = None
    customer: Customer
    items: list[Item] = Field(min_length=1)
    status: Status = Status.NEW
    priority: Literal["low", "normal", "high"] = "normal"
    note: str | None = None
    metadata: dict[str, str] = {}


# The same body for motet's cattrs path: the types, and the bounds as attrs validators.
@attrs.frozen
class AAddress:
    street: str
    city: str
    zip: str = attrs.field(validator=attrs.validators.matches_re(r"[0-9]{5}"))
    country: str = "FR"


@attrs.frozen
class ACustomer:
    name: str = attrs.field(validator=[attrs.validators.min_len(1), attrs.validators.max_len(100)])
    email: str
    address: AAddress | None = None


@attrs.frozen
class AItem:
    sku: str
    quantity: int = attrs.field(validator=attrs.validators.ge(1))
    price: float = attrs.field(validator=attrs.validators.gt(0))
    tags: list[str] = attrs.Factory(list)


@attrs.frozen
class AOrder:
    id: uuid.UUID
    created: datetime.datetime
    customer: ACustomer
    items: list[AItem] = attrs.field(validator=attrs.validators.min_len(1))
    deliver_on: datetime.date | None = None
    status: Status = Status.NEW
    priority: Literal["low", "normal", "high"] = "normal"
    note: str | None = None
    metadata: dict[str, str] = attrs.Factory(dict)


VALID: dict[str, Any] = {
    "id": "0b0f4c0e-5c1a-4a53-9d1e-2b4f4f0e8d11",
    "created": "2026-12-07T08:30:00+00:00",
    "deliver_on": "2026-12-10",
    "customer": {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "address": {"street": "1 rue de la Paix", "city": "Paris", "zip": "75002"},
    },
    "items": [
        {"sku": f"SKU-{i}", "quantity": i + 1, "price": 9.5 * (i + 1), "tags": ["gift", "eco"]}
        for i in range(5)
    ],
    "status": "paid",
    "priority": "high",
    "note": None,
    "metadata": {"channel": "web", "campaign": "winter"},
}
INVALID: dict[str, Any] = json.loads(json.dumps(VALID))
INVALID["customer"]["address"]["zip"] = "7500"  # pattern
INVALID["items"][2]["quantity"] = 0  # minimum
INVALID["items"][4]["price"] = "12"  # type
INVALID["status"] = "lost"  # enum


def best_us(fn: Callable[[], object], rounds: int, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=rounds)) / number * 1e6


def swallow(fn: Callable[[Any], Any], body: Any) -> Callable[[], object]:
    """A call that returns the errors (or None): the invalid body's full cost."""

    def call() -> object:
        try:
            return fn(body)
        except Exception as exc:
            return exc

    return call


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    schema = Order.model_json_schema()
    converter = make_converter()
    compiled_rs = jsonschema_rs.validator_for(schema, validate_formats=True)
    compiled_fast = fastjsonschema.compile(schema)
    compiled_py = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    motet_schema = load_json_schema(schema)

    def motet_path(kind: Any) -> Callable[[Any], Any]:
        return lambda body: validate(converter, body, kind, root="$.body", what="request body")

    candidates: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        # name: (valid-body call, invalid-body call giving every problem the tool reports)
        "motet attrs/cattrs (baseline)": (motet_path(AOrder), motet_path(AOrder)),
        "jsonschema-rs is_valid": (
            compiled_rs.is_valid,
            lambda b: list(compiled_rs.iter_errors(b)),
        ),
        "motet JSON Schema (jsonschema-rs)": (motet_path(motet_schema), motet_path(motet_schema)),
        "fastjsonschema (first error only)": (compiled_fast, compiled_fast),
        "jsonschema (pure Python)": (
            compiled_py.is_valid,
            lambda b: list(compiled_py.iter_errors(b)),
        ),
        "motet pydantic model_validate": (motet_path(Order), motet_path(Order)),
    }

    size, defs = len(json.dumps(schema)), list(schema["$defs"])
    print(f"schema: Order.model_json_schema(), {size} B, $defs {defs}")
    print(f"bodies: valid {len(json.dumps(VALID))} B, invalid with 4 problems\n")

    # Agreement first: a fast validator that accepts the invalid body is no candidate.
    for name, (ok_call, bad_call) in candidates.items():
        ok = swallow(ok_call, VALID)()
        bad = swallow(bad_call, INVALID)()
        accepted = ok is not False and not isinstance(ok, Exception)
        refused = bad is False or isinstance(bad, Exception) or (isinstance(bad, list) and bad)
        assert accepted and refused, (name, ok, bad)

    # Rounds interleave the candidates, and each keeps its best round: a burst of load from
    # other processes then costs every candidate a round, not one candidate all of its own.
    number = 1_000
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.rounds):
        for name, (ok_call, bad_call) in candidates.items():
            n = number // 20 if "pure Python" in name else number
            for which, call in (
                ("ok", swallow(ok_call, VALID)),
                ("bad", swallow(bad_call, INVALID)),
            ):
                us = best_us(call, 1, n)
                best[name, which] = min(us, best.get((name, which), us))
    raw = json.dumps(VALID).encode()
    decode_us = best_us(lambda: json.loads(raw), args.rounds, number)
    base = next(iter(candidates))
    print(f"{'candidate':36} {'valid us':>9} {'x base':>7} {'invalid us':>11} {'x base':>7}")
    for name in candidates:
        ok_us, bad_us = best[name, "ok"], best[name, "bad"]
        ok_x, bad_x = ok_us / best[base, "ok"], bad_us / best[base, "bad"]
        print(f"{name:36} {ok_us:9.2f} {ok_x:7.2f} {bad_us:11.2f} {bad_x:7.2f}")
    decode_x = decode_us / best[base, "ok"]
    print(f"{'(json.loads of the valid body)':36} {decode_us:9.2f} {decode_x:7.2f}")

    print("\nmessages for the invalid body:")
    for kind in (AOrder, motet_schema, Order):
        try:
            motet_path(kind)(INVALID)
        except InputValidationError as exc:
            label = getattr(kind, "__name__", "JSON Schema")
            print(f"  {label}:")
            for message in exc.messages:
                print(f"    {message}")
    try:
        compiled_fast(INVALID)
    except fastjsonschema.JsonSchemaValueException as exc:
        print(f"  fastjsonschema:\n    {exc.message} (path {exc.path})")

    print("\ncompile, once per schema when the step loads:")
    compiles: dict[str, Callable[[], object]] = {
        "motet load_json_schema (meta check + jsonschema-rs)": lambda: load_json_schema(schema),
        "jsonschema-rs validator_for": lambda: jsonschema_rs.validator_for(
            schema, validate_formats=True
        ),
        "fastjsonschema.compile (generates Python)": lambda: fastjsonschema.compile(schema),
        "jsonschema Draft202012Validator": lambda: jsonschema.Draft202012Validator(schema),
    }
    for name, fn in compiles.items():
        print(f"  {name:52} {best_us(fn, args.rounds, 20):10.1f} us")


if __name__ == "__main__":
    main()
