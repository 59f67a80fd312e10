"""The run's stage timeline, kept as the orchestration's custom status (the single source of the run views).

Pure bookkeeping: timestamps are passed in (``context.current_utc_datetime``), never read from a clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from messages.enums import Outcome, RunKind, Stage, StageStatus, Trigger


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Timeline:
    """Stages with status/start/finish/detail plus the run's headline fields (the contract's custom status)."""

    def __init__(
        self,
        kind: RunKind,
        trigger: Trigger,
        data: str | None = None,
        model_version: str | None = None,
        model: str | None = None,
    ) -> None:
        self.fields: dict[str, Any] = {
            "kind": kind.value,
            "model": model,
            "trigger": Trigger(trigger).value,
            "data": data,
            "model_version": model_version,
            "stage": None,
            "outcome": None,
            "reason": None,
            "related": None,
        }
        self.stages: list[dict[str, Any]] = []

    def begin(self, name: Stage, now: datetime, detail: str = "") -> None:
        self.stages.append(
            {
                "name": name.value,
                "status": StageStatus.RUNNING.value,
                "started": iso(now),
                "finished": None,
                "detail": detail,
            }
        )
        self.fields["stage"] = name.value

    def end(self, now: datetime, detail: str | None = None, status: StageStatus = StageStatus.SUCCEEDED) -> None:
        stage = self.stages[-1]
        stage.update(status=status.value, finished=iso(now))
        if detail is not None:
            stage["detail"] = detail

    def fail(self, now: datetime, detail: str) -> None:
        self.end(now, detail, StageStatus.FAILED)

    def skip(self, name: Stage, now: datetime, detail: str) -> None:
        self.begin(name, now, detail)
        self.end(now, detail, StageStatus.SKIPPED)

    def record(self, name: Stage, now: datetime, detail: str, status: StageStatus) -> None:
        """Append a finished entry without moving the run's headline ``stage`` (a notification's failure, recorded
        after the stages that decided the outcome)."""
        self.stages.append(
            {"name": name.value, "status": status.value, "started": iso(now), "finished": iso(now), "detail": detail}
        )

    def set(self, **values: Any) -> None:
        self.fields.update(values)

    def finish(self, outcome: Outcome, reason: str) -> None:
        self.fields.update(outcome=outcome.value, reason=reason)

    @property
    def reason(self) -> str:
        return str(self.fields["reason"] or "")

    @property
    def outcome(self) -> str | None:
        value: str | None = self.fields["outcome"]
        return value

    def status(self) -> dict[str, Any]:
        return {**self.fields, "stages": [dict(s) for s in self.stages]}
