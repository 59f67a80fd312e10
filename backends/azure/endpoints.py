"""Online endpoints on Azure ML: QA = managed online endpoint, production = Kubernetes online endpoint on AKS.

Slots ``blue``/``green`` are deployment names; traffic is the endpoint's ``traffic`` map; a rollback restores the
previous map. MLflow models deploy without a scoring script on managed endpoints; the Kubernetes deployment runs
``scoring/score.py`` in the given environment.
"""

from __future__ import annotations

import contextlib
from typing import Any

from azure.ai.ml import MLClient
from azure.ai.ml.entities import (
    CodeConfiguration,
    KubernetesOnlineDeployment,
    KubernetesOnlineEndpoint,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
)
from azure.core.exceptions import ResourceNotFoundError

from backends.azure.jobs import PROJECT_ROOT, _call
from backends.ports import EndpointState, ModelVersion
from backends.settings import Settings


def model_version_of(reference: str) -> str:
    """``.../models/<name>/versions/<v>`` or ``azureml:<name>:<v>`` → ``<v>``."""
    if "/versions/" in reference:
        return reference.rstrip("/").rsplit("/", 1)[-1]
    return reference.rsplit(":", 1)[-1]


class AzureEndpoints:
    def __init__(self, ml: MLClient, settings: Settings, scoring_code: str | None = None) -> None:
        self.ml, self.settings = ml, settings
        self.names = {"qa": settings.AZUREML_QA_ENDPOINT, "production": settings.AZUREML_PROD_ENDPOINT}
        self.scoring_code = scoring_code or str(PROJECT_ROOT / "scoring")

    def _name(self, endpoint: str) -> str:
        if endpoint not in self.names:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(self.names)}")
        return self.names[endpoint]

    def _ensure(self, endpoint: str) -> Any:
        name = self._name(endpoint)
        try:
            return self.ml.online_endpoints.get(name)
        except ResourceNotFoundError:
            created: Any = ManagedOnlineEndpoint(name=name, auth_mode="key") if endpoint == "qa" else \
                KubernetesOnlineEndpoint(name=name, compute=self.settings.AZUREML_AKS_COMPUTE, auth_mode="key")
            return _call(lambda: self.ml.online_endpoints.begin_create_or_update(created).result(),
                         f"create endpoint {name}")

    def deploy(self, endpoint: str, slot: str, model: ModelVersion) -> EndpointState:
        name = self._ensure(endpoint).name
        reference = f"azureml:{model.name}:{model.version}"
        deployment: Any = ManagedOnlineDeployment(
            name=slot, endpoint_name=name, model=reference, instance_type=self.settings.AZUREML_INSTANCE_TYPE,
            instance_count=1) if endpoint == "qa" else KubernetesOnlineDeployment(
            name=slot, endpoint_name=name, model=reference, instance_count=1,
            environment=f"azureml:{self.settings.AZUREML_ENVIRONMENT}",
            code_configuration=CodeConfiguration(code=self.scoring_code, scoring_script="score.py"))
        _call(lambda: self.ml.online_deployments.begin_create_or_update(deployment).result(),
              f"deploy {reference} to {name}/{slot}")
        return self.state(endpoint)

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> EndpointState:
        current = self._ensure(endpoint)
        current.traffic = {slot: int(pct) for slot, pct in traffic.items()}
        _call(lambda: self.ml.online_endpoints.begin_create_or_update(current).result(),
              f"set traffic of {current.name}")
        return self.state(endpoint)

    def remove(self, endpoint: str, slot: str) -> EndpointState:
        name = self._name(endpoint)
        with contextlib.suppress(ResourceNotFoundError):
            self.ml.online_deployments.begin_delete(name=slot, endpoint_name=name).result()
        return self.state(endpoint)

    def supervise(self) -> list[str]:
        """Nothing to do: Azure ML runs and heals its online endpoints itself."""
        return []

    def state(self, endpoint: str) -> EndpointState:
        current = self._ensure(endpoint)
        deployments = {str(d.name): model_version_of(str(d.model))
                       for d in _call(lambda: list(self.ml.online_deployments.list(current.name)), "deployments")}
        key = _call(lambda: self.ml.online_endpoints.get_keys(current.name), f"keys of {current.name}")
        return EndpointState(endpoint, str(current.scoring_uri or ""), str(getattr(key, "primary_key", "") or ""),
                             deployments, {str(k): int(v) for k, v in (current.traffic or {}).items()})
