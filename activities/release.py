"""Release activities: the model's release slot, blue/green deployment steps and the API tests."""

from __future__ import annotations

from typing import Any

from activities.runtime import backends
from backends.settings import current
from messages.steps import ApiTestRequest, DeployRequest, OperationPoll, ReleaseClaim, RemoveRequest, TrafficRequest
from services import api_tests, deployments
from services.release_lock import ReleaseLock


def _lock(claim: ReleaseClaim) -> ReleaseLock:
    return ReleaseLock(backends().storage, current().DATASETS_CONTAINER, claim.model_name)


def claim_release(payload: dict[str, Any]) -> dict[str, Any]:
    claim = ReleaseClaim.from_dict(payload)
    return _lock(claim).claim(claim.version, claim.owner).to_dict()


def free_release(payload: dict[str, Any]) -> dict[str, Any]:
    claim = ReleaseClaim.from_dict(payload)
    return {"freed": _lock(claim).free(claim.owner)}


def deploy_model(payload: dict[str, Any]) -> dict[str, Any]:
    """Begin the deployment (returns at once); ``endpoint_operation_status`` follows it."""
    b, request = backends(), DeployRequest.from_dict(payload)
    return deployments.begin_deploy(b.endpoints, b.registry, request.endpoint, request.model_name, request.version)


def set_traffic(payload: dict[str, Any]) -> dict[str, Any]:
    request = TrafficRequest.from_dict(payload)
    return deployments.begin_traffic(backends().endpoints, request.endpoint, request.traffic)


def remove_deployment(payload: dict[str, Any]) -> dict[str, Any]:
    request = RemoveRequest.from_dict(payload)
    return deployments.begin_remove(backends().endpoints, request.endpoint, request.slot)


def endpoint_operation_status(payload: dict[str, Any]) -> dict[str, Any]:
    return deployments.operation_status(backends().endpoints, OperationPoll.from_dict(payload).operation.to_dict())


def api_test(payload: dict[str, Any]) -> dict[str, Any]:
    return api_tests.test_release(backends().endpoints, ApiTestRequest.from_dict(payload))
