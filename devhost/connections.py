"""Storage connections as the Functions host reads them, for every storage client devhost makes.

For a connection name ``N`` (a binding's ``connection``; default ``AzureWebJobsStorage``):
1. setting ``N`` non-empty: a connection string (``UseDevelopmentStorage=true`` included);
2. otherwise identity-based: ``N__blobServiceUri`` / ``N__queueServiceUri`` / ``N__tableServiceUri`` (and
   ``N__serviceUri``, the blob-only form), or ``N__accountName`` → ``https://<account>.<service>.core.windows.net``;
   a service that is needed but has no URI is an error naming the setting to add;
3. the credential of an identity-based connection: ``N__credential=managedidentity`` → ``ManagedIdentityCredential``
   (client id ``N__clientId``); unset with ``N__tenantId`` + ``N__clientId`` + ``N__clientSecret`` →
   ``ClientSecretCredential``; otherwise ``DefaultAzureCredential(managed_identity_client_id=N__clientId)``, which
   honours ``AZURE_TOKEN_CREDENTIALS``;
4. neither: an error naming ``N`` and the accepted forms.
HTTPS trust comes from the environment (``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE``), as azure-core's transport reads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devhost.errors import ConfigError

DEFAULT_CONNECTION = "AzureWebJobsStorage"
SERVICES = ("blob", "queue", "table")
#: Azurite's well-known development account (what ``UseDevelopmentStorage=true`` stands for)
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEV_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}


def development_connection_string() -> str:
    endpoints = ";".join(f"{s.capitalize()}Endpoint=http://127.0.0.1:{p}/{DEV_ACCOUNT}" for s, p in DEV_PORTS.items())
    return f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};{endpoints};"


@dataclass(frozen=True)
class StorageConnection:
    """One resolved connection: a connection string, or service URIs plus the settings of its credential."""

    name: str
    connection_string: str | None = None
    uris: tuple[tuple[str, str], ...] = ()
    credential_settings: tuple[tuple[str, str], ...] = ()

    @property
    def identity_based(self) -> bool:
        return self.connection_string is None

    def uri(self, service: str) -> str:
        found = dict(self.uris).get(service)
        if found is None:
            raise ConfigError(
                f"connection '{self.name}' is identity-based but has no {service} service URI: add "
                f"the setting {self.name}__{service}ServiceUri (or {self.name}__accountName)"
            )
        return found

    def credential(self) -> Any:
        return make_credential(self.name, dict(self.credential_settings))

    def blob_service(self, **kwargs: Any) -> Any:
        from azure.storage.blob import BlobServiceClient

        if self.connection_string is not None:
            return BlobServiceClient.from_connection_string(_expand(self.connection_string), **kwargs)
        return BlobServiceClient(self.uri("blob"), credential=self.credential(), **kwargs)

    def queue_service(self, **kwargs: Any) -> Any:
        from azure.storage.queue import QueueServiceClient

        if self.connection_string is not None:
            return QueueServiceClient.from_connection_string(_expand(self.connection_string), **kwargs)
        return QueueServiceClient(self.uri("queue"), credential=self.credential(), **kwargs)

    def table_service(self, **kwargs: Any) -> Any:
        from azure.data.tables import TableServiceClient

        if self.connection_string is not None:
            return TableServiceClient.from_connection_string(_expand(self.connection_string), **kwargs)
        return TableServiceClient(self.uri("table"), credential=self.credential(), **kwargs)

    def endpoint_hint(self) -> str:
        """Where this connection points (no secret): for messages and the emulator check."""
        if self.connection_string is not None:
            return _expand(self.connection_string).split("AccountKey=")[0]
        return ", ".join(f"{s}={u}" for s, u in self.uris)


def _expand(connection_string: str) -> str:
    if connection_string.replace(" ", "").lower().rstrip(";") == "usedevelopmentstorage=true":
        return development_connection_string()
    return connection_string


def resolve(name: str | None, env: Mapping[str, str] | None = None) -> StorageConnection:
    """The connection called ``name`` (default ``AzureWebJobsStorage``) from the app settings ``env``."""
    env = os.environ if env is None else env
    name = name or DEFAULT_CONNECTION
    value = env.get(name, "").strip()
    if value:
        return StorageConnection(name, connection_string=value)
    uris: dict[str, str] = {}
    for service in SERVICES:
        uri = env.get(f"{name}__{service}ServiceUri", "").strip()
        if uri:
            uris[service] = uri.rstrip("/")
    if "blob" not in uris and env.get(f"{name}__serviceUri", "").strip():
        uris["blob"] = env[f"{name}__serviceUri"].strip().rstrip("/")
    account = env.get(f"{name}__accountName", "").strip()
    if account:
        for service in SERVICES:
            uris.setdefault(service, f"https://{account}.{service}.core.windows.net")
    if not uris:
        raise ConfigError(
            f"storage connection '{name}' is not configured: set {name} to a connection string, or "
            f"{name}__accountName, or {name}__blobServiceUri / {name}__queueServiceUri / "
            f"{name}__tableServiceUri (identity-based)"
        )
    creds = {
        k: env[f"{name}__{k}"].strip()
        for k in ("credential", "clientId", "tenantId", "clientSecret")
        if env.get(f"{name}__{k}", "").strip()
    }
    kind = creds.get("credential")
    if kind is not None and kind.lower() != "managedidentity":
        raise ConfigError(
            f"{name}__credential is '{kind}': the only accepted value is 'managedidentity' (or leave it unset)"
        )
    return StorageConnection(name, None, tuple(sorted(uris.items())), tuple(sorted(creds.items())))


def make_credential(name: str, settings: Mapping[str, str]) -> Any:
    from azure.identity import ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential

    client_id = settings.get("clientId")
    if settings.get("credential", "").lower() == "managedidentity":
        return ManagedIdentityCredential(client_id=client_id)
    if client_id and settings.get("tenantId") and settings.get("clientSecret"):
        return ClientSecretCredential(settings["tenantId"], client_id, settings["clientSecret"])
    return DefaultAzureCredential(managed_identity_client_id=client_id)


def binding_connection(binding: Mapping[str, Any], env: Mapping[str, str] | None = None) -> StorageConnection:
    return resolve(str(binding.get("connection") or DEFAULT_CONNECTION), env)
