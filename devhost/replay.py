"""The pure orchestration step: (orchestrator callable, history, new events, state) -> (new events, work, state).

It drives the real SDK replay (the orchestrator's ``get_user_function()`` handle) and applies the host side of
the sequence-number contract: flatten the cumulative action list, check the replayed prefix for determinism,
allocate ids to new atomic actions, and add the hidden retry allocations (timer after a failed attempt, the
rescheduled task after that timer). No I/O: everything it needs comes in, everything it decides goes out.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devhost import history as h
from devhost.history import Event

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"

CALL_ACTIVITY, CALL_ACTIVITY_RETRY, CALL_SUB, CALL_SUB_RETRY, CONTINUE_AS_NEW, CREATE_TIMER, WAIT_EVENT = range(7)
CALL_ENTITY, CALL_HTTP, SIGNAL_ENTITY = 7, 8, 9
_UNSUPPORTED = {CALL_HTTP: "call_http"}

Handle = Callable[[Any], str]


@dataclass
class StepState:
    """Per-execution bookkeeping persisted with the instance."""

    next_id: int = 0
    sigs: list[list[Any]] = field(default_factory=list)  # [actionType, name, event id or None] per atomic action
    ledger: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id -> retry bookkeeping

    def to_json(self) -> str:
        return json.dumps({"next_id": self.next_id, "sigs": self.sigs, "ledger": self.ledger})

    @classmethod
    def from_json(cls, text: str | None) -> StepState:
        if not text:
            return cls()
        doc = json.loads(text)
        return cls(doc["next_id"], doc["sigs"], doc["ledger"])


@dataclass(frozen=True)
class ActivityWork:
    task_id: int
    name: str
    input: str


@dataclass(frozen=True)
class TimerWork:
    timer_id: int
    fire_at: datetime


@dataclass(frozen=True)
class ChildWork:
    task_id: int
    name: str
    instance_id: str
    input_json: str
    user_id: bool
    version: str = ""


@dataclass(frozen=True)
class EntityOp:
    """An operation for entity ``target`` (its scheduler id ``@name@key``); ``request_id`` set when the caller waits
    for the answer (``call_entity``), which comes back as an EventRaised named after it."""

    target: str
    operation: str
    input: str | None
    request_id: str | None


@dataclass
class StepResult:
    """What one episode decided. ``status`` is Running, Completed, Failed or ContinuedAsNew."""

    events: list[Event]
    status: str
    state: StepState
    output: Any = None
    custom_status: Any = None
    continue_input_json: str | None = None
    activities: list[ActivityWork] = field(default_factory=list)
    timers: list[TimerWork] = field(default_factory=list)
    children: list[ChildWork] = field(default_factory=list)
    cancelled_timers: list[int] = field(default_factory=list)
    entity_ops: list[EntityOp] = field(default_factory=list)


@dataclass(frozen=True)
class StepInput:
    name: str
    instance_id: str
    execution_id: str
    parent_instance_id: str | None
    input_json: str
    past: list[Event]
    new: list[Event]
    state: StepState
    now: datetime


def flatten(actions: Any) -> list[dict[str, Any]]:
    """Depth-first, left-to-right list of atomic actions (lists and compound WhenAll/WhenAny expanded)."""
    out: list[dict[str, Any]] = []
    if isinstance(actions, list):
        for item in actions:
            out.extend(flatten(item))
    elif isinstance(actions, dict):
        if "compoundActions" in actions:
            out.extend(flatten(actions["compoundActions"]))
        else:
            out.append(actions)
    return out


def _sig_name(action: dict[str, Any]) -> str | None:
    return action.get("functionName") or action.get("externalEventName") or action.get("operation")


def build_context(step: StepInput) -> str:
    """The context JSON the extension sends (schema V2/V3, Azure Storage timer limits)."""
    past = [{**e, "IsPlayed": e["EventType"] != h.ORCHESTRATOR_STARTED} for e in step.past]
    new = [{**e, "IsPlayed": False} for e in step.new]
    doc = {
        "history": past + new,
        "input": json.loads(step.input_json),
        "instanceId": step.instance_id,
        "isReplaying": bool(past),
        "parentInstanceId": step.parent_instance_id,
        "upperSchemaVersion": 1,
        "upperSchemaVersionNew": 2,
        "maximumShortTimerDuration": "6.00:00:00",
        "longRunningTimerIntervalDuration": "3.00:00:00",
        "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
    }
    return json.dumps(doc)


def call_orchestrator(handle: Handle, context_json: str) -> dict[str, Any]:
    """Run the SDK; a raised exception carries the state after the out-of-proc marker (failure envelope)."""
    from azure.functions import meta

    ctx = (
        meta.get_binding_registry()
        .get("orchestrationTrigger")
        .decode(meta.Datum(context_json, "string"), trigger_metadata={})
    )
    try:
        return dict(json.loads(handle(ctx)))
    except Exception as exc:
        text = str(exc)
        if OUT_OF_PROC_MARKER in text:
            state = json.loads(text.split(OUT_OF_PROC_MARKER, 1)[1])
            state.setdefault("error", text.split(OUT_OF_PROC_MARKER, 1)[0])
            return dict(state)
        return {"isDone": True, "error": f"{type(exc).__name__}: {text}", "actions": []}


def run_step(handle: Handle, step: StepInput) -> StepResult:
    """One episode: replay, diff actions, allocate ids, decide the outcome."""
    state_doc = call_orchestrator(handle, build_context(step))
    return apply_actions(step, state_doc)


def _failed(step: StepInput, events: list[Event], state: StepState, message: str, custom: Any) -> StepResult:
    output = f"Orchestrator function '{step.name}' failed: {message}"
    events += [
        h.event(h.ORCHESTRATOR_COMPLETED, step.now),
        h.event(
            h.EXECUTION_COMPLETED, step.now, OrchestrationStatus=h.STATUS_CODES["Failed"], Result=json.dumps(output)
        ),
    ]
    return StepResult(events, "Failed", state, output=output, custom_status=custom)


def apply_actions(step: StepInput, doc: dict[str, Any]) -> StepResult:
    """The host side of the sequence-number contract, given the SDK's returned state."""
    state = StepState(step.state.next_id, [list(s) for s in step.state.sigs], dict(step.state.ledger))
    events: list[Event] = [*step.new]
    custom = doc.get("customStatus")
    actions = flatten(doc.get("actions", []))
    if doc.get("error") is not None:
        return _failed(step, events, state, str(doc["error"]), custom)
    problem = _check_replay(state, actions)
    if problem:
        return _failed(step, events, state, problem, custom)
    result = StepResult(events, "Running", state, custom_status=custom)
    for index in range(len(state.sigs), len(actions)):
        problem = _schedule(step, result, actions[index], index)
        if problem:
            return _failed(step, events, state, problem, custom)
    for index, sig in enumerate(state.sigs):
        if sig[0] == CREATE_TIMER and actions[index].get("isCanceled") and sig[2] is not None:
            result.cancelled_timers.append(sig[2])
    if not doc.get("isDone"):
        _hidden_retry_allocation(step, result)
        events.append(h.event(h.ORCHESTRATOR_COMPLETED, step.now))
        return result
    return _finish(step, result, actions, doc)


