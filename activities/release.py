"""Release activities: the model's release slot, blue/green deployment steps and the API tests."""

from __future__ import annotations

from typing import Any

from activities.runtime import backends
from backends import deployments, endpoint_tests
from backends.release_lock import ReleaseLock
from backends.settings import current


def _lock(payload: dict[str, Any]) -> ReleaseLock:
    return ReleaseLock(backends().storage, current().DATASETS_CONTAINER, str(payload["model_name"]))


def claim_release(payload: dict[str, Any]) -> dict[str, Any]:
    return _lock(payload).claim(str(payload["version"]), str(payload["owner"])).to_dict()


def free_release(payload: dict[str, Any]) -> dict[str, Any]:
    return {"freed": _lock(payload).free(str(payload["owner"]))}


def deploy_model(payload: dict[str, Any]) -> dict[str, Any]:
    """Begin the deployment (returns at once); ``endpoint_operation_status`` follows it."""
    b = backends()
    return deployments.begin_deploy(b.endpoints, b.registry, str(payload["endpoint"]), str(payload["model_name"]),
                                    str(payload["version"]))


def set_traffic(payload: dict[str, Any]) -> dict[str, Any]:
    return deployments.begin_traffic(backends().endpoints, str(payload["endpoint"]), dict(payload["traffic"]))


def remove_deployment(payload: dict[str, Any]) -> dict[str, Any]:
    return deployments.begin_remove(backends().endpoints, str(payload["endpoint"]), str(payload["slot"]))


def endpoint_operation_status(payload: dict[str, Any]) -> dict[str, Any]:
    return deployments.operation_status(backends().endpoints, dict(payload["operation"]))


def api_test(payload: dict[str, Any]) -> dict[str, Any]:
    state = backends().endpoints.state(str(payload["endpoint"]))
    return endpoint_tests.run(state, str(payload["version"]), dict(payload.get("thresholds") or {}))
