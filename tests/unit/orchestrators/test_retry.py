"""Activity failures: a retryable one is retried after growing durable timers, a permanent one fails at once."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from activities.blueprint import ActivityFailed, _logged, retryable
from activities.names import RETRYABLE
from backends.errors import BlobChangedError, NotFoundError, TransientBackendError
from orchestrators.steps import Backoff, call
from tests.unit.orchestrators.driver import Context, names, run


def one_call(backoff: Backoff | None = None) -> Any:
    def recipe(context: Any) -> Generator[Any, Any, Any]:
        return (yield from call(context, "flaky", {"x": 1}, backoff or Backoff()))

    return recipe


def failing(times: int, message: str) -> Any:
    left = iter(range(times))

    def activity(payload: dict[str, Any]) -> dict[str, Any]:
        if next(left, None) is not None:
            raise Exception(f"Activity function 'flaky' failed: {message} \n details")  # as the SDK raises it
        return {"ok": True}

    return activity


def test_a_retryable_failure_waits_on_growing_timers_then_succeeds() -> None:
    context = Context({})
    started = context.now
    output, calls = run(one_call(), context, {"flaky": failing(4, f"{RETRYABLE} TransientBackendError: 503")})
    assert output == {"ok": True}
    assert names(calls) == ["flaky", "timer"] * 4 + ["flaky"]
    waits = [(c.payload - started).total_seconds() for c in calls if c.kind == "timer"]
    assert waits == [2, 2 + 4, 2 + 4 + 8, 2 + 4 + 8 + 16]


def test_a_permanent_failure_is_raised_at_once() -> None:
    with pytest.raises(Exception, match="ValueError: no column bmi"):
        run(one_call(), Context({}), {"flaky": failing(1, "ValueError: no column bmi")})


def test_retries_stop_after_the_last_attempt() -> None:
    calls: list[Any] = []
    with pytest.raises(Exception, match="storage down"):
        run(
            one_call(Backoff(attempts=3)), Context({}), {"flaky": failing(10, f"{RETRYABLE} storage down")}, calls=calls
        )
    assert names(calls) == ["flaky", "timer", "flaky", "timer", "flaky"]


def test_the_default_backoff_outlasts_a_two_minute_outage() -> None:
    backoff = Backoff()
    assert sum(backoff.wait_s(n) for n in range(1, backoff.attempts)) >= 120


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TransientBackendError("storage down"), True),
        (ConnectionError("refused"), True),
        (TimeoutError(), True),
        (BlobChangedError("etag moved"), True),
        (NotFoundError("no model 7"), False),
        (ValueError("bad"), False),
        (KeyError("config"), False),
    ],
)
def test_activities_say_whether_a_retry_can_help(exc: Exception, expected: bool) -> None:
    assert retryable(exc) is expected

    def activity(payload: dict[str, Any]) -> dict[str, Any]:
        raise exc

    with pytest.raises(ActivityFailed) as raised:
        _logged("probe", activity)({})
    assert (RETRYABLE in str(raised.value)) is expected
    assert type(exc).__name__ in str(raised.value)
