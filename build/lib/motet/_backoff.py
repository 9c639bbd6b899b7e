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

from ._validators import Check, fraction, is_number, seconds

_AT_LEAST_ONE = Check("a number >= 1", lambda value: bool(value >= 1), "a number", is_number)


@attrs.frozen
class Backoff:
    """The n-th delay (1-based) is `min(cap, initial * factor**(n - 1))` seconds, times a
    factor drawn from [1 - jitter, 1 + jitter] when `jitter` is set. `initial=0` never
    waits."""

    initial: float = attrs.field(validator=seconds(allow_zero=True))
    factor: float = attrs.field(default=2.0, validator=_AT_LEAST_ONE)
    cap: float = attrs.field(default=math.inf, validator=seconds(allow_zero=True, allow_inf=True))
    jitter: float = attrs.field(default=0.0, validator=fraction())

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
