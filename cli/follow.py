"""Turning successive run views (``GET /api/runs/{id}``) into the lines a person wants to read, once each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FINAL_STATUSES = ("Completed", "Failed", "Terminated", "Canceled")


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def took(start: Any, end: Any) -> str:
    """'1.2 s' between two ISO timestamps ('' when either is missing)."""
    first, last = _moment(start), _moment(end)
    if first is None or last is None:
        return ""
    return f"{(last - first).total_seconds():.1f} s"


def finished(run: dict[str, Any]) -> bool:
    return run.get("status") in FINAL_STATUSES


@dataclass
class RunPrinter:
    """Remembers what was already said about each run, so every stage change is printed once."""

    stages: dict[tuple[str, str], str] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)

    def update(self, run: dict[str, Any]) -> list[str]:
        run_id = str(run.get("id"))
        lines: list[str] = []
        if run_id not in self.started:
            self.started.add(run_id)
            source = f" on {run['data']}" if run.get("data") else ""
            version = f" of version {run['model_version']}" if run.get("kind") == "release" else ""
            lines.append(f"▶ {run_id}: {run.get('kind')}{version} started by {run.get('trigger')}{source}")
        for stage in run.get("stages") or []:
            key = (run_id, str(stage.get("name")))
            status = str(stage.get("status"))
            if self.stages.get(key) == status:
                continue
            self.stages[key] = status
            lines.append(self._stage_line(run_id, stage, status))
        if finished(run) and run_id not in self.done:
            self.done.add(run_id)
            lines.append(self._final_line(run_id, run))
        return lines

    @staticmethod
    def _stage_line(run_id: str, stage: dict[str, Any], status: str) -> str:
        name = str(stage.get("name"))
        if status == "running":
            return f"  {run_id}  {name:<18} running…"
        detail = f"  {stage['detail']}" if stage.get("detail") else ""
        duration = took(stage.get("started"), stage.get("finished"))
        return f"  {run_id}  {name:<18} {status:<9} {duration:>8}{detail}"

    @staticmethod
    def _final_line(run_id: str, run: dict[str, Any]) -> str:
        outcome = run.get("outcome") or str(run.get("status")).lower()
        reason = f" — {run['reason']}" if run.get("reason") else ""
        version = f" (model version {run['model_version']})" if run.get("model_version") else ""
        return f"■ {run_id}: {outcome}{version} in {took(run.get('created'), run.get('updated'))}{reason}"
