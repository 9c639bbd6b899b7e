"""How long to wait before the n-th try again: one record for every loop that backs off.

Queue retries, supervisor restarts, the Redis link's reconnects, a step actor riding out a
backend outage and `motet start --instances` restarting a process all wait the same way:
the first delay, multiplied by `factor` per try, at most `cap`, optionally spread by a random
factor in [1 - jitter, 1 + jitter] so that many failing at once do not retry in lockstep.
The random source is passed in, so a test seeds it and gets the same delays every run.
"""

from __future__ import annotations

import math
import random

import attrs

from ._validators import seconds


def _factor(instance: Backoff, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
        raise ValueError(f"Backoff.factor must be a number >= 1, got {value!r}")


def _jitter(instance: Backoff, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"Backoff.jitter must be a number in [0, 1], got {value!r}")


@attrs.frozen
class Backoff:
    """The n-th delay (1-based) is `min(cap, initial * factor**(n - 1))` seconds, times a
    factor drawn from [1 - jitter, 1 + jitter] when `jitter` is set. `initial=0` never
    waits."""

    initial: float = attrs.field(validator=seconds(allow_zero=True))
    factor: float = attrs.field(default=2.0, validator=_factor)
    cap: float = attrs.field(default=math.inf, validator=seconds(allow_zero=True, allow_inf=True))
    jitter: float = attrs.field(default=0.0, validator=_jitter)

    def delay(self, nth: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the `nth` try again; `rng` (default: the `random`
        module) draws the jitter."""
        if nth <= 0 or self.initial <= 0:
            return 0.0
        try:
            # A long outage must not overflow the float: past the cap it is the cap.
            base = min(self.cap, self.initial * self.factor ** (nth - 1))
        except OverflowError:
            base = self.cap
        if not self.jitter:
            return float(base)
        draw = (rng if rng is not None else random).uniform(1 - self.jitter, 1 + self.jitter)
        return max(0.0, base * draw)
