"""Mapping matching wall-clock times of one timezone to UTC instants, across DST changes.

Units: instants are whole UTC epoch seconds (`int`); a *wall* time is the local calendar
time counted in seconds since 1970-01-01T00:00 as if it were UTC (a naive datetime as an
int). At an instant u the wall time is u + offset(u).

Around a transition the wall clock either jumps forward (a *gap*: some wall times never
happen) or back by `delta` (a *repeat*: the wall times [A_start, A_end) happen twice, first
with the earlier, larger offset, then — from the transition T on — with the later one).

Two policies (chosen by `CronSchedule.every_hour`):

- *wall* (the usual, e.g. `0 8 * * *`, `30 2 * * *`): each matching wall time fires once.
  An existing time fires at its first occurrence; a time inside a gap fires at the gap's
  transition instant (the first instant after the jump). Several gap times map to the same
  instant and fire once. The fire instant of a wall time, `primary(w)`, never decreases as
  w increases, which is what makes the searches below a step or two.
- *real* (hour field `*`, e.g. `*/5 * * * *`): the schedule fires at every instant whose
  wall time matches, like cronie's handling of jobs that run more often than hourly: gap
  times are skipped and a repeated hour fires again, because it is a real hour of work.

Searches rely on one transition at a time (transitions of one zone are months apart).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

_EPOCH = datetime(1970, 1, 1)

MatchFinder = Callable[[int], int | None]  # wall -> matching wall (first >= / last <=) or None


def fixed_offset(zone: tzinfo) -> int | None:
    """The offset (s) of a zone that never changes it (UTC and the `Etc/` zones), else None:
    for those, wall time is instant + offset and no transition needs searching."""
    if zone is UTC:
        return 0
    key = getattr(zone, "key", None) or ""
    if key not in ("UTC", "Etc/UTC", "GMT", "Etc/GMT") and not key.startswith("Etc/"):
        return None
    off = datetime.fromtimestamp(0, tz=UTC).astimezone(zone).utcoffset()
    return None if off is None else int(off.total_seconds())


class ZoneMapper:
    """Instant <-> wall-time arithmetic for one zone (pure, no clock)."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone

    # -- primitives -------------------------------------------------------------------

    def _local(self, instant: int) -> datetime:
        return datetime.fromtimestamp(instant, tz=UTC).astimezone(self.zone)

    def offset(self, instant: int) -> int:
        off = self._local(instant).utcoffset()
        assert off is not None  # a zone always has an offset
        return int(off.total_seconds())

    def wall(self, instant: int) -> int:
        return instant + self.offset(instant)

    def _fold_offsets(self, wall: int) -> tuple[int, int]:
        """Offsets PEP 495 gives `wall` with fold=0 and fold=1 (equal outside transitions)."""
        naive = _EPOCH + timedelta(seconds=wall)
        offs = []
        for fold in (0, 1):
            off = naive.replace(tzinfo=self.zone, fold=fold).utcoffset()
            assert off is not None
            offs.append(int(off.total_seconds()))
        return offs[0], offs[1]

    def instances(self, wall: int) -> list[int]:
        """The instants (0, 1 or 2, ascending) at which the wall clock reads `wall`."""
        found = {wall - off for off in self._fold_offsets(wall)}
        return sorted(u for u in found if self.wall(u) == wall)

    def transition(self, before: int, after: int) -> int:
        """The first instant in (before, after] whose offset differs from `before`'s.
        Requires offset(before) != offset(after) and one transition in between."""
        off = self.offset(before)
        lo, hi = before, after  # invariant: offset(lo) == off, offset(hi) != off
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.offset(mid) == off:
                lo = mid
            else:
                hi = mid
        return hi

    def _gap_transition(self, wall: int) -> int:
        """For a wall time inside a gap: the instant of the jump."""
        a, b = (wall - off for off in self._fold_offsets(wall))
        return self.transition(min(a, b), max(a, b))

    def primary(self, wall: int) -> int:
        """The single instant a matching wall time fires at under the *wall* policy."""
        found = self.instances(wall)
        return found[0] if found else self._gap_transition(wall)

    def _repeat(self, instant: int) -> tuple[int, int, int] | None:
        """If the wall time at `instant` is repeated: (T, A_start, A_end) of its repeat."""
        local = self._local(instant)
        w = instant + self.offset(instant)
        first, second = self._fold_offsets(w)
        if first == second:
            return None
        delta = first - second  # > 0: the clock went back by delta at T
        if local.fold == 1:  # second pass: T is in (instant - delta, instant]
            t = self.transition(instant - delta, instant)
        else:  # first pass: T is in (instant, instant + delta]
            t = self.transition(instant, instant + delta)
        return t, t + second, t + first

    # -- wall policy ----------------------------------------------------------------

    def next_wall(self, x: int, first_ge: MatchFinder) -> int | None:
        """First fire instant >= x under the wall policy."""
        start = self.wall(x)
        repeat = self._repeat(x)
        if repeat is not None and self._local(x).fold == 1:
            # Every wall time before A_end already fired in the first pass, before T <= x.
            start = repeat[2]
        w = first_ge(start)
        while w is not None:
            fire = self.primary(w)
            if fire >= x:
                return fire
            w = first_ge(w + 1)  # defensive: primary() is monotone, so this never loops
        return None

    def previous_wall(self, x: int, last_le: MatchFinder) -> int | None:
        """Latest fire instant <= x under the wall policy."""
        end = self.wall(x)
        repeat = self._repeat(x)
        if repeat is not None and self._local(x).fold == 1:
            # The whole first pass (wall times up to A_end) is before T <= x.
            end = repeat[2] - 1
        w = last_le(end)
        while w is not None:
            fire = self.primary(w)
            if fire <= x:
                return fire
            w = last_le(w - 1)
        return None

    # -- real policy --------------------------------------------------------------

    def _first_existing(self, wall: int | None, first_ge: MatchFinder) -> int | None:
        while wall is not None and not self.instances(wall):
            t = self._gap_transition(wall)
            wall = first_ge(self.wall(t))  # jump over the gap in one step
        return wall

    def _last_existing(self, wall: int | None, last_le: MatchFinder) -> int | None:
        while wall is not None and not self.instances(wall):
            t = self._gap_transition(wall)
            wall = last_le(self.wall(t - 1))
        return wall

    def next_real(self, x: int, first_ge: MatchFinder) -> int | None:
        """First instant >= x whose wall time matches (the real policy)."""
        candidates = []
        w = self._first_existing(first_ge(self.wall(x)), first_ge)
        if w is not None:
            candidates += [u for u in self.instances(w) if u >= x][:1]
        repeat = self._repeat(x)
        if repeat is not None and self._local(x).fold == 0:
            # After T the wall clock reads A_start.. again: those matches fire a second time.
            _, a_start, _ = repeat
            w2 = first_ge(a_start)
            if w2 is not None:
                candidates += [u for u in self.instances(w2) if u >= x][:1]
        return min(candidates) if candidates else None

    def previous_real(self, x: int, last_le: MatchFinder) -> int | None:
        """Latest instant <= x whose wall time matches (the real policy)."""
        candidates = []
        w = self._last_existing(last_le(self.wall(x)), last_le)
        if w is not None:
            candidates += [u for u in self.instances(w) if u <= x][-1:]
        repeat = self._repeat(x)
        if repeat is not None and self._local(x).fold == 1:
            # Before T the wall clock already ran up to A_end: the first pass's matches.
            _, _, a_end = repeat
            w2 = last_le(a_end - 1)
            if w2 is not None:
                candidates += [u for u in self.instances(w2) if u <= x][-1:]
        return max(candidates) if candidates else None
