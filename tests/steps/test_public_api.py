"""Every public name is importable from its public path, and `__all__` is sorted."""

import importlib

import pytest


@pytest.mark.parametrize("package", ["motet.steps", "motet.project"])
def test_public_names(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, package
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    assert len(set(module.__all__)) == len(module.__all__)


def test_trigger_constructors_are_defined_once() -> None:
    """`http`, `queue`, `cron` and `state` are written in one module (they used to be written
    twice, a signature in the model forwarding to another through an alias module)."""
    import ast
    from pathlib import Path

    import motet
    import motet.steps

    names = ("http", "queue", "cron", "state")
    for name in names:
        public = getattr(motet, name)
        assert public is getattr(motet.steps, name)
        assert public.__module__ == "motet", name  # its public home (the AST check below
        # finds where it is written)
    package = Path(motet.steps.__file__).parent
    defined: dict[str, list[str]] = {}
    for file in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.FunctionDef) and node.col_offset == 0:
                defined.setdefault(node.name, []).append(file.name)
    wrappers = [n for n in defined if n.endswith("_trigger") and n[: -len("_trigger")] in names]
    assert wrappers == [], "a second constructor per trigger type"
    assert {name: defined[name] for name in names} == {name: ["_triggers.py"] for name in names}
