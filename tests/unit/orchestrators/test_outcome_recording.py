"""Every run ends with record_outcome: after a normal ending with its outcome, after a failure with ``failed``
(then the failure propagates); a recording that fails changes nothing. Driven by the scripted driver and by the
real Durable SDK (devhost's replay step, the same one devhost runs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import pytest

from activities import names as act
from backends.telemetry import RunFinished
from devhost import history as h
from devhost.loader import index_functions
from devhost.replay import StepInput, StepResult, StepState, run_step
from messages.enums import RunKind
from orchestrators import blueprint, names
from orchestrators.retrain import retrain
from orchestrators.steps import TRANSIENT
from tests.unit.orchestrators.driver import Context, run
from tests.unit.orchestrators.test_recipes import CONFIG, retrain_script, start


def _recorded_retrain(context: Any) -> Any:
    return blueprint.recorded(context, RunKind.RETRAIN, retrain(context))


def script(**overrides: Any) -> dict[str, Any]:
    return {**retrain_script(), act.RECORD_OUTCOME: lambda p: RunFinished.from_dict(p).to_dict(), **overrides}


def test_a_finished_retrain_records_its_outcome_last() -> None:
    output, calls = run(_recorded_retrain, start(), script())
    assert output["outcome"] == "registered"
    record = calls[-1]
    assert record.name == act.RECORD_OUTCOME
    assert record.payload == {
        "run_id": "retrain-abc",
        "kind": "retrain",
        "outcome": "registered",
        "model": "diabetes-ridge",
        "version": "3",
        "trigger": "blob",
        "duration_s": record.payload["duration_s"],
        "reason": output["reason"],
    }
    assert record.payload["duration_s"] > 0  # two durable timers went by on the virtual clock
    RunFinished.from_dict(record.payload)  # what the activity will accept


def test_a_failed_retrain_records_failed_then_fails() -> None:
    def broken(payload: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("Activity function 'evaluate_challenger' failed: RuntimeError: registry down\ntrace")

    calls: list[Any] = []
    with pytest.raises(RuntimeError, match="registry down"):
        run(_recorded_retrain, start(), script(**{act.EVALUATE_CHALLENGER: broken}), calls=calls)
    record = calls[-1]
    assert record.name == act.RECORD_OUTCOME
    assert record.payload["outcome"] == blueprint.FAILED
    assert record.payload["reason"] == "Activity function 'evaluate_challenger' failed: RuntimeError: registry down"
    assert record.payload["version"] == "" and record.payload["model"] == "diabetes-ridge"


def test_a_failing_recording_changes_neither_the_output_nor_the_failure() -> None:
    def down(payload: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("telemetry down")

    output, _ = run(_recorded_retrain, start(), script(**{act.RECORD_OUTCOME: down}))
    assert output["outcome"] == "registered"


def test_a_release_records_its_model_and_version_from_its_input() -> None:
    context = Context({"model_name": "diabetes-ridge", "version": "5", "config": {}}, instance_id="release-x-5")
    payload = blueprint.outcome(context, RunKind.RELEASE, context.input, context.now, {"outcome": "superseded"})
    assert (payload["model"], payload["version"], payload["trigger"]) == ("diabetes-ridge", "5", "event")
    assert payload["duration_s"] == 0


# ---- the registered orchestrator under the real Durable SDK ----------------------------------------------------

_app = df.DFApp()
_app.register_functions(blueprint.bp)
HANDLES = {name: info.callable for name, info in index_functions(_app).items()}
Answer = Callable[[str, Any], Any]


def _payload(text: str) -> Any:
    value = json.loads(text)
    return json.loads(value) if isinstance(value, str) else value


def drive(
    name: str,
    instance_id: str,
    run_input: dict[str, Any],
    answer: Answer,
) -> tuple[StepResult, list[tuple[str, Any]]]:
    """Episodes until the instance ends: activities answered by ``answer`` (raise = failed), timers fired."""
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    input_json = json.dumps(run_input)
    new = [h.event(h.ORCHESTRATOR_STARTED, now), h.execution_started(now, instance_id, "e1", name, input_json)]
    past: list[h.Event] = []
    state = StepState()
    scheduled: list[tuple[str, Any]] = []
    for _ in range(60):
        result = run_step(HANDLES[name], StepInput(name, instance_id, "e1", None, input_json, past, new, state, now))
        past, state = past + result.events, result.state
        if result.status != "Running":
            return result, scheduled
        now += timedelta(seconds=1)
        inbound: list[h.Event] = []
        for work in result.activities:
            payload = _payload(work.input)
            scheduled.append((work.name, payload))
            try:
                inbound.append(
                    h.event(
                        h.TASK_COMPLETED,
                        now,
                        TaskScheduledId=work.task_id,
                        Result=json.dumps(answer(work.name, payload)),
                    )
                )
            except Exception as exc:
                inbound.append(
                    h.event(
                        h.TASK_FAILED,
                        now,
                        TaskScheduledId=work.task_id,
                        Reason=f"Activity function '{work.name}' failed: {type(exc).__name__}: {exc}",
                        Details=json.dumps({"type": type(exc).__name__, "message": str(exc)}),
                    )
                )
        for timer in result.timers:
            now = max(now, timer.fire_at)
            inbound.append(h.event(h.TIMER_FIRED, now, TimerId=timer.timer_id, FireAt=h.fmt_time(timer.fire_at)))
        new = [h.event(h.ORCHESTRATOR_STARTED, now), *inbound]
    raise AssertionError("the orchestration did not end")


TIMER_RUN = {"trigger": "timer", "data": None, "config": CONFIG}


def test_real_sdk_a_normal_ending_is_recorded() -> None:
    def answer(activity: str, payload: Any) -> Any:
        return {"version": None} if activity == act.SNAPSHOT_DATASET else {"recorded": True}

    result, scheduled = drive(names.RETRAIN, "retrain-nightly-20261124", TIMER_RUN, answer)
    assert result.status == "Completed"
    assert [a for a, _ in scheduled] == [act.SNAPSHOT_DATASET, act.RECORD_OUTCOME]
    recorded = scheduled[-1][1]
    assert (recorded["run_id"], recorded["kind"], recorded["outcome"], recorded["trigger"]) == (
        "retrain-nightly-20261124",
        "retrain",
        "skipped_no_new_data",
        "timer",
    )


def test_real_sdk_a_failed_orchestration_records_failed_then_fails() -> None:
    def answer(activity: str, payload: Any) -> Any:
        if activity == act.SNAPSHOT_DATASET:  # as the activity wrapper marks a failure a retry can help
            raise RuntimeError(f"{act.RETRYABLE} TransientBackendError: storage unreachable")
        return {"recorded": True}

    result, scheduled = drive(names.RETRAIN, "retrain-nightly-20261125", TIMER_RUN, answer)
    assert result.status == "Failed"
    assert "storage unreachable" in str(result.output)
    attempts = TRANSIENT.attempts
    assert [a for a, _ in scheduled] == [act.SNAPSHOT_DATASET] * attempts + [act.RECORD_OUTCOME]  # retried, recorded
    recorded = scheduled[-1][1]
    assert recorded["outcome"] == "failed" and "storage unreachable" in recorded["reason"]
    waited = sum(TRANSIENT.wait_s(n) for n in range(1, attempts))
    assert recorded["duration_s"] >= waited  # the retry intervals passed on the history's clock


def test_real_sdk_a_permanent_failure_is_recorded_without_retries() -> None:
    def answer(activity: str, payload: Any) -> Any:
        if activity == act.SNAPSHOT_DATASET:
            raise RuntimeError("KeyError: 'datasets'")
        return {"recorded": True}

    result, scheduled = drive(names.RETRAIN, "retrain-nightly-20261126", TIMER_RUN, answer)
    assert result.status == "Failed"
    assert [a for a, _ in scheduled] == [act.SNAPSHOT_DATASET, act.RECORD_OUTCOME]
