"""NCRONTAB schedules as Azure Functions' timer triggers read them: 6 fields, seconds first, evaluated in UTC.

``second minute hour day month day-of-week``, each ``*`` (or ``?``), a value, a range ``a-b``, a step ``*/n``,
``a-b/n`` or ``a/n`` (from ``a`` to the field's end), or a comma list of those. Months may be named ``JAN``-``DEC``
and days of the week ``SUN``-``SAT`` (any case); day of week 0 (and 7) is Sunday. As in NCrontab (the library the
Functions host uses), a moment matches when **every** field matches: ``0 0 0 13 * FRI`` is Friday the 13th only
(classic cron would take every 13th and every Friday). Pure: no clock, no I/O; moments are timezone-aware.
"""

from __future__ import annotations

import bisect
import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

#: the fields in order: name, lowest, highest value
FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_NAMES = {
    "month": {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name},
    "day-of-week": {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))},
}
#: the Gregorian calendar repeats every 400 years: a schedule with no occurrence in that span has none at all
_CYCLE_YEARS = 400


class ScheduleError(ValueError):
    """An NCRONTAB expression that cannot be read, or that never occurs; names the field and what was found."""


def _value(text: str, field: str, low: int, high: int) -> int:
    names = _NAMES.get(field, {})
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        expected = f"a number from {low} to {high}" + (f" or a name ({', '.join(names)})" if names else "")
        raise ScheduleError(f"{field} field: expected {expected}, found {text!r}")
    number = int(text)
    if not low <= number <= high:
        raise ScheduleError(f"{field} field: expected a number from {low} to {high}, found {number}")
    return number


def _part(text: str, field: str, low: int, high: int) -> set[int]:
    body, slash, step_text = text.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise ScheduleError(f"{field} field: expected a step of 1 or more after '/', found {step_text!r}")
        step = int(step_text)
    if body in ("*", "?"):
        first, last = low, high
    elif "-" in body:
        start, _, end = body.partition("-")
        first, last = _value(start, field, low, high), _value(end, field, low, high)
        if first > last:
            raise ScheduleError(f"{field} field: range {body!r} runs backwards")
    else:
        first = _value(body, field, low, high)
        last = high if slash else first
    return set(range(first, last + 1, step))


def _field(text: str, field: str, low: int, high: int) -> tuple[int, ...]:
    if not text or any(not part for part in text.split(",")):
        raise ScheduleError(f"{field} field: expected values separated by single commas, found {text!r}")
    values: set[int] = set()
    for part in text.split(","):
        values |= _part(part, field, low, high)
    return tuple(sorted(values))


