"""Orchestration histories, recorded and replayed with the real Durable SDK (devhost's replay step drives it).

``record`` runs an orchestrator as the host does, one episode per completed task, with scripted activity answers
shaped like the real activities' answers, and keeps the history the host would store (DTFx JSON events).
``python -m tests.support.histories OUT_DIR`` records the scenarios below with whatever app is first on
``sys.path``: run it from a checkout of an earlier commit to record the histories its in-flight instances hold.

``replay_episodes`` replays a recorded history against today's orchestrator at every episode boundary, as a host
does after each completed task of an instance in flight; ``tests/unit/orchestrators/test_replay.py`` asserts each
replay schedules what the history recorded and ends as it ended.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from devhost import history as h
from devhost.replay import StepInput, StepState, build_context, call_orchestrator, flatten, run_step

Answer = Callable[[str, Any, int], Any]
START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Failed(Exception):
    """An activity failure in a scripted answer (the TaskFailed event's reason)."""


def handle(name: str) -> Callable[[Any], str]:
    """The orchestrator ``name`` as the worker calls it (the SDK's handle), from the app's blueprint."""
    from orchestrators import blueprint

    for builder in blueprint.bp._function_builders:
        function = builder.build()
        if function.get_function_name() == name:
            user: Callable[[Any], str] = function.get_user_function()
            return user
    raise LookupError(f"no orchestrator {name!r} in orchestrators.blueprint")


#: a timer this far ahead is a wait for a person: the recorder raises its next external event before it fires
LONG_WAIT = timedelta(minutes=10)


def record(
    name: str,
    instance_id: str,
    payload: dict[str, Any],
    answer: Answer,
    max_episodes: int = 200,
    *,
    events: list[tuple[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run orchestrator ``name`` to its end; ``answer(activity, input, attempt)`` answers each task (raise
    ``Failed`` to fail it); ``events`` (name, data) are raised, in turn, a minute into a wait on a long timer (an
    approval). Returns ``{"orchestrator", "instance_id", "input", "history", "output", "status"}``."""
    to_raise = list(events or [])
    fn, now, state = handle(name), START, StepState()
    input_json = json.dumps(payload)
    past: list[h.Event] = []
    new = [
        h.event(h.ORCHESTRATOR_STARTED, now),
        h.execution_started(now, instance_id, "e-" + instance_id, name, input_json),
    ]
    attempts: dict[str, int] = {}
    pending: list[h.Event] = []
    for _ in range(max_episodes):
        result = run_step(fn, StepInput(name, instance_id, "e-" + instance_id, None, input_json, past, new, state, now))
        past, state = past + result.events, result.state
        if result.status != "Running":
            return {
                "orchestrator": name,
                "instance_id": instance_id,
                "input": payload,
                "history": past,
                "output": result.output,
                "status": result.status,
                "custom_status": result.custom_status,
            }
        for work in result.activities:
            attempts[work.name] = attempts.get(work.name, 0) + 1
            try:
                value = answer(work.name, json.loads(work.input), attempts[work.name])
                pending.append(h.event(h.TASK_COMPLETED, now, TaskScheduledId=work.task_id, Result=json.dumps(value)))
            except Failed as exc:
                pending.append(
                    h.event(
                        h.TASK_FAILED,
                        now,
                        TaskScheduledId=work.task_id,
                        Reason=f"Activity function '{work.name}' failed: {exc}",
                        Details=None,
                    )
                )
        for timer in result.timers:
            pending.append(
                h.event(h.TIMER_FIRED, timer.fire_at, TimerId=timer.timer_id, FireAt=h.fmt_time(timer.fire_at))
            )
        pending = [e for e in pending if e.get("TimerId") not in set(result.cancelled_timers)]
        waits_long = bool(pending) and pending[0]["EventType"] == h.TIMER_FIRED
        if to_raise and waits_long and h.parse_time(pending[0]["Timestamp"]) - now > LONG_WAIT:
            event_name, data = to_raise.pop(0)
            raised = h.event(h.EVENT_RAISED, now + timedelta(minutes=1), Name=event_name, Input=json.dumps(data))
            pending.insert(0, raised)
        if not pending:
            raise AssertionError(f"{name} waits for nothing the recorder can answer")
        completion = pending.pop(0)
        now = max(now + timedelta(seconds=1), h.parse_time(completion["Timestamp"]))
        new = [h.event(h.ORCHESTRATOR_STARTED, now), completion]
    raise AssertionError(f"{name} did not finish within {max_episodes} episodes")


@dataclass(frozen=True)
class Episode:
    """One replay of a recorded history: what the SDK decided given the history up to the episode's end."""

    index: int
    expected: list[tuple[int, str | None]]
    produced: list[tuple[int, str | None]]
    done: bool
    output: Any
    error: Any
    custom_status: Any


_INPUTS = (
    h.ORCHESTRATOR_STARTED,
    h.EXECUTION_STARTED,
    h.TASK_COMPLETED,
    h.TASK_FAILED,
    h.TIMER_FIRED,
    h.EVENT_RAISED,
)
_SCHEDULED = {h.TASK_SCHEDULED: 0, h.TIMER_CREATED: 5}
_WAIT_FOR_EVENT = 6


def _signature(action: dict[str, Any]) -> tuple[int, str | None]:
    kind = int(action["actionType"])
    return (0 if kind in (0, 1) else kind, action.get("functionName"))


def replay_episodes(recorded: dict[str, Any]) -> Iterator[Episode]:
    """Replay ``recorded`` with today's orchestrator, once per episode of its history."""
    fn, events = handle(recorded["orchestrator"]), recorded["history"]
    starts = [i for i, e in enumerate(events) if e["EventType"] == h.ORCHESTRATOR_STARTED]
    for index, start in enumerate(starts):
        end = next(i for i in range(start, len(events)) if events[i]["EventType"] == h.ORCHESTRATOR_COMPLETED)
        new = [e for e in events[start:end] if e["EventType"] in _INPUTS]
        step = StepInput(
            recorded["orchestrator"],
            recorded["instance_id"],
            "e-" + recorded["instance_id"],
            None,
            json.dumps(recorded["input"]),
            events[:start],
            new,
            StepState(),
            START,
        )
        doc = call_orchestrator(fn, build_context(step))
        expected = [(_SCHEDULED[e["EventType"]], e.get("Name")) for e in events[:end] if e["EventType"] in _SCHEDULED]
        # a wait for an external event (action 6) is no event of the history: only the event raised later is
        produced = [_signature(a) for a in flatten(doc.get("actions", [])) if int(a["actionType"]) != _WAIT_FOR_EVENT]
        yield Episode(
            index,
            expected,
            produced,
            bool(doc.get("isDone")),
            doc.get("output"),
            doc.get("error"),
            doc.get("customStatus"),
        )


# --- the recorded scenarios (answers shaped like the real activities' answers) -----------------------------------

MODEL = "diabetes-ridge"
CONFIG = {
    "model_name": MODEL,
    "incoming": "incoming",
    "quarantine": "quarantine",
    "datasets": "datasets",
    "promotion": {"metric": "rmse", "confidence": 0.95, "min_improvement": 0.0, "r2_floor": 0.3},
    "drift": {"psi": 0.25, "ks_pvalue": 0.001},
    "poll_seconds": 5.0,
    "timeout_minutes": 60,
}
RETRAIN_INPUT = {"trigger": "blob", "data": "incoming/drop-1.csv", "etag": "0x8DD1", "config": CONFIG}
RELEASE_INPUT = {
    "model_name": MODEL,
    "version": "2",
    "trigger": "event",
    "event_id": "ev-2",
    "config": {
        "api_test": {"max_p99_ms": 500.0, "max_error_rate": 0.01, "requests": 50},
        "api_test_production": {"max_p99_ms": 500.0, "max_error_rate": 0.01, "requests": 50},
        "poll_seconds": 0.5,
        "deploy": {"poll_seconds": 2.0, "timeout_minutes": 60},
    },
}
_DROP = {"blob": "drop-1.csv", "etag": "0x8DD1", "rows": 442, "sha256": "5e1f" * 16, "path": "drops/5e1f.csv"}
_METRICS = {"rmse": 53.1, "mae": 43.2, "r2": 0.47}


def retrain_answer(*, valid: bool = True) -> Answer:
    def answer(name: str, payload: Any, attempt: int) -> Any:
        if name == "validate_drop":
            return {
                "ok": valid,
                "summary": "drop-1.csv: 442 rows" + ("" if valid else ", 1 problem"),
                "messages": [] if valid else ["drop-1.csv: column 'bmi' has 1 missing value(s) at row 7"],
                "rows": 442,
                "etag": "0x8DD1",
                "report": "datasets/reports/9a1c.json",
            }
        if name == "quarantine_drop":
            return {"quarantined": "quarantine/drop-1.csv", "report": "quarantine/drop-1.csv.report.json"}
        if name == "accept_drop":
            return {
                "version": "2",
                "drops": [_DROP],
                "rows": 884,
                "parent": "1",
                "created": "2026-11-24T12:00:01Z",
                "container": "datasets",
                "duplicate_of": None,
                "paths": ["datasets/drops/5e1f.csv"],
            }
        if name == "submit_training":
            return {
                "job_id": payload["job_name"],
                "state": "queued",
                "message": "starting",
                "log_tail": "",
                "url": "file:///jobs/x/job.log",
            }
        if name == "training_status":
            if attempt == 1:
                raise Failed("[retryable] TransientBackendError: storage busy")
            state = "running" if attempt < 4 else "completed"
            return {"job_id": payload["job_id"], "state": state, "message": "", "log_tail": "", "url": ""}
        if name == "evaluate_challenger":
            return {
                "promote": True,
                "reason": "rmse improved by 4.1% (95% interval 1.2% to 7.0%)",
                "metric": "rmse",
                "challenger": _METRICS,
                "champion": {"rmse": 55.4, "mae": 44.9, "r2": 0.43},
                "interval": [0.012, 0.07],
                "n_rows": 89,
                "champion_version": "1",
                "job_id": payload["job_id"],
            }
        if name == "register_model":
            return {
                "name": MODEL,
                "version": "2",
                "stage": "qa",
                "tags": {"run_id": payload["run_id"]},
                "source": "runs:/r/model",
                "registered": "2026-11-24T12:03:00Z",
            }
        if name == "record_outcome":
            return payload
        raise AssertionError(f"retrain called an unexpected activity {name!r}")

    return answer


def _operation(kind: str, endpoint: str, state: str, message: str = "", **extra: Any) -> dict[str, Any]:
    operation = {
        "kind": kind,
        "endpoint": endpoint,
        "slot": extra.get("slot", ""),
        "version": extra.get("version", ""),
        "traffic": extra.get("traffic", {}),
        "status_url": "",
        "model_name": MODEL,
    }
    return {"operation": operation, "state": state, "message": message}


def release_answer(*, production_passes: bool = True) -> Answer:
    slots = {"qa": ("green", "blue"), "production": ("green", "blue")}

    def answer(name: str, payload: Any, attempt: int) -> Any:
        if name == "describe_model":
            return {
                "name": MODEL,
                "version": "2",
                "stage": "qa",
                "tags": {"run_id": "retrain-2"},
                "source": "",
                "registered": "",
                "run_id": "retrain-2",
            }
        if name == "claim_release":
            granted = attempt > 1  # the release of version 1 still holds the slot at the first look
            return {"granted": granted, "superseded": False, "active": None if granted else "1", "newest": "2"}
        if name in ("free_release",):
            return {"freed": True}
        if name == "set_model_stage":
            return {
                "name": MODEL,
                "version": "2",
                "stage": payload["stage"],
                "tags": {},
                "source": "",
                "registered": "",
            }
        if name == "deploy_model":
            new, old = slots[payload["endpoint"]]
            status = _operation("deploy", payload["endpoint"], "running", slot=new, version="2")
            return {"slot": new, "previous_slot": old, "previous_version": "1", "others": [old], "status": status}
        if name == "endpoint_operation_status":
            operation = payload["operation"]
            return {"operation": operation, "state": "succeeded", "message": ""}
        if name in ("set_traffic", "remove_deployment"):
            kind = "traffic" if name == "set_traffic" else "remove"
            return _operation(
                kind, payload["endpoint"], "running", slot=payload.get("slot", ""), traffic=payload.get("traffic", {})
            )
        if name == "api_test":
            passed = production_passes or payload["endpoint"] == "qa"
            return {
                "passed": passed,
                "summary": f"50 requests, p99 12.0 ms{'' if passed else ', 3 errors'}",
                "reasons": [] if passed else ["error rate 0.06 > 0.01"],
                "requests": 50,
                "p99_ms": 12.0,
                "error_rate": 0.0 if passed else 0.06,
                "version": "2",
            }
        if name == "record_outcome":
            return payload
        if name == "tag_model":
            return {"version": "2", "tags": payload["tags"]}
        if name == "notify":
            return {"target": payload["target"], "format": payload["format"], "status": 200}
        raise AssertionError(f"release called an unexpected activity {name!r}")

    return answer


#: a release whose policy has an approval step and whose outcome goes to two webhooks (recorded from the code that
#: added them: an instance of it in flight must keep replaying)
GATED_RELEASE_INPUT: dict[str, Any] = {
    **RELEASE_INPUT,
    "config": {
        **cast(dict[str, Any], RELEASE_INPUT["config"]),
        "approval": {"approvers": ["alice", "bob"], "timeout_s": 10 * 86_400.0},
        "notify": ["json", "teams"],
        "links": "https://app.example",
    },
}
APPROVED = {
    "decision": "approve",
    "by": "alice",
    "comment": "QA numbers reviewed",
    "principal_id": "",
    "at": "2026-11-24T12:01:00.000000Z",
}

SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "retrain-registered": lambda: record("retrain", "retrain-rec1", RETRAIN_INPUT, retrain_answer()),
    "retrain-invalid-data": lambda: record("retrain", "retrain-rec2", RETRAIN_INPUT, retrain_answer(valid=False)),
    "release-deployed": lambda: record("release", "release-rec1", RELEASE_INPUT, release_answer()),
    "release-rolled-back": lambda: record(
        "release", "release-rec2", RELEASE_INPUT, release_answer(production_passes=False)
    ),
    "release-approved": lambda: record(
        "release", "release-rec3", GATED_RELEASE_INPUT, release_answer(), events=[("approval_decision", APPROVED)]
    ),
}


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, scenario in SCENARIOS.items():
        recorded = scenario()
        (out / f"{name}.json").write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(
            f"{name}: {len(recorded['history'])} events, {recorded['status']}, "
            f"outcome {(recorded['output'] or {}).get('outcome')}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
