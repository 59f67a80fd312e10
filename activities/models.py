"""Model activities: evaluate the challenger, register it, describe a version, move its stage."""

from __future__ import annotations

from typing import Any

from activities.runtime import backends
from messages.steps import EvaluateRequest, ModelRef, RegisterRequest, StageMove
from services import models


def evaluate_challenger(payload: dict[str, Any]) -> dict[str, Any]:
    b, request = backends(), EvaluateRequest.from_dict(payload)
    return models.evaluate(b.jobs, b.registry, request.job_id, request.model_name, request.promotion.to_dict())


def register_model(payload: dict[str, Any]) -> dict[str, Any]:
    b = backends()
    return models.register(b.jobs, b.registry, RegisterRequest.from_dict(payload).to_dict())


def describe_model(payload: dict[str, Any]) -> dict[str, Any]:
    ref = ModelRef.from_dict(payload)
    return models.describe(backends().registry, ref.model_name, ref.version)


def set_model_stage(payload: dict[str, Any]) -> dict[str, Any]:
    move = StageMove.from_dict(payload)
    return models.move_stage(backends().registry, move.model_name, move.version, move.stage.value)
