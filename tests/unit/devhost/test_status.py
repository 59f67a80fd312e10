from __future__ import annotations

from devhost import history as h
from devhost.status import project_history, status_payload
from devhost.store import Instance


def test_projection_folds_scheduling_into_completion() -> None:
    now = h.utcnow()
    events = [
        h.event(h.ORCHESTRATOR_STARTED, now),
        h.execution_started(now, "i", "e", "orch", '"in"'),
        h.event(h.TASK_SCHEDULED, now, 0, Name="act", Version="", Input='"a"'),
        h.event(h.ORCHESTRATOR_COMPLETED, now),
        h.event(h.ORCHESTRATOR_STARTED, now),
        h.event(h.TASK_COMPLETED, now, TaskScheduledId=0, Result='"r"'),
    ]
    out = project_history(events, show_input=True, show_output=True)
    assert [e["EventType"] for e in out] == ["ExecutionStarted", "TaskCompleted"]
    assert out[0]["FunctionName"] == "orch" and out[0]["Input"] == '"in"'
    assert out[1] == {
        "EventType": "TaskCompleted",
        "Timestamp": h.fmt_time(now),
        "Result": '"r"',
        "FunctionName": "act",
        "ScheduledTime": h.fmt_time(now),
        "Input": '"a"',
    }
    assert "Result" not in project_history(events, show_input=False, show_output=False)[1]


def test_status_payload_fields() -> None:
    inst = Instance("i", "orch", "Completed", '"x"', "5", '{"s": 1}', 0.0, 1.0, None, None, None, "e", None)
    doc = status_payload(inst)
    assert doc == {
        "name": "orch",
        "instanceId": "i",
        "runtimeStatus": "Completed",
        "input": "x",
        "customStatus": {"s": 1},
        "output": 5,
        "createdTime": "1970-01-01T00:00:00Z",
        "lastUpdatedTime": "1970-01-01T00:00:01Z",
    }
