"""OTP-style supervision for trio tasks: child specs, restart strategies, intensity."""

from .._public import publish as _publish
from ._child import ChildTaskStatus as ChildTaskStatus
from ._event import ChildStatus as ChildStatus
from ._event import EventKind as EventKind
from ._event import SupervisorEvent as SupervisorEvent
from ._spec import ChildSpec as ChildSpec
from ._spec import RestartStrategy as RestartStrategy
from ._spec import RestartType as RestartType
from ._spec import SupervisorOptions as SupervisorOptions
from ._supervisor import Supervisor as Supervisor

__all__ = [
    "ChildSpec",
    "ChildStatus",
    "ChildTaskStatus",
    "EventKind",
    "RestartStrategy",
    "RestartType",
    "Supervisor",
    "SupervisorEvent",
    "SupervisorOptions",
]

_publish(__name__, globals())
