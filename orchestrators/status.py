"""The run's stage timeline, kept as the orchestration's custom status (the single source of the run views).

Pure bookkeeping: timestamps are passed in (``context.current_utc_datetime``), never read from a clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Timeline:
    """Stages with status/start/finish/detail plus the run's headline fields (the contract's custom status)."""

    def __init__(self, kind: str, trigger: str, data: str | None = None, model_version: str | None = None) -> None:
        self.fields: dict[str, Any] = {"kind": kind, "trigger": trigger, "data": data, "model_version": model_version,
                                       "stage": None, "outcome": None, "reason": None, "related": None}
        self.stages: list[dict[str, Any]] = []

    def begin(self, name: str, now: datetime, detail: str = "") -> None:
        self.stages.append({"name": name, "status": "running", "started": iso(now), "finished": None,
                            "detail": detail})
        self.fields["stage"] = name

    def end(self, now: datetime, detail: str | None = None, status: str = "succeeded") -> None:
        stage = self.stages[-1]
        stage.update(status=status, finished=iso(now))
        if detail is not None:
            stage["detail"] = detail

    def fail(self, now: datetime, detail: str) -> None:
        self.end(now, detail, "failed")

    def skip(self, name: str, now: datetime, detail: str) -> None:
        self.begin(name, now, detail)
        self.end(now, detail, "skipped")

    def set(self, **values: Any) -> None:
        self.fields.update(values)

    def finish(self, outcome: str, reason: str) -> None:
        self.fields.update(outcome=outcome, reason=reason)

    def status(self) -> dict[str, Any]:
        return {**self.fields, "stages": [dict(s) for s in self.stages]}
