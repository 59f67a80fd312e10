"""A storage connection as the Functions host reads it: a connection string, or identity-based settings.

For a connection named ``N`` (``AzureWebJobsStorage`` for the app's own storage):

1. ``N`` set → a connection string (``UseDevelopmentStorage=true`` included): shared key or SAS, as given.
2. Otherwise identity-based: ``N__blobServiceUri`` / ``N__queueServiceUri`` / ``N__tableServiceUri`` (``N__serviceUri``
   is the blob-only form), or ``N__accountName`` → ``https://<account>.<service>.core.windows.net``.
3. The token credential: ``N__credential=managedidentity`` → the managed identity (``N__clientId`` picks a
   user-assigned one); without it, ``N__tenantId`` + ``N__clientId`` + ``N__clientSecret`` → that service principal;
   otherwise ``DefaultAzureCredential`` (``N__clientId`` as its managed identity), which honours
   ``AZURE_TOKEN_CREDENTIALS`` — so a developer's ``az login`` works offline, as with Core Tools.

This is what ``infra/main.bicep`` sets on Azure (``AzureWebJobsStorage__accountName``, ``__credential``,
``__clientId``: the account refuses shared keys), and what the offline identity tests set against Azurite over HTTPS.
A connection is a frozen value (settings are cache keys); building the SDK credential happens only on first use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backends.errors import SettingsError

SERVICES = ("blob", "queue", "table")
MANAGED_IDENTITY = "managedidentity"
#: the public cloud's storage endpoint suffix (the host's default for ``__accountName``)
ENDPOINT_SUFFIX = "core.windows.net"
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"


@dataclass(frozen=True)
class StorageConnection:
    """One resolved connection: ``connection_string`` or (``service_uris`` + how to get a token)."""

    name: str
    connection_string: str = ""
    service_uris: tuple[tuple[str, str], ...] = ()
    credential_kind: str = ""  # "", "managedidentity", "clientsecret" or "default"
    client_id: str = ""
    tenant_id: str = ""
    client_secret: str = ""

    @property
    def identity_based(self) -> bool:
        return not self.connection_string

    def service_uri(self, service: str) -> str:
        """The service's endpoint for an identity-based connection; a ``SettingsError`` names what to set."""
        found = dict(self.service_uris).get(service)
        if not found:
            raise SettingsError(
                f"storage connection {self.name} has no {service} endpoint: set "
                f"{self.name}__{service}ServiceUri or {self.name}__accountName"
            )
        return found

    def describe(self) -> str:
        """A safe description for logs and ``Settings.masked()``: endpoints and the credential kind, never a secret."""
        if self.connection_string:
            return mask_connection_string(self.connection_string)
        uris = ", ".join(f"{service}={uri}" for service, uri in self.service_uris)
        who = self.credential_kind + (f" (client id {self.client_id})" if self.client_id else "")
        return f"identity-based ({who}): {uris}"

    def credential(self) -> Any:
        """The token credential of an identity-based connection (built once per connection)."""
        return _credential(self.credential_kind, self.client_id, self.tenant_id, self.client_secret)

    def as_settings(self, name: str) -> dict[str, str]:
        """This connection expressed as the settings of a connection called ``name`` (for a child process)."""
        if self.connection_string:
            return {name: self.connection_string}
        out = {f"{name}__{service}ServiceUri": uri for service, uri in self.service_uris}
        if self.credential_kind == MANAGED_IDENTITY:
            out[f"{name}__credential"] = MANAGED_IDENTITY
        for key, value in (
            ("clientId", self.client_id),
            ("tenantId", self.tenant_id),
            ("clientSecret", self.client_secret),
        ):
            if value:
                out[f"{name}__{key}"] = value
        return out


def resolve(env: Mapping[str, str], name: str, *, default: str = "") -> StorageConnection:
    """The connection ``name`` from settings ``env``; ``default`` (a connection string) when nothing is set."""

    def get(key: str) -> str:
        return (env.get(f"{name}__{key}") or "").strip()

    given = (env.get(name) or "").strip()
    if given:
        return StorageConnection(name, connection_string=given)
    uris = {service: get(f"{service}ServiceUri") for service in SERVICES}
    uris["blob"] = uris["blob"] or get("serviceUri")
    account = get("accountName")
    if account:
        for service in SERVICES:
            uris[service] = uris[service] or f"https://{account}.{service}.{ENDPOINT_SUFFIX}"
    present = tuple((service, uri.rstrip("/")) for service, uri in uris.items() if uri)
    if not present:
        if default:
            return StorageConnection(name, connection_string=default)
        raise SettingsError(
            f"storage connection {name} is not configured: set {name} to a connection string, or "
            f"{name}__accountName (or {name}__blobServiceUri …) for identity-based access"
        )
    for service, uri in present:
        if not uri.lower().startswith("https://"):
            raise SettingsError(
                f"setting {name}__{service}ServiceUri={uri!r} is malformed: identity-based access "
                "needs an https:// endpoint (tokens are never sent in the clear)"
            )
    kind = get("credential").lower()
    if kind and kind != MANAGED_IDENTITY:
        raise SettingsError(
            f"setting {name}__credential={get('credential')!r} is malformed: the only value is "
            f"{MANAGED_IDENTITY!r} (leave it unset for a developer or service-principal identity)"
        )
    client_id, tenant_id, secret = get("clientId"), get("tenantId"), get("clientSecret")
    if not kind:
        kind = "clientsecret" if client_id and tenant_id and secret else "default"
    return StorageConnection(name, "", present, kind, client_id, tenant_id, secret)


@functools.cache
def _credential(kind: str, client_id: str, tenant_id: str, secret: str) -> Any:
    from azure.identity import ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential

    if kind == MANAGED_IDENTITY:
        return ManagedIdentityCredential(client_id=client_id or None)
    if kind == "clientsecret":
        return ClientSecretCredential(tenant_id, client_id, secret)
    return DefaultAzureCredential(managed_identity_client_id=client_id or None)


def mask_connection_string(value: str) -> str:
    """Hide AccountKey / SharedAccessSignature parts of a storage connection string."""
    return re.sub(r"(?i)(AccountKey|SharedAccessSignature|SharedAccessKey)=[^;]*", r"\1=***", value)
