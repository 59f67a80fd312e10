"""Notification and approval-record activities of the release."""

from __future__ import annotations

from typing import Any

from activities.runtime import backends
from backends.settings import current
from messages.steps import Notice, TagRequest
from services import notifications


def notify(payload: dict[str, Any]) -> dict[str, Any]:
    """Send one notice to one webhook (the orchestration retries a retryable failure with back-off)."""
    return notifications.send(current(), Notice.from_dict(payload))


def tag_model(payload: dict[str, Any]) -> dict[str, Any]:
    """Merge tags into a model version's (the approval's decision, person and comment)."""
    request = TagRequest.from_dict(payload)
    version = backends().registry.set_tags(request.model_name, request.version, request.tags)
    return {"version": version.version, "tags": {k: version.tags[k] for k in request.tags if k in version.tags}}
