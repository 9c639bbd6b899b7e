"""Tools for testing motet apps (not imported by `import motet`)."""

from .._public import publish as _publish
from ._harness import TestRuntime as TestRuntime
from ._harness import VirtualTimeRequired as VirtualTimeRequired
from ._harness import open_test_runtime as open_test_runtime
from ._http import HttpResult as HttpResult
from ._http import TestClient as TestClient

__all__ = ["HttpResult", "TestClient", "TestRuntime", "VirtualTimeRequired", "open_test_runtime"]

_publish(__name__, globals())
