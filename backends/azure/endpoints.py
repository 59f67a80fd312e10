"""Online endpoints on Azure ML: QA = managed online endpoint, production = Kubernetes online endpoint on AKS.

Slots ``blue``/``green`` are deployment names; traffic is the endpoint's ``traffic`` map. Both endpoints run the
scoring server's image (``scoring_image``): no scoring script, the model mounted at ``AZUREML_MODEL_DIR``, the
endpoint's identity (``AZUREML_ENDPOINT_IDENTITY_ID``, else system-assigned) pulling the image and writing the
prediction logs. Key auth: the endpoint's front end checks the key, the server trusts it.

Changes are ARM long-running operations (``arm``): each ``begin_*`` and ``operation_status`` call reconciles what
the operation asks with what ARM holds, makes at most the one next request, and returns. So a retried activity
finds the half-made deployment and keeps polling it (no second PUT), a deployment is created only once its
endpoint has finished provisioning, traffic moves only to deployments whose ``provisioningState`` is
``Succeeded``, and a failure carries ARM's error message.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from azure.ai.ml import MLClient
from azure.core.exceptions import ResourceNotFoundError

from backends.azure.arm import ArmAnswer, ArmClient
from backends.azure.jobs import _call
from backends.azure.scoring_image import ScoringImage, server_environment
from backends.errors import OperationRefused
from backends.ports import (
    DeploymentRequest,
    EndpointState,
    ModelVersion,
    Operation,
    OperationKind,
    OperationState,
    OperationStatus,
    Storage,
)
from backends.settings import Settings
from messages.enums import Environment, endpoint_parts

BUSY = ("Creating", "Updating", "Deleting", "Scaling")
PROBE = {"initialDelay": "PT10S", "period": "PT10S", "timeout": "PT2S", "failureThreshold": 30, "successThreshold": 1}

#: Azure ML's longest online endpoint name
ENDPOINT_NAME_MAX = 32


def model_version_of(reference: str) -> str:
    """``.../models/<name>/versions/<v>`` or ``azureml:<name>:<v>`` → ``<v>``."""
    if "/versions/" in reference:
        return reference.rstrip("/").rsplit("/", 1)[-1]
    return reference.rsplit(":", 1)[-1]


class AzureEndpoints:
    def __init__(
        self, ml: MLClient, arm: ArmClient, settings: Settings, storage: Storage, image: ScoringImage | None = None
    ) -> None:
        self.ml, self.arm, self.settings, self.storage = ml, arm, settings, storage
        self.names = {"qa": settings.AZUREML_QA_ENDPOINT, "production": settings.AZUREML_PROD_ENDPOINT}
        self.workspace = (
            f"/subscriptions/{settings.AZURE_SUBSCRIPTION_ID}/resourceGroups/"
            f"{settings.AZURE_RESOURCE_GROUP}/providers/Microsoft.MachineLearningServices/workspaces/"
            f"{settings.AZUREML_WORKSPACE}"
        )
        self.image = image or ScoringImage(ml, storage, settings, self.workspace)
        self._location: str | None = None
        self._lock = threading.Lock()

    # --- reads ----------------------------------------------------------------------------------

    def state(self, endpoint: str) -> EndpointState:
        name = self._name(endpoint)
        try:
            current = self.ml.online_endpoints.get(name)
        except ResourceNotFoundError:
            return EndpointState(endpoint, "", "")
        deployments = {
            str(d.name): model_version_of(str(d.model))
            for d in _call(lambda: list(self.ml.online_deployments.list(name)), f"deployments of {name}")
        }
        # a key endpoint (ours) answers EndpointAuthKeys; an AML-token one (made by hand) a token to send instead
        key = _call(lambda: self.ml.online_endpoints.get_keys(name), f"keys of {name}")
        secret = getattr(key, "primary_key", None) or getattr(key, "access_token", None) or ""
        return EndpointState(
            endpoint,
            str(current.scoring_uri or ""),
            str(secret),
            deployments,
            {str(k): int(v) for k, v in (current.traffic or {}).items()},
        )

    def supervise(self) -> list[str]:
        """Nothing to do: Azure ML runs and heals its online endpoints itself."""
        return []

    # --- long operations ------------------------------------------------------------------------

    def begin_deploy(self, request: DeploymentRequest, model: ModelVersion) -> OperationStatus:
        self._name(request.endpoint)
        operation = Operation(
            OperationKind.DEPLOY, request.endpoint, request.slot, str(model.version), model_name=model.name
        )
        return self._deploy(operation)

    def begin_traffic(self, endpoint: str, traffic: dict[str, int]) -> OperationStatus:
        self._name(endpoint)
        for slot, pct in traffic.items():
            if not isinstance(pct, int) or isinstance(pct, bool) or not 0 <= pct <= 100:
                raise OperationRefused(f"traffic for slot {slot!r} must be an integer 0-100, got {pct!r}")
        if sum(traffic.values()) not in (0, 100):
            raise OperationRefused(f"traffic must add up to 100 (or 0), got {sum(traffic.values())}")
        return self._traffic(Operation(OperationKind.TRAFFIC, endpoint, traffic=dict(traffic)), may_start=True)

    def begin_remove(self, endpoint: str, slot: str) -> OperationStatus:
        self._name(endpoint)
        return self._remove(Operation(OperationKind.REMOVE, endpoint, slot))

    def operation_status(self, operation: Operation) -> OperationStatus:
        self._name(operation.endpoint)
        polled = self.arm.async_status(operation.status_url) if operation.status_url else None
        if polled is not None and not polled.finished:
            return _status(operation, OperationState.RUNNING)
        if polled is not None and polled.status != "Succeeded":
            return _status(
                operation,
                OperationState.FAILED,
                f"{self._describe(operation)}: {polled.message or 'operation ' + polled.status}",
            )
        if operation.kind is OperationKind.DEPLOY:
            return self._deploy(operation)
        if operation.kind is OperationKind.TRAFFIC:
            return self._traffic(operation, may_start=False)
        return self._remove(operation)

    # --- reconciliation: compare what is asked with what ARM holds; make at most one request -------

    def _deploy(self, operation: Operation) -> OperationStatus:
        endpoint = self._endpoint(operation.endpoint)
        if endpoint is None:
            created = self.arm.put(self._endpoint_path(operation.endpoint), self._endpoint_body(operation.endpoint, {}))
            return self._after_write(operation, created)
        if endpoint.provisioning_state != "Succeeded":
            return self._not_ready(operation, endpoint, f"endpoint {self._name(operation.endpoint)}")
        path = self._deployment_path(operation.endpoint, operation.slot)
        deployment = self.arm.get(path, missing_ok=True)
        model_id = f"{self.workspace}/models/{operation.model_name}/versions/{operation.version}"
        if deployment is None or str(deployment.properties.get("model") or "").lower() != model_id.lower():
            body = self._deployment_body(operation.endpoint, operation.version, model_id)
            return self._after_write(operation, self.arm.put(path, body))
        if deployment.provisioning_state == "Succeeded":
            return _status(operation, OperationState.SUCCEEDED)
        return self._not_ready(operation, deployment, self._describe(operation))

    def _traffic(self, operation: Operation, *, may_start: bool) -> OperationStatus:
        name = self._name(operation.endpoint)
        endpoint = self._endpoint(operation.endpoint)
        if endpoint is None:
            raise OperationRefused(f"endpoint {name} does not exist: deploy to it first")
        if endpoint.provisioning_state in BUSY:
            return self._not_ready(operation, endpoint, f"endpoint {name}")
        current = _traffic(endpoint)
        wanted = {slot: pct for slot, pct in operation.traffic.items() if pct > 0}
        if current == wanted and endpoint.provisioning_state == "Succeeded":
            return _status(operation, OperationState.SUCCEEDED)
        if not may_start:
            return _status(operation, OperationState.FAILED, f"endpoint {name} holds traffic {current}, not {wanted}")
        for slot in wanted:
            deployment = self.arm.get(self._deployment_path(operation.endpoint, slot), missing_ok=True)
            state = deployment.provisioning_state if deployment else "missing"
            if state != "Succeeded":
                raise OperationRefused(
                    f"endpoint {name}: traffic cannot move to deployment {slot}, whose "
                    f"provisioning state is {state} (not Succeeded)"
                )
        body = self._endpoint_body(operation.endpoint, wanted)
        return self._after_write(operation, self.arm.put(self._endpoint_path(operation.endpoint), body))

    def _remove(self, operation: Operation) -> OperationStatus:
        name = self._name(operation.endpoint)
        path = self._deployment_path(operation.endpoint, operation.slot)
        deployment = self.arm.get(path, missing_ok=True)
        if deployment is None:
            return _status(operation, OperationState.SUCCEEDED)
        if deployment.provisioning_state == "Deleting":
            return self._not_ready(operation, deployment, f"deployment {operation.slot} of {name}")
        endpoint = self._endpoint(operation.endpoint)
        current = _traffic(endpoint) if endpoint else {}
        if current.get(operation.slot, 0) > 0:
            listed = self.arm.get(f"{self._endpoint_path(operation.endpoint)}/deployments")
            names = {str(d.get("name")) for d in (listed.body or {}).get("value", [])} if listed else set()
            if names - {operation.slot}:
                raise OperationRefused(
                    f"endpoint {name}: deployment {operation.slot} takes "
                    f"{current[operation.slot]}% of the traffic; move it first"
                )
            if endpoint is not None and endpoint.provisioning_state in BUSY:
                return self._not_ready(operation, endpoint, f"endpoint {name}")
            emptied = self.arm.put(self._endpoint_path(operation.endpoint), self._endpoint_body(operation.endpoint, {}))
            return self._after_write(operation, emptied)
        answer = self.arm.delete(path)
        return _status(operation, OperationState.SUCCEEDED) if answer is None else self._after_write(operation, answer)

    def _after_write(self, operation: Operation, answer: ArmAnswer) -> OperationStatus:
        """A write was accepted: poll its async operation next (ARM may also finish it at once)."""
        url = answer.async_operation
        if not url and answer.provisioning_state in ("", "Succeeded"):
            return self.operation_status(_with_url(operation, ""))
        return _status(_with_url(operation, url), OperationState.RUNNING)

    def _not_ready(self, operation: Operation, resource: ArmAnswer, what: str) -> OperationStatus:
        state = resource.provisioning_state
        url = operation.status_url or str(resource.properties.get("properties", {}).get("AzureAsyncOperationUri") or "")
        if state in BUSY:
            return _status(_with_url(operation, url if self.arm.owns(url) else ""), OperationState.RUNNING)
        polled = self.arm.async_status(url) if url else None
        reason = polled.message if polled is not None and polled.message else f"provisioning state {state}"
        return _status(operation, OperationState.FAILED, f"{what}: {reason}")

    # --- resources ------------------------------------------------------------------------------

    def _describe(self, operation: Operation) -> str:
        name = self._name(operation.endpoint)
        if operation.kind is OperationKind.DEPLOY:
            return f"deployment {operation.slot} of {name}"
        if operation.kind is OperationKind.TRAFFIC:
            return f"traffic change of {name}"
        return f"removal of deployment {operation.slot} of {name}"

    def _name(self, endpoint: str) -> str:
        """The online endpoint's name in Azure: the settings' for ``qa`` and ``production``; for a model's own
        (``<model>-qa``) the environment's name with the model's, within Azure's 32 characters (a name too long
        keeps a hash of the model's instead)."""
        prefix, environment = endpoint_parts(endpoint)
        base = self.names[environment.value]
        if not prefix:
            return base
        model = prefix[:-1]
        name = f"{base}-{model}"
        if len(name) > ENDPOINT_NAME_MAX:
            digest = hashlib.sha256(model.encode()).hexdigest()[:8]
            name = f"{base[: ENDPOINT_NAME_MAX - 9]}-{digest}"
        return name

    def _environment(self, endpoint: str) -> Environment:
        return endpoint_parts(endpoint)[1]

    def _endpoint_path(self, endpoint: str) -> str:
        return f"{self.workspace}/onlineEndpoints/{self._name(endpoint)}"

    def _deployment_path(self, endpoint: str, slot: str) -> str:
        return f"{self._endpoint_path(endpoint)}/deployments/{slot}"

    def _endpoint(self, endpoint: str) -> ArmAnswer | None:
        return self.arm.get(self._endpoint_path(endpoint), missing_ok=True)

    def _location_of_workspace(self) -> str:
        with self._lock:
            if self._location is None:
                workspace = _call(lambda: self.ml.workspaces.get(self.settings.AZUREML_WORKSPACE), "workspace")
                self._location = str(workspace.location)
            return self._location

    def _identity(self) -> dict[str, Any]:
        if self.settings.AZUREML_ENDPOINT_IDENTITY_ID:
            return {"type": "UserAssigned", "userAssignedIdentities": {self.settings.AZUREML_ENDPOINT_IDENTITY_ID: {}}}
        return {"type": "SystemAssigned"}

    def _endpoint_body(self, endpoint: str, traffic: dict[str, int]) -> dict[str, Any]:
        properties: dict[str, Any] = {"authMode": "Key", "traffic": dict(traffic)}
        if self._environment(endpoint) is Environment.PRODUCTION:
            properties["compute"] = f"{self.workspace}/computes/{self.settings.AZUREML_AKS_COMPUTE}"
        return {
            "location": self._location_of_workspace(),
            "identity": self._identity(),
            "properties": properties,
            "tags": {"managed-by": "mlops-functions"},
        }

    def _deployment_body(self, endpoint: str, version: str, model_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "endpointComputeType": "Managed" if self._environment(endpoint) is Environment.QA else "Kubernetes",
            "model": model_id,
            "environmentId": self.image.environment_id(),
            "environmentVariables": server_environment(self.settings, self.storage, endpoint, version),
            "scaleSettings": {"scaleType": "Default"},
            "livenessProbe": PROBE,
            "readinessProbe": PROBE,
        }
        if self._environment(endpoint) is Environment.QA:
            properties["instanceType"] = self.settings.AZUREML_INSTANCE_TYPE
        return {
            "location": self._location_of_workspace(),
            "properties": properties,
            "sku": {"name": "Default", "capacity": 1},
        }


def _traffic(endpoint: ArmAnswer) -> dict[str, int]:
    raw = endpoint.properties.get("traffic") or {}
    return {str(slot): int(pct) for slot, pct in dict(raw).items() if int(pct) > 0}


def _with_url(operation: Operation, url: str) -> Operation:
    return Operation(
        operation.kind,
        operation.endpoint,
        operation.slot,
        operation.version,
        dict(operation.traffic),
        url,
        operation.model_name,
    )


def _status(operation: Operation, state: OperationState, message: str = "") -> OperationStatus:
    return OperationStatus(operation, state, message[:2000])
