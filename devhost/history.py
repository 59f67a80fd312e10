"""History events (DTFx JSON shape: PascalCase, ``EventType`` as an int) and their timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

Event = dict[str, Any]

EXECUTION_STARTED = 0
EXECUTION_COMPLETED = 1
EXECUTION_TERMINATED = 3
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
SUB_CREATED = 7
SUB_COMPLETED = 8
SUB_FAILED = 9
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_STARTED = 12
ORCHESTRATOR_COMPLETED = 13
EVENT_SENT = 14
EVENT_RAISED = 15
CONTINUE_AS_NEW = 16
EXECUTION_SUSPENDED = 19
EXECUTION_RESUMED = 20

EVENT_NAMES = {
    0: "ExecutionStarted",
    1: "ExecutionCompleted",
    2: "ExecutionFailed",
    3: "ExecutionTerminated",
    4: "TaskScheduled",
    5: "TaskCompleted",
    6: "TaskFailed",
    7: "SubOrchestrationInstanceCreated",
    8: "SubOrchestrationInstanceCompleted",
    9: "SubOrchestrationInstanceFailed",
    10: "TimerCreated",
    11: "TimerFired",
    12: "OrchestratorStarted",
    13: "OrchestratorCompleted",
    14: "EventSent",
    15: "EventRaised",
    16: "ContinueAsNew",
    17: "GenericEvent",
    18: "HistoryState",
    19: "ExecutionSuspended",
    20: "ExecutionResumed",
}

# OrchestrationStatus ints used by ExecutionCompleted
STATUS_CODES = {"Running": 0, "Completed": 1, "ContinuedAsNew": 2, "Failed": 3, "Canceled": 4, "Terminated": 5}

_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utcnow() -> datetime:
    return datetime.now(UTC)


def fmt_time(moment: datetime) -> str:
    """The SDK's DATETIME_STRING_FORMAT, always in UTC."""
    return moment.astimezone(UTC).strftime(_FMT)


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 UTC timestamp with a ``Z`` suffix and up to 7 fraction digits."""
    body = text.rstrip("Z")
    if "." in body:
        head, frac = body.split(".", 1)
        frac = "".join(c for c in frac if c.isdigit())[:6].ljust(6, "0")
        body = f"{head}.{frac}"
    else:
        body += ".000000"
    return datetime.strptime(body, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


def event(event_type: int, at: datetime, event_id: int = -1, **fields: Any) -> Event:
    return {"EventType": event_type, "EventId": event_id, "IsPlayed": False, "Timestamp": fmt_time(at), **fields}


def execution_started(
    at: datetime,
    instance_id: str,
    execution_id: str,
    name: str,
    input_json: str,
    *,
    parent: dict[str, Any] | None = None,
    version: str = "",
) -> Event:
    """``Version`` must be present: the SDK reads it unconditionally (``context.version``)."""
    return event(
        EXECUTION_STARTED,
        at,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        Name=name,
        Version=version,
        Input=input_json,
        ParentInstance=parent,
    )


def timer_fire_at(text: str) -> datetime:
    return parse_time(text)


def add_ms(at: datetime, ms: float) -> datetime:
    return at + timedelta(milliseconds=ms)
