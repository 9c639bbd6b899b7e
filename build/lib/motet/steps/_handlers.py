"""Handler signature checks: a handler that cannot be called the way its triggers call it
is a loading error, not a TypeError on the first message.

    HTTP              handler(request, ctx)
    queue / state     handler(input, ctx)
    cron              handler(ctx) or handler(input, ctx)   (see `cron_wants_input`)
    several triggers  handler(input, ctx)                    (ctx.trigger says which)

`def` and `async def` are both accepted; `*args`/`**kwargs` accept anything.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ._fields import Where
from ._model import CronTrigger, HttpTrigger, Trigger

__all__ = [
    "check_condition",
    "check_handler",
    "condition_wants_ctx",
    "cron_wants_input",
    "noop_handler",
]


@attrs.frozen
class _Arity:
    required: int  # positional parameters without a default
    maximum: float  # positional parameters in all; inf with *args
    keyword_only_required: tuple[str, ...]

    def accepts(self, n: int) -> bool:
        return self.required <= n <= self.maximum and not self.keyword_only_required


def _arity(handler: Callable[..., Any]) -> _Arity | None:
    try:
        sig = inspect.signature(handler)
    except (TypeError, ValueError):  # some builtins and C callables have no signature
        return None
    positional = [
        p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    var = any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values())
    return _Arity(
        required=sum(1 for p in positional if p.default is p.empty),
        maximum=float("inf") if var else len(positional),
        keyword_only_required=tuple(
            p.name
            for p in sig.parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.default is p.empty
        ),
    )


def cron_wants_input(handler: Callable[..., Any]) -> bool:
    """Whether a cron-only handler is called as `(input, ctx)` rather than `(ctx)`.

    Two required positional parameters (Motia 1.0's `(_input, ctx)`) or `*args` mean yes;
    `(ctx)` and `(ctx, extra=None)` mean no.
    """
    arity = _arity(handler)
    if arity is None:
        return True
    return arity.required >= 2 or (arity.maximum == float("inf") and arity.required == 0)


def condition_wants_ctx(condition: Callable[..., Any]) -> bool:
    """Whether a state trigger's condition is called as Motia's `(input, ctx)` rather than
    `(input)`: two required positional parameters, or `*args`."""
    arity = _arity(condition)
    if arity is None:
        return False
    return arity.required >= 2 or arity.maximum == float("inf")


def check_condition(condition: Callable[..., Any], where: Where) -> None:
    """Raise a StepDefinitionError (field `condition`) unless it takes (input) or
    (input, ctx)."""
    arity = _arity(condition)
    if arity is None or arity.accepts(1) or arity.accepts(2):
        return
    where.fail(
        f"a condition is called as condition(input) or condition(input, ctx); "
        f"{_describe(condition)} takes neither",
        "condition",
    )


def _describe(handler: Callable[..., Any]) -> str:
    try:
        return f"def {getattr(handler, '__name__', 'handler')}{inspect.signature(handler)}"
    except (TypeError, ValueError):  # pragma: no cover - _arity already succeeded
        return repr(handler)


def check_handler(handler: Any, triggers: Sequence[Trigger], where: Where) -> None:
    """Raise a StepDefinitionError (field `handler`) if the triggers cannot call `handler`."""
    if handler is None:
        where.fail(
            "the step has no handler; export `handler` or use step(config, handler)", "handler"
        )
    if not callable(handler):
        where.fail(f"handler must be a function, got {type(handler).__name__}", "handler")
    if inspect.isasyncgenfunction(handler) or inspect.isgeneratorfunction(handler):
        where.fail("handler is a generator function; it must return a value, not yield", "handler")
    arity = _arity(handler)
    if arity is None or not triggers:  # a noop step's handler is never called
        return
    if arity.keyword_only_required:
        names = ", ".join(arity.keyword_only_required)
        where.fail(
            f"handler has required keyword-only parameters ({names}) that motet never passes",
            "handler",
        )
    counts: tuple[int, ...]
    if triggers and all(isinstance(t, CronTrigger) for t in triggers):
        expected, counts = "(ctx) or (input, ctx)", (1, 2)
    elif len(triggers) == 1 and isinstance(triggers[0], HttpTrigger):
        expected, counts = "(request, ctx)", (2,)
    elif len(triggers) == 1:
        expected, counts = "(input, ctx)", (2,)
    else:
        expected, counts = "(input, ctx), reading ctx.trigger for the trigger", (2,)
    if not any(arity.accepts(n) for n in counts):
        where.fail(
            f"handler signature {_describe(handler)} cannot be called as {expected}",
            "handler",
        )


def noop_handler(*args: Any) -> None:
    """The handler of a 0.x `noop` step: it has no triggers, so nothing ever calls it."""
    return None
