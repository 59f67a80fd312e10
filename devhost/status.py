"""The Durable HTTP API status payload (StatusResponsePayload) and its ``historyEvents`` projection."""

from __future__ import annotations

import json
import time
from typing import Any

from devhost import history as h
from devhost.store import Instance

RUNNING_LIKE = ("Pending", "Running", "ContinuedAsNew", "Suspended")


def fmt_status_time(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def status_payload(
    inst: Instance, show_input: bool = True, history: list[h.Event] | None = None, show_history_output: bool = False
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": inst.name,
        "instanceId": inst.id,
        "runtimeStatus": inst.status,
        "input": _loads(inst.input) if show_input else None,
        "customStatus": _loads(inst.custom_status),
        "output": _loads(inst.output),
        "createdTime": fmt_status_time(inst.created),
        "lastUpdatedTime": fmt_status_time(inst.updated),
    }
    if history is not None:
        doc["historyEvents"] = project_history(history, show_input, show_history_output)
    return doc


_DROP = ("EventId", "IsPlayed", "TaskScheduledId", "TimerId")


def project_history(events: list[h.Event], show_input: bool, show_output: bool) -> list[dict[str, Any]]:
    """As the extension shows it: names for EventType, scheduling folded into completions, bookkeeping removed."""
    scheduled: dict[int, h.Event] = {}
    out: list[dict[str, Any]] = []
    for ev in events:
        kind = ev["EventType"]
        if kind in (h.ORCHESTRATOR_STARTED, h.ORCHESTRATOR_COMPLETED):
            continue
        if kind in (h.TASK_SCHEDULED, h.SUB_CREATED):
            scheduled[ev["EventId"]] = ev
            continue
        item = {k: v for k, v in ev.items() if k not in _DROP}
        item["EventType"] = h.EVENT_NAMES.get(kind, str(kind))
        if kind in (h.TASK_COMPLETED, h.TASK_FAILED, h.SUB_COMPLETED, h.SUB_FAILED):
            origin = scheduled.get(ev.get("TaskScheduledId", -1))
            if origin is not None:
                item["FunctionName"] = origin.get("Name")
                item["ScheduledTime"] = origin.get("Timestamp")
                if kind in (h.SUB_COMPLETED, h.SUB_FAILED):
                    item["InstanceId"] = origin.get("InstanceId")
                if show_input:
                    item["Input"] = origin.get("Input")
        if kind == h.EXECUTION_STARTED:
            item["FunctionName"] = item.pop("Name", None)
            item.pop("OrchestrationInstance", None)
            if not show_input:
                item.pop("Input", None)
        if not show_output:
            item.pop("Result", None)
        out.append(item)
    return out
