"""`Envelope` and `Delivery` have hand-written `__init__`s (cheaper than attrs' frozen ones):
they must take exactly the attrs fields, in order, with attrs' defaults, and the classes
stay frozen attrs classes (evolve, eq, hash, pickle)."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import attrs
import pytest

from motet._envelope import Delivery, Envelope, with_data

ENVELOPE = ("topic", "data", "trace", "id1", "group", 5, 1.5, 2.5, 3.5, "key")


def delivery_values() -> tuple[Any, ...]:
    return (Envelope(*ENVELOPE), "step@topic", 2, "r1", 9.5)


@pytest.mark.parametrize(("cls", "values"), [(Envelope, ENVELOPE), (Delivery, None)])
def test_init_takes_every_field_in_order_with_attrs_defaults(cls: Any, values: Any) -> None:
    values = values or delivery_values()
    fields = attrs.fields(cls)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [p.name for p in params] == [f.name for f in fields]
    for param, field in zip(params, fields, strict=True):
        if field.default is attrs.NOTHING:
            assert param.default is inspect.Parameter.empty
        elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            assert param.default is None  # None: made by the factory
        else:
            assert param.default == field.default
    positional = cls(*values)
    by_name = cls(**{f.name: v for f, v in zip(fields, values, strict=True)})
    assert attrs.astuple(positional, recurse=False) == values
    assert positional == by_name and hash(positional) == hash(by_name)


def test_an_envelope_without_an_id_gets_a_new_one() -> None:
    first, second = Envelope("t", None, "tr"), Envelope("t", None, "tr", None)
    assert len(first.id) == 32 and first.id != second.id
    assert (first.group, first.priority, first.created_at, first.key) == (None, 0, 0.0, None)


@pytest.mark.parametrize("value", [Envelope(*ENVELOPE), Delivery(*delivery_values())])
def test_still_a_frozen_attrs_class(value: Any) -> None:
    name = attrs.fields(type(value))[1].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(value, name, "changed")
    assert attrs.evolve(value) == value
    assert getattr(attrs.evolve(value, **{name: "changed"}), name) == "changed"
    assert pickle.loads(pickle.dumps(value)) == value
    assert repr(value).startswith(type(value).__name__ + "(")


def test_with_data_is_evolve_of_the_data_alone() -> None:
    envelope = Envelope(*ENVELOPE)  # every field set, none at its default
    data = {"other": [1]}
    copy = with_data(envelope, data)
    assert type(copy) is Envelope and copy.data is data
    assert attrs.astuple(copy, recurse=False) == attrs.astuple(
        attrs.evolve(envelope, data=data), recurse=False
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        copy.data = None  # type: ignore[misc]
