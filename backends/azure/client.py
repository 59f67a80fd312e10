"""One ``MLClient`` (and one ``ArmClient`` beside it) per process, authenticated by ``DefaultAzureCredential``.

On Azure the credential is the app's managed identity (``AZURE_CLIENT_ID`` names a user-assigned one); no secret is
read from code or settings files. Both clients talk to ``AZUREML_ARM_ENDPOINT``: the public cloud by default, a
sovereign cloud by its SDK name, any other Resource Manager endpoint (Azure Stack, a test's fake) as a custom cloud.
Tests inject a credential and an azure-core ``transport=``, or set ``AZURE_TOKEN_CREDENTIALS=AzureCliCredential``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from azure.ai.ml import MLClient
from azure.core.credentials import TokenCredential

from backends.azure.arm import ArmClient
from backends.settings import Settings

#: the clouds azure-ai-ml knows by name, by their Resource Manager endpoint
KNOWN_CLOUDS = {
    "https://management.azure.com": "AzureCloud",
    "https://management.chinacloudapi.cn": "AzureChinaCloud",
    "https://management.usgovcloudapi.net": "AzureUSGovernment",
}


def default_credential(settings: Settings) -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=settings.AZURE_CLIENT_ID or None)


def cloud_kwargs(arm_endpoint: str) -> dict[str, Any]:
    """``MLClient`` keywords selecting the cloud whose Resource Manager is ``arm_endpoint``."""
    base = arm_endpoint.rstrip("/")
    if base in KNOWN_CLOUDS:
        return {"cloud": KNOWN_CLOUDS[base]}
    return {
        "cloud": f"mlops-{urlparse(base).netloc}",
        "cloud_metadata": {
            "azure_portal": "https://portal.azure.com/",
            "resource_manager": base + "/",
            "active_directory": "https://login.microsoftonline.com/",
            "aml_resource_id": "https://ml.azure.com/",
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": base + "/",
        },
    }


def ml_client(settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any) -> MLClient:
    return MLClient(
        credential or default_credential(settings),
        settings.AZURE_SUBSCRIPTION_ID,
        settings.AZURE_RESOURCE_GROUP,
        settings.AZUREML_WORKSPACE,
        enable_telemetry=False,
        show_progress=False,
        **cloud_kwargs(settings.AZUREML_ARM_ENDPOINT),
        **client_kwargs,
    )


def arm_client(settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any) -> ArmClient:
    """The ARM client for long operations, sharing the ``MLClient``'s transport and retry settings."""
    retry = client_kwargs.get("retry_total")
    return ArmClient(
        settings.AZUREML_ARM_ENDPOINT,
        credential or default_credential(settings),
        transport=client_kwargs.get("transport"),
        retry_total=3 if retry is None else int(retry),
    )


def enum_text(value: Any) -> str:
    """SDK enums are ``str`` subclasses whose ``str()`` is ``'JobStatus.COMPLETED'``: use their ``value``."""
    return str(getattr(value, "value", value) or "")