def _check_replay(state: StepState, actions: list[dict[str, Any]]) -> str | None:
    for index, (sig, action) in enumerate(zip(state.sigs, actions, strict=False)):
        if sig[0] != action.get("actionType") or sig[1] != _sig_name(action):
            return (
                f"Non-deterministic workflow detected: action {index} was {sig[0]}:{sig[1]} in the history "
                f"but the orchestrator now produced {action.get('actionType')}:{_sig_name(action)}"
            )
    return None


def _alloc(state: StepState) -> int:
    n = state.next_id
    state.next_id += 1
    return n


def _schedule(step: StepInput, result: StepResult, action: dict[str, Any], index: int) -> str | None:
    kind = action.get("actionType")
    state = result.state
    if kind in _UNSUPPORTED:
        return f"{_UNSUPPORTED[kind]} (action type {kind}) are not supported by devhost"
    if kind == WAIT_EVENT:
        state.sigs.append([kind, _sig_name(action), None])
        return None
    n = _alloc(state)
    state.sigs.append([kind, _sig_name(action), n])
    if kind in (CALL_ACTIVITY, CALL_ACTIVITY_RETRY):
        _schedule_activity(step, result, n, action["functionName"], action.get("input") or "null")
        if kind == CALL_ACTIVITY_RETRY:
            state.ledger[str(n)] = {
                "kind": "activity",
                "name": action["functionName"],
                "input": action.get("input"),
                "retry": action["retryOptions"],
                "attempt": 1,
            }
    elif kind in (CALL_SUB, CALL_SUB_RETRY):
        user_id = bool(action.get("instanceId"))
        child_id = action.get("instanceId") or f"{step.execution_id}:{n}"
        _schedule_child(
            step,
            result,
            ChildWork(
                n,
                action["functionName"],
                child_id,
                json.dumps(action.get("input")),
                user_id,
                str(action.get("version") or ""),
            ),
        )
        if kind == CALL_SUB_RETRY:
            state.ledger[str(n)] = {
                "kind": "sub",
                "name": action["functionName"],
                "input": action.get("input"),
                "retry": action["retryOptions"],
                "attempt": 1,
                "instanceId": action.get("instanceId"),
            }
    elif kind == CREATE_TIMER:
        fire_at = h.parse_time(action["fireAt"])
        result.events.append(h.event(h.TIMER_CREATED, step.now, n, FireAt=action["fireAt"]))
        if not action.get("isCanceled"):
            result.timers.append(TimerWork(n, fire_at))
    elif kind in (CALL_ENTITY, SIGNAL_ENTITY):
        target = str(action.get("instanceId") or "")
        if not target.startswith("@") or target.count("@") < 2:
            return f"entity id {target!r} is not of the form @name@key"
        # deterministic per execution and event id: a replay re-derives the same request id
        request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{step.instance_id}/{step.execution_id}/{n}"))
        waits = kind == CALL_ENTITY
        request = {
            "id": request_id,
            "op": action.get("operation"),
            "signal": not waits,
            "input": action.get("input"),
            "parent": step.instance_id if waits else None,
        }
        result.events.append(
            h.event(
                h.EVENT_SENT, step.now, n, Name=action.get("operation"), InstanceId=target, Input=json.dumps(request)
            )
        )
        result.entity_ops.append(
            EntityOp(target, str(action.get("operation")), action.get("input"), request_id if waits else None)
        )
    elif kind == CONTINUE_AS_NEW:
        result.continue_input_json = json.dumps(action.get("input"))
    return None