@dataclass(frozen=True)
class Schedule:
    """A parsed NCRONTAB expression; build it with ``Schedule.parse``."""

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    #: 0 = Sunday ... 6 = Saturday (7 is read as 0)
    weekdays: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        """Read ``expression``; ``ScheduleError`` naming the field when it cannot be read or never occurs."""
        parts = expression.split()
        if len(parts) != len(FIELDS):
            raise ScheduleError(
                f"expected an NCRONTAB expression of 6 fields ({' '.join(f[0] for f in FIELDS)}), got {len(parts)}"
            )
        values = [_field(text, *spec) for text, spec in zip(parts, FIELDS, strict=True)]
        weekdays = frozenset(day % 7 for day in values[5])
        seconds, minutes, hours, days, months = values[:5]
        schedule = cls(expression, seconds, minutes, hours, days, months, weekdays)
        if schedule._next_day(date(2000, 1, 1), date(2000 + _CYCLE_YEARS, 1, 1)) is None:
            raise ScheduleError(f"{expression!r} never occurs (no such day: its day, month and day of week clash)")
        return schedule

    def matches(self, moment: datetime) -> bool:
        """True when ``moment`` (to the second) is an occurrence."""
        at = _utc(moment)
        return self._day_matches(at.date()) and (at.hour, at.minute, at.second) in self._times_set()

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment``."""
        at = _utc(moment).replace(microsecond=0) + timedelta(seconds=1)
        found = self._first_time(at.time())
        day = at.date()
        if self._day_matches(day) and found is not None:
            return datetime.combine(day, found, UTC)
        following = self._next_day(day + timedelta(days=1), date(day.year + _CYCLE_YEARS + 1, 1, 1))
        assert following is not None, "parse() checked that the schedule occurs"
        return datetime.combine(following, time(self.hours[0], self.minutes[0], self.seconds[0]), UTC)

    def latest_at_or_before(self, moment: datetime) -> datetime:
        """The last occurrence at or before ``moment``."""
        at = _utc(moment).replace(microsecond=0)
        found = self._last_time(at.time())
        day = at.date()
        if self._day_matches(day) and found is not None:
            return datetime.combine(day, found, UTC)
        previous = self._previous_day(day - timedelta(days=1))
        assert previous is not None, "parse() checked that the schedule occurs"
        return datetime.combine(previous, time(self.hours[-1], self.minutes[-1], self.seconds[-1]), UTC)

    def latest_between(self, after: datetime, until: datetime) -> datetime | None:
        """The last occurrence in ``(after, until]``, or None when there is none."""
        latest = self.latest_at_or_before(until)
        return latest if latest > _utc(after) else None

    # --- helpers -------------------------------------------------------------------------------

    def _times_set(self) -> set[tuple[int, int, int]]:
        return {(h, m, s) for h in self.hours for m in self.minutes for s in self.seconds}

    def _day_matches(self, day: date) -> bool:
        return day.day in self.days and day.month in self.months and (day.weekday() + 1) % 7 in self.weekdays

    def _first_time(self, at: time) -> time | None:
        """The earliest time of day of the schedule at or after ``at``."""
        for hour in self.hours[bisect.bisect_left(self.hours, at.hour) :]:
            minutes = self.minutes if hour > at.hour else self.minutes[bisect.bisect_left(self.minutes, at.minute) :]
            for minute in minutes:
                if hour > at.hour or minute > at.minute:
                    return time(hour, minute, self.seconds[0])
                index = bisect.bisect_left(self.seconds, at.second)
                if index < len(self.seconds):
                    return time(hour, minute, self.seconds[index])
        return None

    def _last_time(self, at: time) -> time | None:
        """The latest time of day of the schedule at or before ``at``."""
        for hour in reversed(self.hours[: bisect.bisect_right(self.hours, at.hour)]):
            minutes = self.minutes if hour < at.hour else self.minutes[: bisect.bisect_right(self.minutes, at.minute)]
            for minute in reversed(minutes):
                if hour < at.hour or minute < at.minute:
                    return time(hour, minute, self.seconds[-1])
                index = bisect.bisect_right(self.seconds, at.second)
                if index > 0:
                    return time(hour, minute, self.seconds[index - 1])
        return None

    def _next_day(self, start: date, end: date) -> date | None:
        """The first matching day from ``start`` (included) to ``end`` (excluded), month by month."""
        year, month = start.year, start.month
        while date(year, month, 1) < end:
            if month in self.months:
                first = start.day if (year, month) == (start.year, start.month) else 1
                length = calendar.monthrange(year, month)[1]
                for day in self.days[bisect.bisect_left(self.days, first) :]:
                    if day > length:
                        break
                    candidate = date(year, month, day)
                    if (candidate.weekday() + 1) % 7 in self.weekdays:
                        return candidate
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return None

    def _previous_day(self, start: date) -> date | None:
        """The last matching day at or before ``start``, month by month, over at most one calendar cycle."""
        year, month = start.year, start.month
        stop = max(date.min.year, start.year - _CYCLE_YEARS)
        while year > stop:
            if month in self.months:
                length = calendar.monthrange(year, month)[1]
                last = start.day if (year, month) == (start.year, start.month) else length
                for day in reversed(self.days[: bisect.bisect_right(self.days, last)]):
                    if day > length:
                        continue
                    candidate = date(year, month, day)
                    if (candidate.weekday() + 1) % 7 in self.weekdays:
                        return candidate
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        return None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware moment, got {moment.isoformat()}")
    return moment.astimezone(UTC)
