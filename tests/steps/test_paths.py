"""HTTP trigger paths are parsed once, when the trigger is made: a bad path fails the step's
load (StepDefinitionError naming step and field), never the gateway; the gateway routes by the
parsed form the trigger carries."""

from __future__ import annotations

import pytest

from motet import StepDefinitionError, http
from motet.gateway._routes import RouteTable, collect_routes
from motet.steps import HttpTrigger, Step, load_step
from motet.steps._paths import PathError, parse_path


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("pets", "starting with '/'"),
        ("/pets/:pet-id", "':pet-id' in '/pets/:pet-id' needs a name like :id"),
        ("/pets/:", "':' in '/pets/:' needs a name"),
        ("/a/{1x}", "'{1x}' in '/a/{1x}' needs a name"),
        ("/a/{x}/b/:x", "'x' appears twice"),
        ("/a/<x>", "write parameters as ':id' or '{id}'"),
        ("/a/{x", "unbalanced braces"),
        ("/a/x}", "unbalanced braces"),
        ("/my pets", "no spaces"),
        ("/pets?x=1", "no spaces, query or fragment"),
        ("/pets#top", "no spaces, query or fragment"),
    ],
)
def test_bad_paths_fail_the_step_s_load_naming_the_step_and_field(path: str, message: str) -> None:
    with pytest.raises(PathError) as direct:
        parse_path(path)
    assert message in str(direct.value)
    with pytest.raises(StepDefinitionError) as loaded:
        load_step({"name": "pets", "triggers": [http("GET", path)]}, lambda req, ctx: None)
    # http(...) itself fails first: the error names the field, like a dict trigger's does
    assert loaded.value.field == "path"
    assert message in str(loaded.value)
    with pytest.raises(StepDefinitionError) as from_dict:
        load_step(
            {"name": "pets", "triggers": [{"type": "http", "method": "GET", "path": path}]},
            lambda req, ctx: None,
        )
    assert from_dict.value.step == "pets"
    assert from_dict.value.field == "triggers[0].path"


def test_path_forms() -> None:
    colon = parse_path("/owners/:owner/pets/{pet}.json")
    assert colon.rule == "/owners/<owner>/pets/<pet>.json"
    assert colon.openapi == "/owners/{owner}/pets/{pet}.json"
    assert colon.params == ("owner", "pet")
    assert colon.shape == "/owners/{}/pets/{}.json"
    assert colon.pattern.match("/owners/ann/pets/rex.json").groupdict() == {  # type: ignore[union-attr]
        "owner": "ann",
        "pet": "rex",
    }
    # a colon inside a segment is literal, as the gateway has always served it
    assert parse_path("/v1/pets:search").params == ()


def test_the_trigger_carries_its_parsed_path_and_the_gateway_uses_it() -> None:
    trigger = http("GET", "/pets/:id")
    assert trigger.route == parse_path("/pets/:id")
    assert trigger == HttpTrigger("GET", "/pets/:id")  # the parsed form is not part of equality
    assert "route" not in repr(trigger)
    step = Step(name="pets", triggers=(trigger,), handler=lambda req, ctx: None)
    [route] = collect_routes([step])
    assert route.path is trigger.route
    found = RouteTable([route]).match("GET", "/pets/7")
    assert found is not None and found.params == {"id": "7"}


def test_a_trigger_made_directly_with_a_bad_path_is_refused() -> None:
    with pytest.raises(PathError, match="appears twice"):
        HttpTrigger("GET", "/a/:x/:x")
