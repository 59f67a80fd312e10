"""Training job activities: submit (idempotent by job name), status, cancel."""

from __future__ import annotations

from typing import Any

from activities.runtime import backends
from messages.steps import JobRef
from messages.work import TrainingRequest


def submit_training(payload: dict[str, Any]) -> dict[str, Any]:
    return backends().jobs.submit(TrainingRequest.from_dict(payload)).to_dict()


def training_status(payload: dict[str, Any]) -> dict[str, Any]:
    return backends().jobs.status(JobRef.from_dict(payload).job_id).to_dict()


def cancel_training(payload: dict[str, Any]) -> dict[str, Any]:
    job = JobRef.from_dict(payload)
    backends().jobs.cancel(job.job_id)
    return {"job_id": job.job_id, "canceled": True}
