"""Run views: pure functions from Durable orchestration statuses to the run dicts of the HTTP API.

A run view is built ONLY from the durable status (runtime status, times, input, output) and the
custom status the orchestrators set at every step, so what ``GET /api/runs`` shows is what the
orchestration itself recorded. Inputs are plain dicts shaped like the Durable status payload
(``name``, ``instanceId``, ``runtimeStatus``, ``input``, ``customStatus``, ``output``,
``createdTime``, ``lastUpdatedTime``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

SUMMARY_FIELDS = (
    "id",
    "kind",
    "status",
    "stage",
    "outcome",
    "trigger",
    "data",
    "model",
    "model_version",
    "created",
    "updated",
    "reason",
)
KINDS = ("retrain", "release", "batch")
STAGE_STATUSES = ("running", "succeeded", "failed", "skipped")


def iso(value: Any) -> str | None:
    """A timestamp as ISO 8601 UTC with a trailing Z (datetimes and strings accepted)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def _as_dict(value: Any) -> dict[str, Any]:
    """Custom status and input may arrive as a dict or as its JSON text; anything else is empty."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}


def _kind(instance_id: str, name: Any, custom: Mapping[str, Any]) -> str | None:
    for candidate in (custom.get("kind"), name):
        if candidate in KINDS:
            return str(candidate)
    for kind in KINDS:
        if instance_id.startswith(kind + "-"):
            return kind
    return None


def _text_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _failure_reason(status: Mapping[str, Any]) -> str | None:
    """A Failed orchestration (a bug, never a business outcome) carries its error in ``output``: the API gives the
    message alone; the traceback (with the server's paths) stays in the host's log."""
    if status.get("runtimeStatus") not in ("Failed", "Terminated"):
        return None
    output = status.get("output")
    if isinstance(output, Mapping):
        output = output.get("message") or output.get("reason") or json.dumps(output)
    return error_message(output) or str(status.get("runtimeStatus"))


_TRACE = re.compile(r"\s*(Traceback \(most recent call last\)|File \"[^\"]*\", line \d+)")
_PATH = re.compile(r"(?:/[\w.@+-]+){2,}/([\w.@+-]+\.py)")
MAX_REASON = 1000


def error_message(text: Any) -> str | None:
    """An error as a user reads it: its first line, with no traceback and no server path, bounded in length."""
    if text is None:
        return None
    lines = [line for line in str(text).splitlines() if line.strip()]
    if not lines:
        return None
    first = _TRACE.split(lines[0], maxsplit=1)[0].strip() or "the orchestration failed (details in the host's log)"
    first = _PATH.sub(r"\1", first)
    return first if len(first) <= MAX_REASON else first[:MAX_REASON] + "…"


def run_summary(status: Mapping[str, Any]) -> dict[str, Any]:
    """One line of ``GET /api/runs``."""
    instance_id = str(status.get("instanceId") or "")
    custom = _as_dict(status.get("customStatus"))
    given = _as_dict(status.get("input"))
    version = custom.get("model_version") or given.get("version")
    return {
        "id": instance_id,
        "kind": _kind(instance_id, status.get("name"), custom),
        "status": _text_or_none(status.get("runtimeStatus")),
        "stage": _text_or_none(custom.get("stage")),
        "outcome": _text_or_none(custom.get("outcome")),
        "trigger": _text_or_none(custom.get("trigger") or given.get("trigger")),
        "data": _text_or_none(custom.get("data") if "data" in custom else given.get("data")),
        "model": _text_or_none(
            custom.get("model") or given.get("model_name") or _as_dict(given.get("config")).get("model_name")
        ),
        "model_version": _text_or_none(version),
        "created": iso(status.get("createdTime")),
        "updated": iso(status.get("lastUpdatedTime")),
        "reason": _text_or_none(custom.get("reason")) or _failure_reason(status),
    }


def _stage(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping) or not raw.get("name"):
        return None
    status = raw.get("status")
    return {
        "name": str(raw["name"]),
        "status": str(status) if status in STAGE_STATUSES else "running",
        "started": iso(raw.get("started")),
        "finished": iso(raw.get("finished")),
        "detail": str(raw.get("detail") or ""),
    }


def run_detail(status: Mapping[str, Any]) -> dict[str, Any]:
    """``GET /api/runs/{id}``: the summary plus the stage timeline, the related run's id, a batch's progress and a
    release's approval (``{state, approvers, since, until, by, comment, decided}``, or None)."""
    custom = _as_dict(status.get("customStatus"))
    raw_stages = custom.get("stages")
    raw_stages = raw_stages if isinstance(raw_stages, list) else []
    stages = [stage for stage in (_stage(raw) for raw in raw_stages) if stage is not None]
    progress = custom.get("progress")
    approval = custom.get("approval")
    return {
        **run_summary(status),
        "stages": stages,
        "related": _text_or_none(custom.get("related")),
        "progress": dict(progress) if isinstance(progress, Mapping) else None,
        "approval": dict(approval) if isinstance(approval, Mapping) else None,
    }


def newest_first(statuses: Iterable[Mapping[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Run summaries sorted by creation time, newest first, at most ``limit`` of them."""
    runs = [run_summary(status) for status in statuses if status.get("instanceId")]
    runs.sort(key=lambda run: (run["created"] or "", run["id"]), reverse=True)
    return runs[:limit]
