"""The messages that cross trigger → orchestrator → activity: their JSON form, what older payloads still parse to,
and the clear, permanent error of a malformed one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from activities.blueprint import retryable
from backends.settings import Settings
from messages.enums import JobState, ModelStage, Outcome, Trigger
from messages.runs import ApiTest, ReleaseInput, RetrainInput
from messages.steps import DatasetRef, DeployPlan, StageMove, TrafficRequest
from messages.wire import Message, MessageError
from messages.work import JobStatus, Operation, OperationKind, OperationState, OperationStatus
from orchestrators.release import begun
from triggers.inputs import release_input, retrain_input

#: a retrain input as the app wrote it before the messages existed (an instance in flight may hold it)
LEGACY_RETRAIN: dict[str, Any] = {
    "trigger": "blob",
    "data": "incoming/a.csv",
    "etag": "0x1",
    "config": {
        "model_name": "diabetes-ridge",
        "incoming": "incoming",
        "quarantine": "quarantine",
        "datasets": "datasets",
        "promotion": {"metric": "rmse", "confidence": 0.95, "min_improvement": 0.0, "r2_floor": 0.3},
        "drift": {"psi": 0.25, "ks_pvalue": 0.001},
        "poll_seconds": 5,
        "timeout_minutes": 60,
    },
}


def test_the_triggers_inputs_keep_their_json_shape() -> None:
    settings = Settings.from_env({})
    built = retrain_input(settings, "blob", "incoming/a.csv", "0x1")
    assert json.loads(json.dumps(built)) == built
    assert set(built) == set(LEGACY_RETRAIN)
    # added since, with defaults that read a legacy input as the default model's: a spec and a dataset folder
    assert set(built["config"]) - set(LEGACY_RETRAIN["config"]) == {"spec", "dataset_prefix"}
    assert set(built["config"]["promotion"]) - set(LEGACY_RETRAIN["config"]["promotion"]) == {"floor_metric"}
    legacy = RetrainInput.from_dict(LEGACY_RETRAIN).config
    assert (legacy.spec, legacy.dataset_prefix, legacy.promotion.floor_metric) == ("", "", "r2")
    release = release_input(settings, "3", "ev")
    assert set(release) == {"model_name", "version", "trigger", "event_id", "config"}
    assert set(release["config"]) == {
        "api_test",
        "api_test_production",
        "poll_seconds",
        "deploy",
        "endpoint_prefix",
        "approval",
        "notify",
        "links",
    }


def test_an_older_input_parses_and_round_trips() -> None:
    run = RetrainInput.from_dict(LEGACY_RETRAIN)
    assert run.trigger is Trigger.BLOB and run.config.promotion.r2_floor == 0.3
    assert RetrainInput.from_dict(run.to_dict()) == run
    assert run.to_dict()["config"]["timeout_minutes"] == 60


def test_missing_keys_take_the_declared_defaults_and_unknown_keys_are_ignored() -> None:
    release = ReleaseInput.from_dict(
        {"model_name": "m", "version": "3", "config": {"api_test": {"max_p99_ms": 9}, "added_later": 1}}
    )
    assert release.trigger is Trigger.EVENT
    assert release.config.api_test == ApiTest(max_p99_ms=9.0)
    assert release.config.production_tests is release.config.api_test
    assert release.config.deploy.timeout_minutes == 60.0


@pytest.mark.parametrize(
    ("cls", "payload", "message"),
    [
        (ReleaseInput, {"version": "3"}, "ReleaseInput: missing field 'model_name'"),
        (
            StageMove,
            {"model_name": "m", "version": "3", "stage": "champoin"},
            "StageMove.stage: 'champoin' is not one of champion, qa, production, archived, rejected",
        ),
        (
            TrafficRequest,
            {"endpoint": "qa", "traffic": {"blue": "lots"}},
            "TrafficRequest.traffic.blue: expected a number",
        ),
        (DatasetRef, {"version": "1", "paths": "datasets/a.csv"}, "DatasetRef.paths: expected a list, got str"),
        (RetrainInput, [], "RetrainInput: expected an object, got list"),
    ],
)
def test_a_malformed_payload_is_a_permanent_error_naming_the_field(
    cls: type[Message], payload: object, message: str
) -> None:
    with pytest.raises(MessageError) as caught:
        cls.from_dict(payload)
    assert str(caught.value).startswith(message)
    assert not retryable(caught.value)


def test_enums_travel_as_their_values() -> None:
    status = JobStatus("j", JobState.COMPLETED)
    assert status.to_dict()["state"] == "completed" and status.finished
    assert JobStatus.from_dict({"job_id": "j", "state": "running"}).state is JobState.RUNNING
    assert StageMove("m", "3", ModelStage.CHAMPION).to_dict() == {
        "model_name": "m",
        "version": "3",
        "stage": "champion",
    }
    assert json.dumps({"outcome": Outcome.ROLLED_BACK}) == '{"outcome": "rolled_back"}'


def test_a_result_recorded_before_long_operations_reads_as_done() -> None:
    """Endpoint activities once answered when the change was made; a history holding such an answer replays."""
    legacy_plan = DeployPlan.from_dict({"slot": "blue", "previous_slot": None, "previous_version": None})
    assert legacy_plan.status is None
    assert (
        begun({"endpoint": "qa", "traffic": {"blue": 100}}, OperationKind.TRAFFIC, "qa").state
        is OperationState.SUCCEEDED
    )
    running = OperationStatus(Operation(OperationKind.DEPLOY, "qa", "blue", "3"), OperationState.RUNNING)
    assert begun(running.to_dict(), OperationKind.DEPLOY, "qa") == running


def test_endpoint_ids_of_the_default_model_and_of_the_others() -> None:
    from messages.enums import Environment, endpoint_id, endpoint_parts

    assert endpoint_id("", Environment.QA) == "qa" and endpoint_id("breast-cancer-", "production") == (
        "breast-cancer-production"
    )
    assert endpoint_parts("production") == ("", Environment.PRODUCTION)
    assert endpoint_parts("breast-cancer-qa") == ("breast-cancer-", Environment.QA)
    for bad in ("staging", "-qa-x", "qaqa"):
        with pytest.raises(ValueError, match="unknown endpoint"):
            endpoint_parts(bad)
