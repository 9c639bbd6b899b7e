"""motet: Motia-style steps (HTTP, queues, cron, state) as supervised trio actors.

Write steps in `steps/*_step.py`; run them with `motet start`, embed them with
`open_runtime(...)`, test them with `motet.testing.open_test_runtime(...)`.
"""

from ._clock import WallClock as WallClock
from ._context import Context as Context
from ._context import MessageInfo as MessageInfo
from ._context import SyncContext as SyncContext
from ._envelope import DeadLetter as DeadLetter
from ._envelope import Envelope as Envelope
from ._envelope import QueueOptions as QueueOptions
from ._errors import BackendError as BackendError
from ._errors import BackendUnavailable as BackendUnavailable
from ._errors import GatewayError as GatewayError
from ._errors import HandlerError as HandlerError
from ._errors import HandlerTimeout as HandlerTimeout
from ._errors import InputValidationError as InputValidationError
from ._errors import MailboxFull as MailboxFull
from ._errors import MotetError as MotetError
from ._errors import NonRetryable as NonRetryable
from ._errors import ProjectConfigError as ProjectConfigError
from ._errors import StepDefinitionError as StepDefinitionError
from ._errors import SupervisorGaveUp as SupervisorGaveUp
from ._errors import UndeclaredTopicError as UndeclaredTopicError
from ._observer import Observer as Observer
from ._observer import RuntimeView as RuntimeView
from ._open import open_runtime as open_runtime
from ._public import publish as _publish
from ._runtime import Runtime as Runtime
from ._runtime import RuntimeOptions as RuntimeOptions
from .steps._http import Request as Request
from .steps._http import Response as Response
from .steps._model import CronTrigger as CronTrigger
from .steps._model import HttpTrigger as HttpTrigger
from .steps._model import QueueTrigger as QueueTrigger
from .steps._model import StateTrigger as StateTrigger
from .steps._model import Step as Step
from .steps._model import step as step
from .steps._triggers import cron as cron
from .steps._triggers import http as http
from .steps._triggers import queue as queue
from .steps._triggers import state as state

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "Context",
    "CronTrigger",
    "DeadLetter",
    "Envelope",
    "GatewayError",
    "HandlerError",
    "HandlerTimeout",
    "HttpTrigger",
    "InputValidationError",
    "MailboxFull",
    "MessageInfo",
    "MotetError",
    "NonRetryable",
    "Observer",
    "ProjectConfigError",
    "QueueOptions",
    "QueueTrigger",
    "Request",
    "Response",
    "Runtime",
    "RuntimeOptions",
    "RuntimeView",
    "StateTrigger",
    "Step",
    "StepDefinitionError",
    "SupervisorGaveUp",
    "SyncContext",
    "UndeclaredTopicError",
    "WallClock",
    "cron",
    "http",
    "open_runtime",
    "queue",
    "state",
    "step",
]

_publish(__name__, globals())
