"""The Azure implementations of the three compute ports, sharing one ``MLClient``."""

from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential

from backends.azure.client import ml_client
from backends.azure.endpoints import AzureEndpoints
from backends.azure.jobs import AzureJobs
from backends.azure.registry import AzureRegistry
from backends.ports import Endpoints, ModelRegistry, Storage, TrainingJobs
from backends.settings import Settings


def build_azure_backends(settings: Settings, storage: Storage, credential: TokenCredential | None = None,
                         **client_kwargs: Any) -> tuple[TrainingJobs, ModelRegistry, Endpoints]:
    """``storage`` is the app's blob storage (the same adapter as offline); Azure ML reads the drops through the
    datastore ``AZUREML_DATASTORE`` that points at that account."""
    ml = ml_client(settings, credential, **client_kwargs)
    return AzureJobs(ml, settings), AzureRegistry(ml), AzureEndpoints(ml, settings)
