"""One ``MLClient`` per process, authenticated by ``DefaultAzureCredential`` (the app's managed identity on Azure).

No secret is read from code or settings files. Tests inject a fake credential and an azure-core ``transport=``.
"""

from __future__ import annotations

from typing import Any

from azure.ai.ml import MLClient
from azure.core.credentials import TokenCredential

from backends.settings import Settings


def default_credential(settings: Settings) -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=settings.AZURE_CLIENT_ID or None)


def ml_client(settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any) -> MLClient:
    return MLClient(credential or default_credential(settings), settings.AZURE_SUBSCRIPTION_ID,
                    settings.AZURE_RESOURCE_GROUP, settings.AZUREML_WORKSPACE, enable_telemetry=False,
                    show_progress=False, **client_kwargs)


def enum_text(value: Any) -> str:
    """SDK enums are ``str`` subclasses whose ``str()`` is ``'JobStatus.COMPLETED'``: use their ``value``."""
    return str(getattr(value, "value", value) or "")
