"""Training job activities: submit (idempotent by job name), status, cancel."""

from __future__ import annotations

from typing import Any

from activities.runtime import backends
from backends.ports import TrainingRequest


def submit_training(payload: dict[str, Any]) -> dict[str, Any]:
    return backends().jobs.submit(TrainingRequest.from_dict(payload)).to_dict()


def training_status(payload: dict[str, Any]) -> dict[str, Any]:
    return backends().jobs.status(str(payload["job_id"])).to_dict()


def cancel_training(payload: dict[str, Any]) -> dict[str, Any]:
    backends().jobs.cancel(str(payload["job_id"]))
    return {"job_id": payload["job_id"], "canceled": True}
