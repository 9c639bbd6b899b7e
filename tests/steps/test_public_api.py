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


def test_model_constructors_reach_the_loader() -> None:
    from motet.steps import _loader

    for name in ("http_trigger", "queue_trigger", "cron_trigger", "state_trigger"):
        assert callable(getattr(_loader, name))
