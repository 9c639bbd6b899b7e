"""Finding and importing step files: naming, exports, helpers, and import failures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from motet._errors import StepDefinitionError
from motet.steps import (
    HttpTrigger,
    QueueTrigger,
    discover_step_files,
    load_steps,
    step_module_name,
)

from .conftest import WriteFiles

API_STEP = """
    config = {"type": "api", "name": "%s", "method": "GET", "path": "%s"}

    async def handler(request, ctx):
        return {"status": 200, "body": {}}
"""


def test_discovers_both_namings_recursively_sorted_skipping_hidden_and_pycache(
    project: WriteFiles,
) -> None:
    steps = project(
        {
            "steps/b_step.py": "",
            "steps/a.step.py": "",
            "steps/api/pets/create_step.py": "",
            "steps/api/list.step.py": "",
            "steps/helpers.py": "",
            "steps/stepper.py": "",
            "steps/not_a_step.txt": "",
            "steps/.hidden/x_step.py": "",
            "steps/__pycache__/y_step.py": "",
            "steps/.z_step.py": "",
        }
    )
    found = [p.relative_to(steps).as_posix() for p in discover_step_files(steps)]
    assert found == [
        "a.step.py",
        "api/list.step.py",
        "api/pets/create_step.py",
        "b_step.py",
    ]


def test_loads_config_and_handler_exports(project: WriteFiles) -> None:
    steps = project({"steps/pets_step.py": API_STEP % ("ListPets", "/pets")})
    (step,) = load_steps(steps)
    assert step.name == "ListPets"
    assert step.triggers == (HttpTrigger(method="GET", path="/pets"),)
    assert step.file == steps / "pets_step.py"
    assert step.handler.__name__ == "handler"


def test_dotted_step_file_name_imports(project: WriteFiles) -> None:
    steps = project({"steps/list-pets.step.py": API_STEP % ("ListPets", "/pets")})
    (step,) = load_steps(steps)
    assert step.name == "ListPets"


def test_step_definition_under_any_name_and_unpacked(project: WriteFiles) -> None:
    steps = project(
        {
            "steps/a_step.py": """
                from motet.steps import queue, step

                async def work(input, ctx):
                    return None

                definition = step({"name": "A", "triggers": [queue("a")]}, work)
            """,
            "steps/b_step.py": """
                from motet.steps import queue, step

                async def work(input, ctx):
                    return None

                config, handler = step({"name": "B", "triggers": [queue("b")]}, work)
            """,
            "steps/c_step.py": """
                from motet.steps import queue, step

                @step({"name": "C", "triggers": [queue("c")]})
                async def handler(input, ctx):
                    return None
            """,
            "steps/d_step.py": """
                from motet.steps import queue, step

                async def work(input, ctx):
                    return None

                definition = step({"name": "D", "triggers": [queue("d")]}, work)
                config, handler = definition
            """,
        }
    )
    loaded = load_steps(steps)
    assert [s.name for s in loaded] == ["A", "B", "C", "D"]
    assert [s.triggers for s in loaded] == [(QueueTrigger(topic=t),) for t in "abcd"]


def test_steps_import_project_helpers_and_string_annotations_resolve(
    project: WriteFiles,
) -> None:
    steps = project(
        {
            "shared/models.py": """
                import attrs

                @attrs.frozen
                class Pet:
                    name: str
            """,
            "steps/pets_step.py": """
                from __future__ import annotations

                import dataclasses

                from shared.models import Pet
                from motet.steps import http, queue, step

                @dataclasses.dataclass
                class Order:
                    pet: Pet
                    quantity: int = 1

                config = {"name": "Order", "triggers": [queue("order", input=Order)]}

                async def handler(input: Order, ctx) -> None:
                    return None
            """,
        }
    )
    (step,) = load_steps(steps)
    assert str(steps.parent) in sys.path
    from motet.steps import make_converter, validate

    order = validate(make_converter(), {"pet": {"name": "Rex"}}, step.triggers[0].input)
    assert type(order).__name__ == "Order"
    assert type(order.pet).__name__ == "Pet"  # type: ignore[attr-defined]


def test_module_names_are_unique_per_folder_and_stable(tmp_path: Path) -> None:
    a = step_module_name(tmp_path / "one", tmp_path / "one" / "api" / "x.step.py")
    b = step_module_name(tmp_path / "two", tmp_path / "two" / "api" / "x.step.py")
    again = step_module_name(tmp_path / "one", tmp_path / "one" / "api" / "x.step.py")
    assert a != b
    assert a == again
    assert a.isidentifier()
    assert a.endswith("__api__x_step")


def test_same_relative_path_in_two_projects_keeps_both_modules(tmp_path: Path) -> None:
    for name in ("one", "two"):
        folder = tmp_path / name / "steps"
        folder.mkdir(parents=True)
        (folder / "pets_step.py").write_text(
            "import attrs\n"
            f"@attrs.frozen\nclass Pet:\n    kind: str = {name!r}\n"
            "config = {'name': 'P', 'triggers': [{'type': 'queue', 'topic': 'p', 'input': Pet}]}\n"
            "def handler(input, ctx):\n    return None\n"
        )
    (one,) = load_steps(tmp_path / "one" / "steps")
    (two,) = load_steps(tmp_path / "two" / "steps")
    assert one.triggers[0].input().kind == "one"  # type: ignore[union-attr]
    assert two.triggers[0].input().kind == "two"  # type: ignore[union-attr]


def test_missing_steps_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StepDefinitionError, match="steps folder does not exist"):
        load_steps(tmp_path / "nope")


def test_empty_steps_folder_loads_nothing(project: WriteFiles) -> None:
    assert load_steps(project({})) == []


def test_syntax_error_names_file_and_line(project: WriteFiles) -> None:
    steps = project({"steps/bad_step.py": "config = {\n"})
    with pytest.raises(StepDefinitionError) as info:
        load_steps(steps)
    err = info.value
    assert err.file == steps / "bad_step.py"
    assert "SyntaxError" in str(err)
    assert "(line 1)" in str(err)
    assert isinstance(err.__cause__, SyntaxError)


def test_import_error_names_file_and_original_message(project: WriteFiles) -> None:
    steps = project({"steps/bad_step.py": "import no_such_module_for_motet\n"})
    with pytest.raises(StepDefinitionError) as info:
        load_steps(steps)
    assert info.value.file == steps / "bad_step.py"
    assert "ModuleNotFoundError: No module named 'no_such_module_for_motet'" in str(info.value)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert not [m for m in sys.modules if "bad_step" in m]


def test_exception_in_module_body_names_file(project: WriteFiles) -> None:
    steps = project({"steps/boom_step.py": "raise RuntimeError('db not reachable')\n"})
    with pytest.raises(StepDefinitionError, match=r"RuntimeError: db not reachable") as info:
        load_steps(steps)
    assert info.value.file == steps / "boom_step.py"


def test_bad_trigger_at_import_time_gets_the_file(project: WriteFiles) -> None:
    steps = project(
        {
            "steps/bad_step.py": """
                from motet.steps import http
                config = {"name": "Bad", "triggers": [http("GET", "pets")]}
                def handler(request, ctx):
                    return None
            """
        }
    )
    with pytest.raises(StepDefinitionError) as info:
        load_steps(steps)
    err = info.value
    assert err.file == steps / "bad_step.py"
    assert err.field == "path"
    assert "starting with '/'" in str(err)
    assert str(err).startswith(str(steps / "bad_step.py"))


def test_file_without_exports_is_an_error(project: WriteFiles) -> None:
    steps = project({"steps/empty_step.py": "x = 1\n"})
    with pytest.raises(StepDefinitionError, match="exports neither `config`") as info:
        load_steps(steps)
    assert info.value.file == steps / "empty_step.py"


def test_two_definitions_in_one_file_is_an_error(project: WriteFiles) -> None:
    steps = project(
        {
            "steps/two_step.py": """
                from motet.steps import queue, step
                def h(input, ctx):
                    return None
                first = step({"name": "A", "triggers": [queue("a")]}, h)
                second = step({"name": "B", "triggers": [queue("b")]}, h)
            """
        }
    )
    with pytest.raises(
        StepDefinitionError, match=r"2 step\(\.\.\.\) definitions \(first, second\)"
    ):
        load_steps(steps)


def test_config_without_handler_is_an_error(project: WriteFiles) -> None:
    steps = project(
        {"steps/a_step.py": "config = {'type': 'event', 'name': 'A', 'subscribes': ['a']}\n"}
    )
    with pytest.raises(StepDefinitionError) as info:
        load_steps(steps)
    assert info.value.file == steps / "a_step.py"
    assert info.value.step == "A"
    assert info.value.field == "handler"


def test_duplicate_step_names_name_both_files(project: WriteFiles) -> None:
    steps = project(
        {
            "steps/a_step.py": API_STEP % ("Pets", "/a"),
            "steps/b_step.py": API_STEP % ("Pets", "/b"),
        }
    )
    with pytest.raises(StepDefinitionError) as info:
        load_steps(steps)
    err = info.value
    assert err.file == steps / "b_step.py"
    assert err.step == "Pets"
    assert err.field == "name"
    assert str(steps / "a_step.py") in str(err)


def test_two_steps_serving_one_route_name_both(project: WriteFiles) -> None:
    steps = project(
        {
            "steps/a_step.py": API_STEP % ("GetPet", "/pets/:id"),
            "steps/b_step.py": API_STEP % ("FetchPet", "/pets/{pet_id}"),
        }
    )
    with pytest.raises(StepDefinitionError) as info:
        load_steps(steps)
    assert info.value.step == "FetchPet"
    assert "'GetPet'" in str(info.value)
    assert str(steps / "a_step.py") in str(info.value)


def test_same_path_different_methods_is_fine(project: WriteFiles) -> None:
    steps = project(
        {
            "steps/a_step.py": API_STEP % ("GetPets", "/pets"),
            "steps/b_step.py": (API_STEP % ("PostPets", "/pets")).replace("GET", "POST"),
        }
    )
    assert [s.name for s in load_steps(steps)] == ["GetPets", "PostPets"]


def test_symlinked_folders_are_not_followed(project: WriteFiles) -> None:
    steps = project({"steps/a_step.py": ""})
    (steps / "loop").symlink_to(steps, target_is_directory=True)
    assert discover_step_files(steps) == [steps / "a_step.py"]
