"""ml.ncrontab: NCRONTAB parsing, next and latest occurrences, checked by hand and against croniter (a dev tool)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from croniter import croniter

from ml.ncrontab import Schedule, ScheduleError


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_fields_values_ranges_steps_lists_and_names() -> None:
    s = Schedule.parse("5,10-20/5 */15 9-17/4 1,15 JAN,jul-SEP mon-fri")
    assert s.seconds == (5, 10, 15, 20)
    assert s.minutes == (0, 15, 30, 45)
    assert s.hours == (9, 13, 17)
    assert s.days == (1, 15)
    assert s.months == (1, 7, 8, 9)
    assert s.weekdays == frozenset({1, 2, 3, 4, 5})
    assert Schedule.parse("0 0 0 * * 7").weekdays == Schedule.parse("0 0 0 * * SUN").weekdays == frozenset({0})
    assert Schedule.parse("10/20 * * ? * *").seconds == (10, 30, 50)  # a/n runs to the field's end; ? is *


def test_next_after_is_strictly_after() -> None:
    nightly = Schedule.parse("0 0 2 * * *")
    assert nightly.next_after(at("2026-03-04T01:59:59")) == at("2026-03-04T02:00:00")
    assert nightly.next_after(at("2026-03-04T02:00:00")) == at("2026-03-05T02:00:00")
    assert nightly.next_after(at("2026-12-31T03:00:00")) == at("2027-01-01T02:00:00")
    every_15s = Schedule.parse("*/15 * * * * *")
    assert every_15s.next_after(at("2026-03-04T10:00:14.900000")) == at("2026-03-04T10:00:15")
    assert every_15s.next_after(at("2026-03-04T23:59:45")) == at("2026-03-05T00:00:00")


def test_latest_at_or_before_includes_the_moment() -> None:
    nightly = Schedule.parse("0 0 2 * * *")
    assert nightly.latest_at_or_before(at("2026-03-04T02:00:00")) == at("2026-03-04T02:00:00")
    assert nightly.latest_at_or_before(at("2026-03-04T01:59:59")) == at("2026-03-03T02:00:00")
    assert nightly.latest_at_or_before(at("2026-01-01T00:00:00")) == at("2025-12-31T02:00:00")
    weekly = Schedule.parse("0 30 6 * * MON")
    assert weekly.latest_at_or_before(at("2026-03-04T12:00:00")) == at("2026-03-02T06:30:00")  # a Wednesday


def test_latest_between_is_the_newest_occurrence_of_the_window() -> None:
    hourly = Schedule.parse("0 0 * * * *")
    assert hourly.latest_between(at("2026-03-04T09:59:00"), at("2026-03-04T10:01:00")) == at("2026-03-04T10:00:00")
    assert hourly.latest_between(at("2026-03-04T10:00:00"), at("2026-03-04T10:59:59")) is None  # after is excluded
    days_down = hourly.latest_between(at("2026-03-01T00:00:00"), at("2026-03-04T10:30:00"))
    assert days_down == at("2026-03-04T10:00:00")  # one, the latest, however many were missed


def test_every_field_must_match_as_in_ncrontab() -> None:
    friday_13th = Schedule.parse("0 0 0 13 * FRI")
    assert friday_13th.next_after(at("2026-01-01T00:00:00")) == at("2026-02-13T00:00:00")
    assert friday_13th.next_after(at("2026-02-13T00:00:00")) == at("2026-03-13T00:00:00")
    assert friday_13th.next_after(at("2026-03-13T00:00:00")) == at("2026-11-13T00:00:00")
    leap_monday = Schedule.parse("0 0 0 29 2 MON")  # 29 February on a Monday: 2016, 2044, ...
    assert leap_monday.next_after(at("2017-01-01T00:00:00")) == at("2044-02-29T00:00:00")
    assert leap_monday.latest_at_or_before(at("2043-12-31T00:00:00")) == at("2016-02-29T00:00:00")
    assert friday_13th.matches(at("2026-02-13T00:00:00")) and not friday_13th.matches(at("2026-02-13T00:00:01"))


def test_moments_are_read_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 3, 4, 3, 0, tzinfo=paris)  # 02:00 UTC
    assert Schedule.parse("0 0 2 * * *").latest_at_or_before(moment) == at("2026-03-04T02:00:00")
    with pytest.raises(ValueError, match="timezone-aware"):
        Schedule.parse("0 0 2 * * *").next_after(datetime(2026, 3, 4))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 2 * * *", "expected an NCRONTAB expression of 6 fields"),
        ("0 0 24 * * *", "hour field: expected a number from 0 to 23, found 24"),
        ("0 0 2 0 * *", "day field: expected a number from 1 to 31, found 0"),
        ("0 0 2 * FOO *", r"month field: expected a number from 1 to 12 or a name \(JAN, FEB"),
        ("0 0 2 * * MONDAY", "day-of-week field: expected a number from 0 to 7 or a name"),
        ("*/0 * * * * *", "second field: expected a step of 1 or more after '/', found '0'"),
        ("0 30-10 * * * *", "minute field: range '30-10' runs backwards"),
        ("0 0 2 1,,2 * *", "day field: expected values separated by single commas"),
        ("0 0 2 31 FEB *", "never occurs"),
        ("0 0 2 30 2 *", "never occurs"),
    ],
)
def test_bad_expressions_name_their_field(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        Schedule.parse(expression)


EXPRESSIONS = [
    "0 0 2 * * *",
    "0 30 2 * * *",
    "*/15 * * * * *",
    "0 */5 9-17 * * MON-FRI",
    "0 0 0 13 * FRI",
    "0 0 0 29 2 *",
    "5,10-20/3 0 0 1,15 JAN,JUL *",
    "0 0 12 * * 0",
    "59 59 23 31 12 *",
    "0 0 0 1 */3 *",
    "30 15 4 10-20 * SAT,SUN",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_agrees_with_croniter_with_every_field_required(expression: str) -> None:
    """croniter (devhost's, a dev dependency) with ``day_or=False`` reads NCRONTAB as NCrontab does."""
    schedule = Schedule.parse(expression)
    pick = random.Random(expression)
    for _ in range(200):
        moment = at("2020-01-01T00:00:00") + timedelta(seconds=pick.randint(0, 12 * 365 * 86400))
        moment = moment.replace(microsecond=pick.choice([0, 0, 250_000]))
        expected_next = croniter(expression, moment, second_at_beginning=True, day_or=False).get_next(datetime)
        # croniter's get_prev is strictly before: from a microsecond later it includes the moment itself
        later = moment + timedelta(microseconds=1)
        expected_latest = croniter(expression, later, second_at_beginning=True, day_or=False).get_prev(datetime)
        assert schedule.next_after(moment) == expected_next, moment
        assert schedule.latest_at_or_before(moment) == expected_latest.replace(microsecond=0), moment
        if moment.microsecond == 0:
            assert schedule.matches(moment) == (expected_latest.replace(microsecond=0) == moment)
