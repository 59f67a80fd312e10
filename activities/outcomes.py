"""Run outcome activity: the orchestrations call it when they finish (succeeded, normal outcome or failed)."""

from __future__ import annotations

from typing import Any

from backends.telemetry import RunFinished, record_run_finished


def record_outcome(payload: dict[str, Any]) -> dict[str, Any]:
    """Emit the ``RunFinished`` custom event for one finished run; returns what was recorded."""
    event = RunFinished.from_dict(payload)
    record_run_finished(event)
    return event.to_dict()
