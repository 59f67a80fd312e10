"""What both recipes share: retry policy, the generator type, and publishing the stage timeline."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from orchestrators.status import Timeline

#: transient storage/backend hiccups are retried by the host; permanent errors surface after 3 attempts
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=3)

Orchestration = Generator[Any, Any, dict[str, Any]]


def begin(context: df.DurableOrchestrationContext, timeline: Timeline, stage: str, detail: str) -> None:
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
    if timeline.stages and timeline.stages[-1]["status"] == "running":
        timeline.fail(context.current_utc_datetime, short_error(exc))
    context.set_custom_status(timeline.status())


def short_error(exc: Exception) -> str:
    """The first line of an activity failure (the SDK appends the serialized details after it)."""
    return str(exc).strip().split("\n")[0][:500]