def _schedule_activity(step: StepInput, result: StepResult, n: int, name: str, input_text: str) -> None:
    result.events.append(h.event(h.TASK_SCHEDULED, step.now, n, Name=name, Version="", Input=input_text))
    result.activities.append(ActivityWork(n, name, input_text))


def _schedule_child(step: StepInput, result: StepResult, child: ChildWork) -> None:
    result.events.append(
        h.event(
            h.SUB_CREATED,
            step.now,
            child.task_id,
            Name=child.name,
            Version="",
            InstanceId=child.instance_id,
            Input=child.input_json,
        )
    )
    result.children.append(child)


def _hidden_retry_allocation(step: StepInput, result: StepResult) -> None:
    """Retry attempts are allocated by the host (DTFx RetryInterceptor); the trigger is the batch's last event."""
    if not step.new:
        return
    last = step.new[-1]
    kind = last["EventType"]
    state = result.state
    if kind in (h.TASK_FAILED, h.SUB_FAILED):
        entry = state.ledger.get(str(last["TaskScheduledId"]))
        if entry is None or entry["kind"] == "retry_timer":
            return
        n = _alloc(state)
        fire_at = h.add_ms(step.now, float(entry["retry"]["firstRetryIntervalInMilliseconds"]))
        result.events.append(h.event(h.TIMER_CREATED, step.now, n, FireAt=h.fmt_time(fire_at)))
        result.timers.append(TimerWork(n, fire_at))
        state.ledger[str(n)] = {**entry, "kind": "retry_timer", "task_kind": entry["kind"]}
    elif kind == h.TIMER_FIRED:
        entry = state.ledger.get(str(last["TimerId"]))
        if entry is None or entry["kind"] != "retry_timer":
            return
        if entry["attempt"] >= int(entry["retry"]["maxNumberOfAttempts"]):
            return
        n = _alloc(state)
        task = {**entry, "kind": entry["task_kind"], "attempt": entry["attempt"] + 1}
        task.pop("task_kind", None)
        state.ledger[str(n)] = task
        if task["kind"] == "activity":
            _schedule_activity(step, result, n, task["name"], task["input"] or "null")
        else:
            child_id = task.get("instanceId") or f"{step.execution_id}:{n}"
            _schedule_child(
                step,
                result,
                ChildWork(n, task["name"], child_id, json.dumps(task["input"]), bool(task.get("instanceId"))),
            )


def _finish(step: StepInput, result: StepResult, actions: list[dict[str, Any]], doc: dict[str, Any]) -> StepResult:
    events = result.events
    events.append(h.event(h.ORCHESTRATOR_COMPLETED, step.now))
    if result.continue_input_json is not None or any(a.get("actionType") == CONTINUE_AS_NEW for a in actions[-1:]):
        result.status = "ContinuedAsNew"
        result.activities.clear()
        result.timers.clear()
        result.children.clear()
        if result.continue_input_json is None:
            result.continue_input_json = json.dumps(actions[-1].get("input"))
        return result
    result.status = "Completed"
    result.output = doc.get("output")
    events.append(
        h.event(
            h.EXECUTION_COMPLETED,
            step.now,
            OrchestrationStatus=h.STATUS_CODES["Completed"],
            Result=json.dumps(result.output),
        )
    )
    return result
