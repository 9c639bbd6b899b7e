"""How the runtime should call a cron handler: `(ctx)` or `(input, ctx)`."""

from typing import Any

import pytest

from motet.steps import cron_wants_input


async def ctx_only(ctx: Any) -> None:
    return None


async def input_and_ctx(_input: Any, ctx: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("handler", "wants"),
    [
        (ctx_only, False),
        (input_and_ctx, True),
        (lambda ctx, extra=None: None, False),
        (lambda *args: None, True),
        (lambda *args, **kwargs: None, True),
        (print, True),  # no signature: the 1.0 convention
    ],
)
def test_cron_wants_input(handler: Any, wants: bool) -> None:
    assert cron_wants_input(handler) is wants
