"""Batch scoring activities: plan the file, score one chunk, follow a platform job, assemble, refuse."""

from __future__ import annotations

from typing import Any

from activities.runtime import backends
from backends.factory import build_batch_scoring
from backends.settings import current
from messages.batch import BatchInput, BatchPlan, ChunkRequest, FinishRequest
from services import batch


def plan_batch(payload: dict[str, Any]) -> dict[str, Any]:
    run = BatchInput.from_dict(payload)
    return batch.plan(build_batch_scoring(current()), backends().registry, run).to_dict()


def score_chunk(payload: dict[str, Any]) -> dict[str, Any]:
    return batch.score_chunk(build_batch_scoring(current()), ChunkRequest.from_dict(payload)).to_dict()


def batch_job_status(payload: dict[str, Any]) -> dict[str, Any]:
    return build_batch_scoring(current()).job_status(BatchPlan.from_dict(payload)).to_dict()


def finish_batch(payload: dict[str, Any]) -> dict[str, Any]:
    request = FinishRequest.from_dict(payload)
    return batch.finish(backends().storage, build_batch_scoring(current()), request).to_dict()


def refuse_batch(payload: dict[str, Any]) -> dict[str, Any]:
    return {"report": batch.refuse(backends().storage, FinishRequest.from_dict(payload))}
