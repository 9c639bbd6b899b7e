"""Plain cron fields expanded without croniter (`_cron_plain`) must be croniter's own
expansion, and whatever the plain reader does not take must go to croniter."""

from __future__ import annotations

import subprocess
import sys

from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from motet.steps._cron import parse_cron
from motet.steps._cron_plain import expand


def _field(lo: int, hi: int) -> st.SearchStrategy[str]:
    value = st.integers(lo, hi)
    single = value.map(str)
    span = st.tuples(value, value).map(lambda p: f"{p[0]}-{p[1]}")  # backwards and equal too
    step = st.tuples(
        st.sampled_from(["*", f"{lo}-{hi}", f"{lo + 1}-{hi}"]), st.integers(1, hi - lo + 2)
    ).map(lambda p: f"{p[0]}/{p[1]}")
    part = st.one_of(single, span, step)
    return st.one_of(st.just("*"), st.lists(part, min_size=1, max_size=3).map(",".join))


_five = st.tuples(_field(0, 59), _field(0, 23), _field(1, 31), _field(1, 12), _field(0, 7)).map(
    " ".join
)
_six = st.tuples(_field(0, 59), _five).map(" ".join)
_seven = _six.map(lambda six: f"{six} *")


@settings(max_examples=600, deadline=None)
@given(expression=st.one_of(_five, _six, _seven))
def test_plain_expansion_is_croniters(expression: str) -> None:
    plain = expand(expression.split())
    if plain is not None:
        assert plain == croniter(expression, second_at_beginning=True).expanded


def test_what_the_plain_reader_leaves_to_croniter() -> None:
    for expression in (
        "1-1 * * * *",  # croniter reads an equal-ended range as the whole field
        "59-0 * * * *",  # backwards: croniter wraps around
        "5/15 * * * *",
        "0 0 * JAN *",
        "0 0 * * MON",
        "0 0 ? * *",
        "0 0 L * *",
        "0 0 * * 1#2",
        "0 0 15W * *",
        "*/61 * * * *",
        "0 0 0 1 1 * 2030",
        "60 * * * *",
    ):
        assert expand(expression.split()) is None, expression


def test_the_example_schedules_load_without_croniter() -> None:
    """The schedules a project usually writes are plain: croniter (and dateutil, about
    1 MiB resident) stays out of the process."""
    probe = (
        "import sys\n"
        "from motet.steps._cron import parse_cron\n"
        "for e in ('*/5 * * * *', '0 2 * * *', '0 9 * * 1', '0 10 1 * *', '0 0 2 * * * *'):\n"
        "    parse_cron(e).next_after(0)\n"
        "print('croniter' in sys.modules, 'dateutil' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_a_plain_date_that_never_comes_is_refused_as_before() -> None:
    for expression in ("0 0 30 2 *", "0 0 31 4,6 *"):
        try:
            parse_cron(expression)
        except ValueError as exc:
            assert "never matches a date" in str(exc)
        else:
            raise AssertionError(expression)
