"""The actors: the topic router, step actors and their mailboxes, the handler dispatcher,
retry policy, cron schedules and the clock actor."""

from ._clock_actor import CronJob as CronJob
from ._clock_actor import run_cron as run_cron
from ._cron import CronSchedule as CronSchedule
from ._cron import parse_cron as parse_cron
from ._dispatcher import Dispatcher as Dispatcher
from ._dispatcher import HandlerRun as HandlerRun
from ._mailbox import Mailbox as Mailbox
from ._mailbox import MailboxStatistics as MailboxStatistics
from ._mailbox import open_mailbox as open_mailbox
from ._retry import RetryPolicy as RetryPolicy
from ._router import Router as Router
from ._step_actor import StepActor as StepActor

__all__ = [
    "CronJob",
    "CronSchedule",
    "Dispatcher",
    "HandlerRun",
    "Mailbox",
    "MailboxStatistics",
    "RetryPolicy",
    "Router",
    "StepActor",
    "open_mailbox",
    "parse_cron",
    "run_cron",
]
