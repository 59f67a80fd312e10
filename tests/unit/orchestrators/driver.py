"""Run a real orchestrator generator against scripted activity results (a stand-in for the Durable context).

Each ``call_activity_with_retry`` yields a marker; the driver answers it with the script's result for that activity
(a function of the payload) or throws the script's exception into the generator, as the SDK does on a failed
task. Timers advance a virtual clock. The calls are recorded so tests can assert what the recipe did.

External events: ``wait_for_external_event`` makes a pending task and ``task_any`` races tasks as the SDK does; the
``events`` given to ``run`` (``(seconds after the start, name, payload)``) arrive on the virtual clock, so a race
between an event and a timer is won by whichever comes first.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Script = dict[str, Callable[[dict[str, Any]], Any]]


@dataclass(eq=False)
class Call:
    kind: str
    name: str
    payload: Any
    result: Any = None
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class Context:
    input: dict[str, Any]
    instance_id: str = "run-1"
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    custom_status: Any = None
    statuses: list[Any] = field(default_factory=list)

    @property
    def current_utc_datetime(self) -> datetime:
        return self.now

    def get_input(self) -> dict[str, Any]:
        return self.input

    def set_custom_status(self, status: Any) -> None:
        self.custom_status = status
        self.statuses.append(status)

    def call_activity_with_retry(self, name: str, retry: Any, payload: Any = None) -> Call:
        return Call("activity", name, payload)

    def call_activity(self, name: str, payload: Any = None) -> Call:
        return Call("activity", name, payload)

    def create_timer(self, fire_at: datetime) -> Call:
        return Call("timer", "timer", fire_at)

    def wait_for_external_event(self, name: str) -> Call:
        return Call("event", name, None)

    def task_any(self, tasks: list[Call]) -> Call:
        return Call("any", "any", tasks)


def run(
    recipe: Callable[[Any], Generator[Any, Any, Any]],
    context: Context,
    script: Script,
    *,
    max_steps: int = 500,
    calls: list[Call] | None = None,
    events: list[tuple[float, str, Any]] | None = None,
) -> tuple[Any, list[Call]]:
    """Drive ``recipe`` to its end; ``calls`` (if given) receives every call, also when the recipe raises."""
    calls = [] if calls is None else calls
    start = context.now
    inbox = sorted(events or [], key=lambda e: e[0])
    generator = recipe(context)
    value: Any = None
    error: BaseException | None = None
    for _ in range(max_steps):
        try:
            call = generator.throw(error) if error else generator.send(value)
        except StopIteration as done:
            return done.value, calls
        error, value = None, None
        calls.append(call)
        if call.kind == "timer":
            context.now = max(context.now + timedelta(seconds=1), call.payload)
            continue
        if call.kind == "any":
            value = _race(context, call.payload, inbox, start)
            continue
        try:
            value = script[call.name](call.payload)
        except KeyError:
            raise AssertionError(f"the recipe called {call.name!r}, which the test script does not expect") from None
        except Exception as exc:
            error = exc
    raise AssertionError(f"the recipe did not finish within {max_steps} steps")


def names(calls: list[Call]) -> list[str]:
    return [c.name for c in calls]


def _race(context: Context, tasks: list[Call], inbox: list[tuple[float, str, Any]], start: datetime) -> Call:
    """The first of ``tasks`` to complete: an event waited for whose next arrival comes before every timer, else the
    earliest timer (the clock moves to whichever wins)."""
    timers = sorted((t for t in tasks if t.kind == "timer"), key=lambda t: t.payload)
    waiting = {t.name: t for t in tasks if t.kind == "event"}
    arrival = next((e for e in inbox if e[1] in waiting), None)
    if arrival is not None:
        at = start + timedelta(seconds=arrival[0])
        if not timers or at <= timers[0].payload:
            inbox.remove(arrival)
            context.now = max(context.now, at)
            task = waiting[arrival[1]]
            task.result = arrival[2]
            return task
    if not timers:
        raise AssertionError("the recipe waits for an event that never comes and no timer")
    context.now = max(context.now, timers[0].payload)
    return timers[0]
