"""The pure step replays recorded histories (captured from a real devhost run) episode by episode, exactly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from devhost import history as h
from devhost.loader import index_functions
from devhost.replay import StepInput, StepState, run_step

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RECORDED = json.loads((FIXTURES / "devhost" / "recorded_histories.json").read_text())
_INBOUND = {
    h.EXECUTION_STARTED,
    h.TASK_COMPLETED,
    h.TASK_FAILED,
    h.SUB_COMPLETED,
    h.SUB_FAILED,
    h.TIMER_FIRED,
    h.EVENT_RAISED,
    h.EXECUTION_SUSPENDED,
    h.EXECUTION_RESUMED,
}


def _load_orchestrators() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(
        "devhost_fixture_durable_app", FIXTURES / "apps" / "durable_app" / "function_app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {f.name: f.callable for f in index_functions(module.app).values()}


HANDLES = _load_orchestrators()


def _episodes(events: list[h.Event]) -> list[list[h.Event]]:
    out: list[list[h.Event]] = []
    for ev in events:
        if ev["EventType"] == h.ORCHESTRATOR_STARTED:
            out.append([])
        out[-1].append(ev)
    return out


def _split(episode: list[h.Event]) -> int:
    count = 1
    while count < len(episode) and episode[count]["EventType"] in _INBOUND:
        count += 1
    return count


@pytest.mark.parametrize("case", sorted(RECORDED))
def test_each_recorded_episode_is_reproduced_exactly(case: str) -> None:
    rec = RECORDED[case]
    state = StepState()
    past: list[h.Event] = []
    for episode in _episodes(rec["history"]):
        cut = _split(episode)
        step = StepInput(
            rec["name"],
            rec["instanceId"],
            rec["executionId"],
            rec["parentId"],
            rec["input"],
            past,
            episode[:cut],
            state,
            h.parse_time(episode[0]["Timestamp"]),
        )
        result = run_step(HANDLES[rec["name"]], step)
        assert result.events == episode, f"{case}: episode at {len(past)} differs"
        state = result.state
        past = past + episode
    assert result.status == "Completed"


def test_retry_allocates_hidden_timer_then_rescheduled_task() -> None:
    events = RECORDED["retrying"]["history"]
    scheduled = [
        (e["EventType"], e["EventId"]) for e in events if e["EventType"] in (h.TASK_SCHEDULED, h.TIMER_CREATED)
    ]
    # attempt 1 (#0) fails -> timer #1 -> attempt 2 (#2) fails -> timer #3 -> attempt 3 (#4) succeeds
    assert scheduled == [(4, 0), (10, 1), (4, 2), (10, 3), (4, 4)]
    gave_up = [
        (e["EventType"], e["EventId"])
        for e in RECORDED["retry_gives_up"]["history"]
        if e["EventType"] in (h.TASK_SCHEDULED, h.TIMER_CREATED)
    ]
    assert gave_up == [(4, 0), (10, 1), (4, 2), (10, 3)]  # the extra timer after the last attempt


def test_changed_orchestrator_is_non_deterministic() -> None:
    rec = RECORDED["chain"]
    episodes = _episodes(rec["history"])
    past = episodes[0] + episodes[1]
    state = StepState(next_id=2, sigs=[[0, "add_one", 0], [0, "add_one", 1]])
    step = StepInput(
        "fan_out",
        rec["instanceId"],
        rec["executionId"],
        None,
        rec["input"],
        past,
        episodes[2][: _split(episodes[2])],
        state,
        h.utcnow(),
    )
    result = run_step(HANDLES["fan_out"], step)
    assert result.status == "Failed"
    assert "Non-deterministic workflow detected" in str(result.output)


def test_orchestrator_exception_uses_the_failure_envelope() -> None:
    rec = RECORDED["chain"]
    now = h.utcnow()
    started = h.execution_started(now, "x", "e", "failing", json.dumps("null"))
    step = StepInput(
        "failing", "x", "e", None, "null", [], [h.event(h.ORCHESTRATOR_STARTED, now), started], StepState(), now
    )
    first = run_step(HANDLES["failing"], step)
    assert first.status == "Running" and [a.name for a in first.activities] == ["boom"]
    failed = h.event(
        h.TASK_FAILED, now, TaskScheduledId=0, Reason="Activity function 'boom' failed: ValueError: x", Details="{}"
    )
    second = run_step(
        HANDLES["failing"],
        StepInput(
            "failing",
            "x",
            "e",
            None,
            "null",
            first.events,
            [h.event(h.ORCHESTRATOR_STARTED, now), failed],
            first.state,
            now,
        ),
    )
    assert second.status == "Failed"
    assert str(second.output).startswith("Orchestrator function 'failing' failed: Activity function 'boom' failed")
    assert second.events[-1]["EventType"] == h.EXECUTION_COMPLETED
    assert rec["name"] == "chain"
