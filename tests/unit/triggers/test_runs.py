from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from triggers.runs import SUMMARY_FIELDS, iso, newest_first, run_detail, run_summary

STAGES = [
    {
        "name": "validate",
        "status": "succeeded",
        "started": "2026-01-01T00:00:01Z",
        "finished": "2026-01-01T00:00:02Z",
        "detail": "442 rows",
    },
    {"name": "train", "status": "running", "started": "2026-01-01T00:00:03Z", "finished": None, "detail": ""},
]


def status(
    instance_id: str = "retrain-abc",
    runtime: str = "Running",
    custom: Any = None,
    created: str = "2026-01-01T00:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": "retrain",
        "instanceId": instance_id,
        "runtimeStatus": runtime,
        "customStatus": custom,
        "createdTime": created,
        "lastUpdatedTime": "2026-01-01T00:00:05Z",
        **extra,
    }


def test_summary_comes_from_the_custom_status() -> None:
    custom = {
        "kind": "retrain",
        "trigger": "blob",
        "data": "incoming/a.csv",
        "model": "diabetes-ridge",
        "model_version": "3",
        "stage": "register",
        "outcome": "registered",
        "reason": None,
        "related": "release-m-3",
        "stages": STAGES,
    }
    run = run_summary(status(runtime="Completed", custom=custom))
    assert list(run) == list(SUMMARY_FIELDS)
    assert run == {
        "id": "retrain-abc",
        "kind": "retrain",
        "status": "Completed",
        "stage": "register",
        "outcome": "registered",
        "trigger": "blob",
        "data": "incoming/a.csv",
        "model": "diabetes-ridge",
        "model_version": "3",
        "created": "2026-01-01T00:00:00Z",
        "updated": "2026-01-01T00:00:05Z",
        "reason": None,
    }


def test_detail_adds_stages_and_related() -> None:
    custom = {"stage": "train", "related": None, "stages": [*STAGES, "junk", {"status": "running"}]}
    run = run_detail(status(custom=custom))
    assert [s["name"] for s in run["stages"]] == ["validate", "train"]
    assert run["stages"][0] == STAGES[0]
    assert run["related"] is None
    assert run["stage"] == "train"


def test_pending_run_without_custom_status_falls_back_to_input_and_name() -> None:
    raw = status(
        "release-diabetes-ridge-2",
        runtime="Pending",
        custom=None,
        name="release",
        input={"trigger": "event", "version": 2, "model_name": "diabetes-ridge"},
    )
    run = run_detail(raw)
    assert run["kind"] == "release"
    assert run["trigger"] == "event"
    assert run["model_version"] == "2" and run["model"] == "diabetes-ridge"
    assert run["stage"] is None and run["outcome"] is None
    assert run["stages"] == []
    pending_retrain = run_summary(status(custom=None, input={"trigger": "http", "config": {"model_name": "m"}}))
    assert pending_retrain["model"] == "m"


def test_custom_status_as_json_text_is_read() -> None:
    run = run_summary(status(custom='{"stage": "validate", "kind": "retrain"}'))
    assert run["stage"] == "validate"


def test_failed_runtime_carries_its_error_as_reason() -> None:
    run = run_summary(status(runtime="Failed", custom={"stage": "train"}, output="ZeroDivisionError: boom"))
    assert run["status"] == "Failed"
    assert run["outcome"] is None
    assert run["reason"] == "ZeroDivisionError: boom"


def test_unknown_kind_is_derived_from_the_id() -> None:
    raw = status("release-m-1", name="something-else")
    assert run_summary(raw)["kind"] == "release"
    assert run_summary(status("other-1", name="other"))["kind"] is None


def test_newest_first_with_limit() -> None:
    statuses = [status(f"retrain-{i}", created=f"2026-01-0{i}T00:00:00Z") for i in (3, 1, 2)]
    assert [r["id"] for r in newest_first(statuses, 2)] == ["retrain-3", "retrain-2"]
    assert [r["id"] for r in newest_first([*statuses, {"instanceId": None}], 10)] == [
        "retrain-3",
        "retrain-2",
        "retrain-1",
    ]


def test_iso_normalises_datetimes_to_utc_z() -> None:
    assert iso(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert iso(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"
    assert iso(None) is None


def test_a_failure_reason_is_the_message_without_traceback_or_paths() -> None:
    output = (
        "Orchestrator function 'retrain' failed: Activity function 'validate_drop' failed: ValueError: bad "
        "input in /work/app/.venv/lib/python3.11/site-packages/x/y.py\n Traceback (most recent call last):\n"
        '  File "/work/app/ml/validation.py", line 10, in check\n    raise ValueError("bad input")\n'
    )
    reason = run_summary(status(runtime="Failed", output=output))["reason"]
    assert reason == (
        "Orchestrator function 'retrain' failed: Activity function 'validate_drop' failed: ValueError: "
        "bad input in y.py"
    )
    assert run_summary(status(runtime="Failed", output="x" * 5000))["reason"].endswith("…")
