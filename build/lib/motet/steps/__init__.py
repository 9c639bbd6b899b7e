"""The step model: step files, their two config forms, triggers, payload schemas, the
handler's HTTP contract and cron arithmetic (see docs/architecture.md for the layers)."""

from .._public import publish as _publish
from ._cron import CronSchedule as CronSchedule
from ._cron import parse_cron as parse_cron
from ._discovery import check_step_set as check_step_set
from ._discovery import discover_step_files as discover_step_files
from ._discovery import load_steps as load_steps
from ._discovery import step_module_name as step_module_name
from ._handlers import cron_wants_input as cron_wants_input
from ._http import HttpInvoker as HttpInvoker
from ._http import Request as Request
from ._http import Response as Response
from ._json_schema import json_schema as json_schema
from ._loader import load_step as load_step
from ._model import HTTP_METHODS as HTTP_METHODS
from ._model import CronTrigger as CronTrigger
from ._model import HttpTrigger as HttpTrigger
from ._model import QueueOverrides as QueueOverrides
from ._model import QueueTrigger as QueueTrigger
from ._model import StateTrigger as StateTrigger
from ._model import Step as Step
from ._model import StepDefinition as StepDefinition
from ._model import Trigger as Trigger
from ._model import step as step
from ._queue_options import merge_overrides as merge_overrides
from ._queue_options import parse_queue_options as parse_queue_options
from ._schema import make_converter as make_converter
from ._schema import schema_problem as schema_problem
from ._schema import to_json as to_json
from ._schema import validate as validate
from ._triggers import cron as cron
from ._triggers import http as http
from ._triggers import queue as queue
from ._triggers import state as state

__all__ = [
    "HTTP_METHODS",
    "CronSchedule",
    "CronTrigger",
    "HttpInvoker",
    "HttpTrigger",
    "QueueOverrides",
    "QueueTrigger",
    "Request",
    "Response",
    "StateTrigger",
    "Step",
    "StepDefinition",
    "Trigger",
    "check_step_set",
    "cron",
    "cron_wants_input",
    "discover_step_files",
    "http",
    "json_schema",
    "load_step",
    "load_steps",
    "make_converter",
    "merge_overrides",
    "parse_cron",
    "parse_queue_options",
    "queue",
    "schema_problem",
    "state",
    "step",
    "step_module_name",
    "to_json",
    "validate",
]

_publish(__name__, globals())
