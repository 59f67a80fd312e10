"""The blob account the prediction log writes to, named by a connection as the Functions host reads one.

For a connection ``N`` (``--logs-connection``, default ``AzureWebJobsStorage``):

1. ``N`` set → a connection string (``UseDevelopmentStorage=true`` included).
2. Else identity-based: ``N__blobServiceUri`` (or ``N__serviceUri``), or ``N__accountName`` →
   ``https://<account>.blob.core.windows.net``. Tokens travel over HTTPS only.
3. The credential: ``N__credential=managedidentity`` → the managed identity (``N__clientId`` picks a user-assigned
   one: on Azure ML, the endpoint's identity); unset with ``N__tenantId`` + ``N__clientId`` + ``N__clientSecret`` → that
   service principal; otherwise ``DefaultAzureCredential`` (``N__clientId`` as its managed identity), which honours
   ``AZURE_TOKEN_CREDENTIALS``.
4. Nothing set → ``None`` (no prediction log), or an error naming ``N`` when the connection must exist.

HTTPS trust comes from the environment (``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE``), as azure-core reads it.
The SDK is imported only when a client is made (seconds of start-up the request path does not need).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MANAGED_IDENTITY = "managedidentity"
ENDPOINT_SUFFIX = "core.windows.net"
#: Azurite 3.35+ accepts up to this version; Azure Storage accepts it too.
API_VERSION = "2025-11-05"


class StorageSettingsError(ValueError):
    """A connection's settings are missing or malformed; the message names the setting."""


@dataclass(frozen=True)
class BlobTarget:
    """A blob service: by connection string, or by URL and a token credential."""

    connection: str
    connection_string: str = field(default="", repr=False)
    account_url: str = ""
    credential_kind: str = ""  # "managedidentity", "clientsecret" or "default"
    client_id: str = ""
    tenant_id: str = ""
    client_secret: str = field(default="", repr=False)

    def describe(self) -> str:
        """For logs: where and how, never a key or a secret."""
        if self.connection_string:
            return f"connection {self.connection} (a connection string)"
        who = self.credential_kind + (f", client id {self.client_id}" if self.client_id else "")
        return f"connection {self.connection}: {self.account_url} by identity ({who})"

    def client(self, **options: Any) -> Any:
        """A ``BlobServiceClient`` for this target (``options``: retry and timeout settings)."""
        from azure.storage.blob import BlobServiceClient

        if self.connection_string:
            return BlobServiceClient.from_connection_string(self.connection_string, api_version=API_VERSION, **options)
        return BlobServiceClient(self.account_url, credential=self.credential(), api_version=API_VERSION, **options)

    def credential(self) -> Any:
        from azure.identity import ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential

        if self.credential_kind == MANAGED_IDENTITY:
            return ManagedIdentityCredential(client_id=self.client_id or None)
        if self.credential_kind == "clientsecret":
            return ClientSecretCredential(self.tenant_id, self.client_id, self.client_secret)
        return DefaultAzureCredential(managed_identity_client_id=self.client_id or None)


def resolve(env: Mapping[str, str], name: str, *, required: bool = False) -> BlobTarget | None:
    """The blob service of connection ``name`` in ``env``; ``None`` when nothing is set and it is not ``required``."""
    if not name:
        raise StorageSettingsError("the storage connection name is empty")

    def get(key: str) -> str:
        return (env.get(f"{name}__{key}") or "").strip()

    given = (env.get(name) or "").strip()
    if given:
        return BlobTarget(name, connection_string=given)
    url = get("blobServiceUri") or get("serviceUri")
    account = get("accountName")
    if not url and account:
        url = f"https://{account}.blob.{ENDPOINT_SUFFIX}"
    if not url:
        if required:
            raise StorageSettingsError(
                f"storage connection {name} is not configured: set {name} to a connection string, or "
                f"{name}__blobServiceUri (or {name}__accountName) for identity-based access"
            )
        return None
    if not url.lower().startswith("https://"):
        raise StorageSettingsError(
            f"setting {name}__blobServiceUri={url!r} is malformed: identity-based access "
            "needs an https:// endpoint (tokens are never sent in the clear)"
        )
    kind = get("credential").lower()
    if kind and kind != MANAGED_IDENTITY:
        raise StorageSettingsError(
            f"setting {name}__credential={get('credential')!r} is malformed: the only value "
            f"is {MANAGED_IDENTITY!r} (leave it unset for a developer or service principal)"
        )
    client_id, tenant_id, secret = get("clientId"), get("tenantId"), get("clientSecret")
    if not kind:
        kind = "clientsecret" if client_id and tenant_id and secret else "default"
    return BlobTarget(name, "", url.rstrip("/"), kind, client_id, tenant_id, secret)
