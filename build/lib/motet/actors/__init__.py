"""The actors: the topic publisher, step actors and their mailboxes, the handler dispatcher,
retry policy and the clock actor (which fires cron schedules; their arithmetic is
`motet.steps.parse_cron`)."""

from .._public import publish as _publish
from ._clock_actor import CronJob as CronJob
from ._clock_actor import run_cron as run_cron
from ._dispatcher import Dispatcher as Dispatcher
from ._dispatcher import HandlerRun as HandlerRun
from ._mailbox import Mailbox as Mailbox
from ._mailbox import MailboxStatistics as MailboxStatistics
from ._mailbox import open_mailbox as open_mailbox
from ._publisher import Publisher as Publisher
from ._retry import RetryPolicy as RetryPolicy
from ._step_actor import StepActor as StepActor

__all__ = [
    "CronJob",
    "Dispatcher",
    "HandlerRun",
    "Mailbox",
    "MailboxStatistics",
    "Publisher",
    "RetryPolicy",
    "StepActor",
    "open_mailbox",
    "run_cron",
]

_publish(__name__, globals())
