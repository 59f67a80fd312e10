"""What both recipes share: calling an activity with the retry policy, the generator type, and publishing the
stage timeline."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import azure.durable_functions as df

from activities.names import RETRYABLE
from messages.enums import Stage, StageStatus
from messages.wire import Message
from orchestrators.status import Timeline

Orchestration = Generator[Any, Any, dict[str, Any]]
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Backoff:
    """How a retryable activity failure is retried: durable timers growing from ``first_s`` by ``factor`` up to
    ``longest_s``, at most ``attempts`` calls. The default outlasts a storage outage of about two minutes."""

    first_s: float = 2.0
    factor: float = 2.0
    longest_s: float = 30.0
    attempts: int = 8

    def wait_s(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.longest_s, self.first_s * self.factor ** (attempt - 1)))


TRANSIENT = Backoff()


def call(
    context: df.DurableOrchestrationContext, activity: str, payload: Any, backoff: Backoff = TRANSIENT
) -> Generator[Any, Any, Any]:
    """Call ``activity``; a failure its activity marked retryable is retried after a durable timer, any other fails
    the caller at once with its message (a bad input or a missing model never waits through retries). A message
    goes as its JSON form."""
    if isinstance(payload, Message):
        payload = payload.to_dict()
    attempt = 1
    while True:
        try:
            return (yield context.call_activity(activity, payload))
        except Exception as exc:
            if RETRYABLE not in str(exc) or attempt >= backoff.attempts:
                raise
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=backoff.wait_s(attempt)))
        attempt += 1


def ask(
    context: df.DurableOrchestrationContext, activity: str, payload: Message, result: type[M]
) -> Generator[Any, Any, M]:
    """``call`` that reads the activity's answer as the message ``result``."""
    answer = yield from call(context, activity, payload)
    return result.from_dict(answer)


def begin(context: df.DurableOrchestrationContext, timeline: Timeline, stage: Stage, detail: str) -> None:
    """Start a stage and publish the timeline (the run views read it from the custom status)."""
    timeline.begin(stage, context.current_utc_datetime, detail)
    context.set_custom_status(timeline.status())


def done(context: df.DurableOrchestrationContext, timeline: Timeline, **details: Any) -> dict[str, Any]:
    """Publish the final timeline and build the orchestration's output from it."""
    status = timeline.status()
    context.set_custom_status(status)
    return {**status, **details}


def fail_running_stage(context: df.DurableOrchestrationContext, timeline: Timeline, exc: Exception) -> None:
    """Record an unexpected failure on the running stage before the orchestration fails."""
    if timeline.stages and timeline.stages[-1]["status"] == StageStatus.RUNNING:
        timeline.fail(context.current_utc_datetime, short_error(exc))
    context.set_custom_status(timeline.status())


def short_error(exc: Exception) -> str:
    """The first line of an activity failure (the SDK appends the serialized details after it)."""
    return str(exc).strip().split("\n")[0][:500]
