"""The batch recipe against scripted activity results: a bounded fan-out with its progress, a window retried chunk by
chunk after a failure, refusals with their outcome, and the platform job polled with durable timers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities import names as act
from orchestrators.batch import batch

RUN = {"container": "batch", "model": "m", "name": "m/in/a.csv", "etag": "e1", "parallel": 2, "poll_seconds": 10}


@dataclass
class Call:
    kind: str
    name: str
    payload: Any


@dataclass
class Context:
    input: dict[str, Any]
    instance_id: str = "batch-1"
    now: datetime = field(default_factory=lambda: datetime(2026, 12, 1, tzinfo=UTC))
    statuses: list[Any] = field(default_factory=list)

    @property
    def current_utc_datetime(self) -> datetime:
        return self.now

    def get_input(self) -> dict[str, Any]:
        return self.input

    def set_custom_status(self, status: Any) -> None:
        self.statuses.append(status)

    def call_activity(self, name: str, payload: Any = None) -> Call:
        return Call("activity", name, payload)

    def create_timer(self, fire_at: datetime) -> Call:
        return Call("timer", "timer", fire_at)

    def task_all(self, tasks: list[Call]) -> Call:
        return Call("all", "all", tasks)


def drive(script: dict[str, Callable[[Any], Any]], run: dict[str, Any] = RUN) -> tuple[Any, list[Call], Context]:
    context = Context(run)
    generator, calls = batch(context), list[Call]()
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            call = generator.throw(error) if error else generator.send(value)
        except StopIteration as done:
            return done.value, calls, context
        calls.append(call)
        error, value = None, None
        if call.kind == "timer":
            context.now = max(context.now + timedelta(seconds=1), call.payload)
            continue
        try:
            if call.kind == "all":
                value = [script[t.name](t.payload) for t in call.payload]
            else:
                value = script[call.name](call.payload)
        except Exception as exc:
            error = exc


def _plan(chunks: int, **extra: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "version": "3",
        "format": "csv",
        "output": "m/out/a.csv",
        "chunks": [{"index": i, "first_row": 10 * i, "rows": 10} for i in range(chunks)],
        "rows": 10 * chunks,
        **extra,
    }


def _chunk(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["plan"]["chunks"] == []  # a chunk's request never carries the whole plan
    index = payload["chunk"]["index"]
    return {"index": index, "rows": 10, "scored": 9, "blocks": [f"b{index}"], "invalid": {"count": 1}}


def _finish(payload: dict[str, Any]) -> dict[str, Any]:
    scored = sum(r["scored"] for r in payload["results"])
    return {"output": "batch/m/out/a.csv", "report": "batch/m/out/a.csv.report.json", "rows": 50, "scored": scored}


def test_chunks_are_scored_a_few_at_a_time_with_progress_then_assembled() -> None:
    script = {act.PLAN_BATCH: lambda p: _plan(5), act.SCORE_CHUNK: _chunk, act.FINISH_BATCH: _finish}
    result, calls, context = drive(script)
    windows = [len(c.payload) for c in calls if c.kind == "all"]
    assert windows == [2, 2, 1]
    assert result["outcome"] == "scored" and result["kind"] == "batch" and result["model_version"] == "3"
    assert [s["name"] for s in result["stages"]] == ["plan", "score", "assemble"]
    done = [s["progress"]["chunks_done"] for s in context.statuses if s.get("progress")]
    assert done == sorted(done) and done[-1] == 5
    assert result["progress"] == {
        "chunks_done": 5,
        "chunks_total": 5,
        "rows": 50,
        "rows_scored": 45,
        "rows_skipped": 5,
    }
    finish = next(c for c in calls if c.name == act.FINISH_BATCH)
    assert [r["blocks"] for r in finish.payload["results"]] == [["b0"], ["b1"], ["b2"], ["b3"], ["b4"]]


def test_a_window_with_a_transient_failure_is_run_again_chunk_by_chunk() -> None:
    failures = iter([RuntimeError("[retryable] TransientBackendError: storage busy")])

    def flaky(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["chunk"]["index"] == 1:
            error = next(failures, None)
            if error:
                raise error
        return _chunk(payload)

    script = {act.PLAN_BATCH: lambda p: _plan(3), act.SCORE_CHUNK: flaky, act.FINISH_BATCH: _finish}
    result, calls, _ = drive(script)
    assert result["outcome"] == "scored"
    singles = [c.payload["chunk"]["index"] for c in calls if c.kind == "activity" and c.name == act.SCORE_CHUNK]
    assert singles == [0, 1]


def test_a_permanent_chunk_failure_fails_the_run_on_the_score_stage() -> None:
    def broken(payload: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("TableFormatError: m/in/a.csv, chunk 0: not a CSV table")

    script = {act.PLAN_BATCH: lambda p: _plan(1), act.SCORE_CHUNK: broken}
    with pytest.raises(RuntimeError, match="not a CSV table"):
        drive(script)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("no_champion", "no_champion"),
        ("model_disabled", "model_disabled"),
        ("missing_columns", "invalid_data"),
        ("not_a_table", "invalid_data"),
        ("changed", "superseded"),
    ],
)
def test_a_refused_file_gets_its_report_and_outcome(code: str, outcome: str) -> None:
    refused = {"model": "m", "output": "m/out/a.csv", "problem": {"code": code, "message": f"m/in/a.csv: {code}"}}
    script = {
        act.PLAN_BATCH: lambda p: refused,
        act.REFUSE_BATCH: lambda p: {"report": "batch/m/out/a.csv.error.json"},
    }
    result, calls, _ = drive(script)
    assert [c.name for c in calls] == [act.PLAN_BATCH, act.REFUSE_BATCH]
    assert result["outcome"] == outcome and result["reason"] == f"m/in/a.csv: {code}"
    assert result["report"] == "batch/m/out/a.csv.error.json"
    assert result["stages"][0]["status"] == "failed"


def test_a_file_without_one_valid_row_ends_invalid() -> None:
    def none_scored(payload: dict[str, Any]) -> dict[str, Any]:
        problem = {"code": "no_valid_rows", "message": "m/in/a.csv: none of its 10 row(s) can be scored"}
        return {"output": "", "report": "batch/m/out/a.csv.error.json", "rows": 10, "problem": problem}

    script = {act.PLAN_BATCH: lambda p: _plan(1), act.SCORE_CHUNK: _chunk, act.FINISH_BATCH: none_scored}
    result, _, _ = drive(script)
    assert result["outcome"] == "invalid_data" and "none of its 10 row(s)" in result["reason"]


def test_a_platform_job_is_polled_with_durable_timers_until_it_ends() -> None:
    states = iter(["queued", "running", "running", "completed"])
    script = {
        act.PLAN_BATCH: lambda p: _plan(0, job="batch-job-1"),
        act.BATCH_JOB_STATUS: lambda p: {"job": p["job"], "state": next(states), "rows": 50},
        act.FINISH_BATCH: _finish,
    }
    result, calls, _ = drive(script)
    assert result["outcome"] == "scored"
    assert [c.kind for c in calls].count("timer") == 4
    assert not [c for c in calls if c.name == act.SCORE_CHUNK]
