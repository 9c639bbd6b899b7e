"""motet.backends re-exports its public names, sorted, each importable."""

import importlib

import motet.backends


def test_public_names() -> None:
    module = importlib.import_module("motet.backends")
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_memory_backend_is_a_backend() -> None:
    assert isinstance(motet.backends.MemoryBackend(), motet.backends.Backend)
