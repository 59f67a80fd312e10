"""Timer schedules as Azure Functions writes them: 6-field NCRONTAB (seconds first) or a TimeSpan ``hh:mm:ss``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$")
_FIELDS = ("second", "minute", "hour", "day", "month", "day-of-week")


@dataclass(frozen=True)
class Schedule:
    expression: str
    interval: timedelta | None = None

    @classmethod
    def parse(cls, expr: str) -> Schedule:
        text = expr.strip()
        span = _TIMESPAN.match(text)
        if span:
            days, hours, minutes, seconds = (int(g) if g else 0 for g in span.groups())
            interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
            if interval <= timedelta(0):
                raise ValueError(f"schedule {expr!r}: a TimeSpan interval must be positive")
            return cls(text, interval)
        fields = text.split()
        if len(fields) != len(_FIELDS):
            raise ValueError(
                f"schedule {expr!r}: expected 6 NCRONTAB fields ({' '.join(_FIELDS)}) or a TimeSpan "
                f"hh:mm:ss, got {len(fields)} field(s)"
            )
        try:
            croniter(text, datetime(2000, 1, 1, tzinfo=UTC), second_at_beginning=True)
        except ValueError as exc:
            raise ValueError(f"schedule {expr!r}: {_bad_field(fields) or exc}") from None
        return cls(text)

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (UTC)."""
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if self.interval is not None:
            return moment + self.interval
        nxt: datetime = croniter(self.expression, moment, second_at_beginning=True).get_next(datetime)
        return nxt.astimezone(UTC)


def _bad_field(fields: list[str]) -> str | None:
    """Name the first field that does not parse on its own (croniter's message names only the expression)."""
    for position, name in enumerate(_FIELDS):
        probe = ["0", "0", "0", "*", "*", "*"]
        probe[position] = fields[position]
        try:
            croniter(" ".join(probe), datetime(2000, 1, 1, tzinfo=UTC), second_at_beginning=True)
        except ValueError:
            return f"the {name} field {fields[position]!r} is not valid"
    return None
