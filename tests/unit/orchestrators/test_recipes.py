"""The retrain and release recipes, run against scripted activity results: every outcome and its side effects."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from activities import names as act
from orchestrators.release import EndpointOperationFailed, release
from orchestrators.retrain import poll_after, retrain
from tests.unit.orchestrators.driver import Context, Script, names, run

MODEL = "diabetes-ridge"
CONFIG = {
    "model_name": MODEL,
    "incoming": "incoming",
    "quarantine": "quarantine",
    "datasets": "datasets",
    "promotion": {"metric": "rmse"},
    "drift": {"psi": 0.25, "ks_pvalue": 0.001},
    "poll_seconds": 5,
    "timeout_minutes": 1,
}
DATASET = {
    "version": "2",
    "rows": 442,
    "drops": [{"blob": "incoming/a.csv", "etag": "e"}],
    "paths": ["datasets/drops/x.csv"],
    "champion_dataset_version": "1",
}


def retrain_script(**overrides: Any) -> Script:
    job_states = iter(["running", "running", "completed"])
    script: Script = {
        act.VALIDATE_DROP: lambda p: {
            "ok": True,
            "summary": "a.csv: 442 rows accepted",
            "messages": [],
            "etag": "e",
            "report": "datasets/reports/r.json",
        },
        act.ACCEPT_DROP: lambda p: DATASET,
        act.SNAPSHOT_DATASET: lambda p: DATASET,
        act.SUBMIT_TRAINING: lambda p: {"job_id": p["job_name"], "state": "queued"},
        act.TRAINING_STATUS: lambda p: {"job_id": p["job_id"], "state": next(job_states)},
        act.EVALUATE_CHALLENGER: lambda p: {
            "promote": True,
            "reason": "better beyond noise",
            "challenger": {"rmse": 50.0, "mae": 40.0, "r2": 0.5},
        },
        act.REGISTER_MODEL: lambda p: {"version": "3"},
    }
    script.update(overrides)
    return script


def start(trigger: str = "blob", data: str | None = "incoming/a.csv") -> Context:
    return Context({"trigger": trigger, "data": data, "etag": "e", "config": CONFIG}, instance_id="retrain-abc")


def test_good_drop_is_registered_with_lineage() -> None:
    context = start()
    output, calls = run(retrain, context, retrain_script())
    assert output["outcome"] == "registered"
    assert output["model_version"] == "3" and output["related"] == "release-diabetes-ridge-3"
    assert [s["name"] for s in output["stages"]] == ["validate", "accept", "train", "evaluate", "register"]
    assert all(s["status"] == "succeeded" for s in output["stages"])
    assert names(calls).count("timer") == 3, "the job is monitored with durable timers"
    register = next(c for c in calls if c.name == act.REGISTER_MODEL).payload
    assert register["run_id"] == "retrain-abc" and register["dataset_version"] == "2"
    assert context.custom_status == output or context.custom_status["outcome"] == "registered"


def test_bad_drop_is_quarantined_and_nothing_is_trained() -> None:
    script = retrain_script(
        **{
            act.VALIDATE_DROP: lambda p: {
                "ok": False,
                "summary": "rejected",
                "etag": "e",
                "report": "datasets/r.json",
                "messages": ["a.csv: missing column(s) bmi", "a.csv: 3 rows out of range"],
            },
            act.QUARANTINE_DROP: lambda p: {"quarantined": "quarantine/a.csv"},
        }
    )
    output, calls = run(retrain, start(), script)
    assert output["outcome"] == "invalid_data"
    assert output["reason"] == "a.csv: missing column(s) bmi; a.csv: 3 rows out of range"
    assert names(calls) == [act.VALIDATE_DROP, act.QUARANTINE_DROP]
    assert output["stages"][0]["status"] == "failed"


def test_losing_challenger_is_a_normal_outcome() -> None:
    script = retrain_script(
        **{
            act.EVALUATE_CHALLENGER: lambda p: {
                "promote": False,
                "reason": "challenger RMSE 55 vs champion RMSE 50: champion kept",
                "challenger": {},
            }
        }
    )
    output, calls = run(retrain, start(), script)
    assert output["outcome"] == "not_better"
    assert "champion kept" in output["reason"]
    assert act.REGISTER_MODEL not in names(calls)


def test_failed_job_ends_training_failed_with_its_log() -> None:
    script = retrain_script(
        **{
            act.TRAINING_STATUS: lambda p: {
                "job_id": p["job_id"],
                "state": "failed",
                "message": "exit code 1",
                "log_tail": "Traceback: boom",
            }
        }
    )
    output, calls = run(retrain, start(), script)
    assert output["outcome"] == "training_failed"
    assert "exit code 1" in output["reason"] and "Traceback: boom" in output["reason"]
    assert act.EVALUATE_CHALLENGER not in names(calls)


def test_job_running_past_the_timeout_is_cancelled() -> None:
    script = retrain_script(
        **{
            act.TRAINING_STATUS: lambda p: {"job_id": p["job_id"], "state": "running"},
            act.CANCEL_TRAINING: lambda p: {"canceled": True},
        }
    )
    output, calls = run(retrain, start(), script)
    assert output["outcome"] == "training_failed" and "timed out after 1 minutes" in output["reason"]
    assert act.CANCEL_TRAINING in names(calls)
    waits = [
        (b.payload - a.payload).total_seconds() for a, b in itertools.pairwise(c for c in calls if c.name == "timer")
    ]
    assert waits == sorted(waits) and max(waits) == 5, "checks grow with the job's age, up to poll_seconds"
    assert len(waits) < 40


@pytest.mark.parametrize(
    ("age", "longest", "wait"), [(0, 5, 0.25), (4, 5, 0.4), (30, 5, 3), (600, 5, 5), (0, 60, 3), (3600, 60, 60)]
)
def test_status_checks_start_prompt_and_slow_down_with_the_jobs_age(age: float, longest: float, wait: float) -> None:
    assert poll_after(age, longest) == pytest.approx(wait)


def test_timer_with_no_new_data_skips() -> None:
    script = retrain_script(**{act.SNAPSHOT_DATASET: lambda p: {**DATASET, "champion_dataset_version": "2"}})
    output, calls = run(retrain, start("timer", None), script)
    assert output["outcome"] == "skipped_no_new_data"
    assert names(calls) == [act.SNAPSHOT_DATASET]


def test_a_drop_whose_rows_are_already_in_the_dataset_trains_nothing() -> None:
    script = retrain_script(**{act.ACCEPT_DROP: lambda p: {**DATASET, "duplicate_of": "incoming/first.csv@e1"}})
    output, calls = run(retrain, start(), script)
    assert output["outcome"] == "skipped_no_new_data"
    assert "same rows as incoming/first.csv@e1, already in dataset 2" in output["reason"]
    assert names(calls) == [act.VALIDATE_DROP, act.ACCEPT_DROP]


def test_http_retrain_without_data_trains_on_the_accumulated_dataset() -> None:
    script = retrain_script(**{act.SNAPSHOT_DATASET: lambda p: {**DATASET, "champion_dataset_version": "2"}})
    output, calls = run(retrain, start("http", None), script)
    assert output["outcome"] == "registered"
    assert act.VALIDATE_DROP not in names(calls)


def test_unexpected_activity_failure_marks_the_stage_and_fails() -> None:
    def broken(payload: dict[str, Any]) -> Any:
        raise RuntimeError("Activity function 'accept_drop' failed: storage exploded")

    context = start()
    with pytest.raises(RuntimeError, match="storage exploded"):
        run(retrain, context, retrain_script(**{act.ACCEPT_DROP: broken}))
    assert context.custom_status["stages"][-1]["status"] == "failed"


# --- release ---------------------------------------------------------------------------------------------


class Operations:
    """Endpoint operations as the platform runs them: each stays ``running`` for ``polls`` status checks, then ends
    ``succeeded`` (or as ``outcome`` says for a kind and endpoint). Records every call in order."""

    def __init__(self, polls: int = 0, outcome: dict[tuple[str, str], tuple[str, str]] | None = None) -> None:
        self.polls, self.outcome = polls, outcome or {}
        self.left: dict[str, int] = {}
        self.log: list[tuple[str, str, str]] = []

    def begin(self, kind: str, endpoint: str, **fields: Any) -> dict[str, Any]:
        op_id = f"op-{len(self.left)}"
        self.left[op_id] = self.polls
        operation = {"kind": kind, "endpoint": endpoint, "status_url": op_id, **fields}
        self.log.append(("begin", kind, endpoint))
        return self._status(operation)

    def status(self, payload: dict[str, Any]) -> dict[str, Any]:
        operation = payload["operation"]
        self.left[operation["status_url"]] -= 1
        self.log.append(("poll", operation["kind"], operation["endpoint"]))
        return self._status(operation)

    def _status(self, operation: dict[str, Any]) -> dict[str, Any]:
        if self.left[operation["status_url"]] > 0:
            return {"operation": operation, "state": "running", "message": ""}
        state, message = self.outcome.get((operation["kind"], operation["endpoint"]), ("succeeded", ""))
        self.log.append((state, operation["kind"], operation["endpoint"]))
        return {"operation": operation, "state": state, "message": message}


def release_script(
    qa_passes: bool = True,
    prod_passes: bool = True,
    previous: str | None = "blue",
    claims: list[dict[str, Any]] | None = None,
    ops: Operations | None = None,
) -> Script:
    queue = iter(claims or [{"granted": True, "superseded": False, "active": "3", "newest": "3"}])
    ops = ops or Operations()

    def verdict(passed: bool) -> dict[str, Any]:
        return {"passed": passed, "summary": "all checks passed" if passed else "p99 900 ms above 500 ms"}

    def deploy(p: dict[str, Any]) -> dict[str, Any]:
        slot = "blue" if p["endpoint"] == "qa" else "green"
        old = previous if p["endpoint"] == "production" else None
        return {
            "slot": slot,
            "previous_slot": old,
            "previous_version": "2" if old else None,
            "others": [old] if old else [],
            "status": ops.begin("deploy", p["endpoint"], slot=slot, version=p["version"]),
        }

    return {
        act.DESCRIBE_MODEL: lambda p: {"run_id": "retrain-abc"},
        act.CLAIM_RELEASE: lambda p: next(queue),
        act.FREE_RELEASE: lambda p: {"freed": True},
        act.DEPLOY_MODEL: deploy,
        act.ENDPOINT_OPERATION_STATUS: ops.status,
        act.API_TEST: lambda p: verdict(qa_passes if p["endpoint"] == "qa" else prod_passes),
        act.SET_TRAFFIC: lambda p: ops.begin("traffic", p["endpoint"], traffic=p["traffic"]),
        act.SET_MODEL_STAGE: lambda p: {"stage": p["stage"]},
        act.REMOVE_DEPLOYMENT: lambda p: ops.begin("remove", p["endpoint"], slot=p["slot"]),
    }


def release_context(deploy: dict[str, Any] | None = None) -> Context:
    config = {
        "api_test": {"max_p99_ms": 500},
        "poll_seconds": 5,
        "deploy": deploy or {"poll_seconds": 30, "timeout_minutes": 60},
    }
    return Context(
        {"model_name": "diabetes-ridge", "version": "3", "trigger": "event", "event_id": "ev", "config": config},
        instance_id="release-diabetes-ridge-3",
    )


def test_release_deploys_blue_green_and_promotes() -> None:
    output, calls = run(release, release_context(), release_script())
    assert output["outcome"] == "deployed" and output["related"] == "retrain-abc"
    traffic = [c.payload["traffic"] for c in calls if c.name == act.SET_TRAFFIC]
    assert traffic == [{"blue": 100}, {"green": 100, "blue": 0}]
    stages = [c.payload["stage"] for c in calls if c.name == act.SET_MODEL_STAGE]
    assert stages == ["production", "champion"]
    assert [c.payload for c in calls if c.name == act.REMOVE_DEPLOYMENT] == [
        {"endpoint": "production", "slot": "blue", "model_name": MODEL}
    ]
    assert names(calls)[-1] == act.FREE_RELEASE


def test_long_deployments_are_polled_with_durable_timers_and_traffic_waits_for_success() -> None:
    ops = Operations(polls=12)
    context = release_context()
    started = context.now
    output, calls = run(release, context, release_script(ops=ops), max_steps=2000)
    assert output["outcome"] == "deployed"
    for endpoint in ("qa", "production"):
        succeeded = ops.log.index(("succeeded", "deploy", endpoint))
        moved = ops.log.index(("begin", "traffic", endpoint))
        assert succeeded < moved, f"{endpoint} traffic moved before its deployment succeeded"
        assert ops.log[succeeded - 12 : succeeded].count(("poll", "deploy", endpoint)) == 12
    timers = [c for c in calls if c.kind == "timer"]
    assert len(timers) == names(calls).count(act.ENDPOINT_OPERATION_STATUS), "one durable timer before each check"
    waits = [(b.payload - a.payload).total_seconds() for a, b in itertools.pairwise(timers[:12])]
    assert waits == sorted(waits) and max(waits) <= 30, "checks start prompt and slow down, up to poll_seconds"
    assert context.now - started > timedelta(seconds=12), "the waiting happened in the orchestration's clock"


def test_a_failed_qa_deployment_ends_qa_failed_with_the_platforms_message() -> None:
    ops = Operations(polls=2, outcome={("deploy", "qa"): ("failed", "ResourceNotReady: liveness probe failed")})
    output, calls = run(release, release_context(), release_script(ops=ops))
    assert output["outcome"] == "qa_failed"
    assert "QA deployment failed: ResourceNotReady: liveness probe failed" in output["reason"]
    assert output["stages"][-1] == {**output["stages"][-1], "name": "deploy_qa", "status": "failed"}
    assert act.SET_TRAFFIC not in names(calls) and act.API_TEST not in names(calls)
    assert [c.payload["stage"] for c in calls if c.name == act.SET_MODEL_STAGE] == ["rejected"]
    assert names(calls)[-1] == act.FREE_RELEASE


def test_a_failed_production_deployment_is_removed_and_traffic_never_moves() -> None:
    ops = Operations(polls=1, outcome={("deploy", "production"): ("failed", "Quota exceeded")})
    output, calls = run(release, release_context(), release_script(ops=ops))
    assert output["outcome"] == "rolled_back"
    assert "production deployment failed: Quota exceeded; version 2 still serves" in output["reason"]
    assert [c.payload["endpoint"] for c in calls if c.name == act.SET_TRAFFIC] == ["qa"]
    assert [c.payload for c in calls if c.name == act.REMOVE_DEPLOYMENT] == [
        {"endpoint": "production", "slot": "green", "model_name": MODEL}
    ]
    assert [c.payload["stage"] for c in calls if c.name == act.SET_MODEL_STAGE] == ["rejected"]


def test_a_deployment_running_past_its_time_fails_the_stage() -> None:
    ops = Operations(polls=10_000)
    output, calls = run(
        release, release_context({"poll_seconds": 30, "timeout_minutes": 5}), release_script(ops=ops), max_steps=2000
    )
    assert output["outcome"] == "qa_failed"
    assert "did not finish within 5 minutes" in output["reason"]
    assert 10 < names(calls).count(act.ENDPOINT_OPERATION_STATUS) < 60, "bounded, and checked often enough"


def test_a_failed_traffic_change_fails_the_release_and_frees_the_slot() -> None:
    ops = Operations(polls=1, outcome={("traffic", "production"): ("failed", "Conflict: another operation")})
    context = release_context()
    calls: list[Any] = []
    with pytest.raises(EndpointOperationFailed, match="production traffic change failed: Conflict"):
        run(release, context, release_script(ops=ops), calls=calls)
    assert context.custom_status["stages"][-1]["status"] == "failed"
    assert names(calls)[-1] == act.FREE_RELEASE


def test_results_recorded_before_long_operations_still_replay() -> None:
    """An instance in flight across the upgrade replays its old, synchronous deploy results."""
    script = release_script()
    script[act.DEPLOY_MODEL] = lambda p: {
        "slot": "blue" if p["endpoint"] == "qa" else "green",
        "previous_slot": None if p["endpoint"] == "qa" else "blue",
        "previous_version": "2",
        "state": {"deployments": {}},
    }
    script[act.SET_TRAFFIC] = lambda p: {"name": p["endpoint"], "deployments": {}, "traffic": p["traffic"]}
    script[act.REMOVE_DEPLOYMENT] = lambda p: {"name": p["endpoint"], "deployments": {}, "traffic": {}}
    output, calls = run(release, release_context(), script)
    assert output["outcome"] == "deployed"
    assert act.ENDPOINT_OPERATION_STATUS not in names(calls)


def test_production_is_tested_against_its_own_thresholds() -> None:
    context = release_context()
    context.input["config"]["api_test_production"] = {"max_p99_ms": 50}
    _, calls = run(release, context, release_script())
    tested = {c.payload["endpoint"]: c.payload["thresholds"] for c in calls if c.name == act.API_TEST}
    # the thresholds travel whole: what the input leaves out takes the defaults declared once, on the message
    assert tested == {
        "qa": {"requests": 50, "max_p99_ms": 500.0, "max_error_rate": 0.01},
        "production": {"requests": 50, "max_p99_ms": 50.0, "max_error_rate": 0.01},
    }


def test_qa_failure_leaves_production_untouched() -> None:
    output, calls = run(release, release_context(), release_script(qa_passes=False))
    assert output["outcome"] == "qa_failed" and "production untouched" in output["reason"]
    assert all(c.payload.get("endpoint") != "production" for c in calls if isinstance(c.payload, dict))
    assert [c.payload["stage"] for c in calls if c.name == act.SET_MODEL_STAGE] == ["rejected"]
    assert names(calls)[-1] == act.FREE_RELEASE


def test_production_failure_rolls_back_to_the_previous_version() -> None:
    output, calls = run(release, release_context(), release_script(prod_passes=False))
    assert output["outcome"] == "rolled_back" and "version 2 serves again" in output["reason"]
    traffic = [c.payload["traffic"] for c in calls if c.name == act.SET_TRAFFIC and c.payload["endpoint"] != "qa"]
    assert traffic == [{"green": 100, "blue": 0}, {"blue": 100, "green": 0}]
    removed = [c.payload for c in calls if c.name == act.REMOVE_DEPLOYMENT]
    assert {"endpoint": "production", "slot": "green", "model_name": MODEL} in removed
    assert [c.payload["stage"] for c in calls if c.name == act.SET_MODEL_STAGE] == ["production", "rejected"]
    assert output["stages"][-1]["name"] == "rollback"


def test_waiting_release_is_superseded_by_a_newer_version() -> None:
    claims = [
        {"granted": False, "superseded": False, "active": "2", "newest": "3"},
        {"granted": False, "superseded": True, "active": "2", "newest": "4"},
    ]
    output, calls = run(release, release_context(), release_script(claims=claims))
    assert output["outcome"] == "superseded" and "superseded by version 4" in output["reason"]
    assert names(calls).count("timer") == 1
    assert act.DEPLOY_MODEL not in names(calls) and act.FREE_RELEASE not in names(calls)
    assert [c.payload["stage"] for c in calls if c.name == act.SET_MODEL_STAGE] == ["archived"]


def test_lock_is_freed_when_a_step_fails() -> None:
    script = release_script()

    def broken(payload: dict[str, Any]) -> Any:
        raise RuntimeError("Activity function 'deploy_model' failed: port in use")

    script[act.DEPLOY_MODEL] = broken
    calls: list[Any] = []
    with pytest.raises(RuntimeError, match="port in use"):
        run(release, release_context(), script, calls=calls)
    assert names(calls)[-1] == act.FREE_RELEASE


def test_a_release_suspended_mid_way_closes_cleanly() -> None:
    """After each episode the SDK leaves the generator suspended and drops it: closing it must not yield (a yield in
    a ``finally`` did, and every release logged ``generator ignored GeneratorExit`` once per episode)."""
    script = release_script()
    generator = release(release_context())
    call = generator.send(None)
    while call.name != act.DEPLOY_MODEL:  # inside the release proper, where the slot is held
        call = generator.send(script[call.name](call.payload) if call.kind == "activity" else None)
    generator.close()  # raises RuntimeError("generator ignored GeneratorExit") if it yields while closing


def test_a_failing_release_frees_its_slot_and_fails() -> None:
    script = release_script()
    script[act.API_TEST] = lambda p: (_ for _ in ()).throw(Exception("Activity function 'api_test' failed: KeyError"))
    calls: list[Any] = []
    with pytest.raises(Exception, match="KeyError"):
        run(release, release_context(), script, calls=calls)
    assert names(calls)[-1] == act.FREE_RELEASE
