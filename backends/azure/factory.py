"""The Azure implementations of the three compute ports, sharing one ``MLClient`` and one credential."""

from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential

from backends.azure.client import arm_client, default_credential, ml_client
from backends.azure.endpoints import AzureEndpoints
from backends.azure.jobs import AzureJobs
from backends.azure.registry import AzureRegistry
from backends.ports import Endpoints, ModelRegistry, Storage, TrainingJobs
from backends.settings import Settings


def build_azure_backends(
    settings: Settings, storage: Storage, credential: TokenCredential | None = None, **client_kwargs: Any
) -> tuple[TrainingJobs, ModelRegistry, Endpoints]:
    """``storage`` is the app's blob storage (the same adapter as offline): Azure ML reads the drops through the
    datastore ``AZUREML_DATASTORE`` bound to it, and the endpoints' image is built from a context uploaded to it."""
    credential = credential or default_credential(settings)
    ml = ml_client(settings, credential, **client_kwargs)
    endpoints = AzureEndpoints(ml, arm_client(settings, credential, **client_kwargs), settings, storage)
    return AzureJobs(ml, settings), AzureRegistry(ml), endpoints
