"""Model activities: evaluate the challenger, register it, describe a version, move its stage."""

from __future__ import annotations

from typing import Any

from activities.runtime import backends
from backends import models


def evaluate_challenger(payload: dict[str, Any]) -> dict[str, Any]:
    b = backends()
    return models.evaluate(b.jobs, b.registry, str(payload["job_id"]), str(payload["model_name"]),
                           dict(payload.get("promotion") or {}))


def register_model(payload: dict[str, Any]) -> dict[str, Any]:
    b = backends()
    return models.register(b.jobs, b.registry, payload)


def describe_model(payload: dict[str, Any]) -> dict[str, Any]:
    return models.describe(backends().registry, str(payload["model_name"]), str(payload["version"]))


def set_model_stage(payload: dict[str, Any]) -> dict[str, Any]:
    return models.move_stage(backends().registry, str(payload["model_name"]), str(payload["version"]),
                             str(payload["stage"]))
