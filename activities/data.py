"""Data drop activities: validate, quarantine, accept, snapshot the accumulated dataset."""

from __future__ import annotations

from typing import Any

from activities.runtime import backends
from messages.steps import DatasetRequest, DropRequest
from services import drops
from services.datasets import Datasets


def validate_drop(payload: dict[str, Any]) -> dict[str, Any]:
    b, request = backends(), DropRequest.from_dict(payload)
    return drops.check_drop(b.storage, b.registry, request.config.to_dict(), request.data)


def quarantine_drop(payload: dict[str, Any]) -> dict[str, Any]:
    request = DropRequest.from_dict(payload)
    return drops.quarantine_drop(backends().storage, request.config.to_dict(), request.data, request.report)


def accept_drop(payload: dict[str, Any]) -> dict[str, Any]:
    request = DropRequest.from_dict(payload)
    return drops.accept_drop(backends().storage, request.config.to_dict(), request.data, request.etag).to_dict()


def snapshot_dataset(payload: dict[str, Any]) -> dict[str, Any]:
    """The latest dataset version and the one the champion was trained on (the timer skips when equal)."""
    b, cfg = backends(), DatasetRequest.from_dict(payload).config
    datasets = Datasets(b.storage, cfg.datasets, cfg.dataset_prefix)
    latest = datasets.latest()
    if latest is not None:
        latest = datasets.snapshot(latest)
    champion = b.registry.champion(cfg.model_name)
    found = latest.to_dict() if latest else {"version": None, "drops": [], "paths": [], "rows": 0}
    return {**found, "champion_dataset_version": champion.tags.get("dataset_version") if champion else None}
