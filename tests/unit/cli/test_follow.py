from __future__ import annotations

from typing import Any

from cli.follow import RunPrinter, took


def run(status: str, stages: list[dict[str, Any]], outcome: str | None = None) -> dict[str, Any]:
    return {
        "id": "retrain-1",
        "kind": "retrain",
        "status": status,
        "trigger": "blob",
        "data": "incoming/a.csv",
        "model_version": "1" if outcome else None,
        "outcome": outcome,
        "reason": None,
        "created": "2026-01-01T00:00:00Z",
        "updated": "2026-01-01T00:00:09.5Z",
        "stages": stages,
    }


VALIDATE_RUNNING = {"name": "validate", "status": "running", "started": "2026-01-01T00:00:00Z", "finished": None}
VALIDATE_DONE = {**VALIDATE_RUNNING, "status": "succeeded", "finished": "2026-01-01T00:00:01.25Z", "detail": "442 rows"}


def test_each_change_is_printed_once() -> None:
    printer = RunPrinter()
    first = printer.update(run("Running", [VALIDATE_RUNNING]))
    assert first[0] == "▶ retrain-1: retrain started by blob on incoming/a.csv"
    assert "validate" in first[1] and "running" in first[1]
    assert printer.update(run("Running", [VALIDATE_RUNNING])) == []
    second = printer.update(run("Running", [VALIDATE_DONE]))
    assert len(second) == 1 and "succeeded" in second[0] and "1.2 s" in second[0] and "442 rows" in second[0]
    last = printer.update(run("Completed", [VALIDATE_DONE], outcome="registered"))
    assert last == ["■ retrain-1: registered (model version 1) in 9.5 s"]
    assert printer.update(run("Completed", [VALIDATE_DONE], outcome="registered")) == []


def test_took_needs_both_ends() -> None:
    assert took("2026-01-01T00:00:00Z", None) == ""
    assert took("garbage", "2026-01-01T00:00:00Z") == ""
    assert took("2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z") == "60.0 s"
