"""One contract, three readers: the app (``backends``), the scoring server (``scoring``, self-contained) and devhost
each read a storage connection's settings as the Functions host does. The same settings give the same blob endpoint
and the same kind of credential in all three; a connection that is not configured is an error in all three."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from backends import storage_connection as app
from devhost import connections as host
from scoring import storage as scoring

N = "AzureWebJobsStorage"
Reader = Callable[[Mapping[str, str]], tuple[str, str]]


def _app(env: Mapping[str, str]) -> tuple[str, str]:
    connection = app.resolve(env, N)
    if connection.connection_string:
        return "connection string", connection.connection_string
    return connection.service_uri("blob"), type(connection.credential()).__name__


def _scoring(env: Mapping[str, str]) -> tuple[str, str]:
    target = scoring.resolve(env, N, required=True)
    assert target is not None
    if target.connection_string:
        return "connection string", target.connection_string
    return target.account_url, type(target.credential()).__name__


def _devhost(env: Mapping[str, str]) -> tuple[str, str]:
    connection = host.resolve(N, env)
    if connection.connection_string is not None:
        return "connection string", connection.connection_string
    return connection.uri("blob"), type(connection.credential()).__name__


READERS: dict[str, Reader] = {"backends": _app, "scoring": _scoring, "devhost": _devhost}
CASES: list[tuple[dict[str, str], tuple[str, str]]] = [
    ({N: "UseDevelopmentStorage=true"}, ("connection string", "UseDevelopmentStorage=true")),
    (
        {f"{N}__accountName": "acct", f"{N}__credential": "managedidentity", f"{N}__clientId": "c1"},
        ("https://acct.blob.core.windows.net", "ManagedIdentityCredential"),
    ),
    (
        {f"{N}__blobServiceUri": "https://127.0.0.1:1/devstoreaccount1/", f"{N}__accountName": "acct"},
        ("https://127.0.0.1:1/devstoreaccount1", "DefaultAzureCredential"),
    ),
    (
        {f"{N}__serviceUri": "https://127.0.0.1:2/devstoreaccount1"},
        ("https://127.0.0.1:2/devstoreaccount1", "DefaultAzureCredential"),
    ),
    (
        {f"{N}__accountName": "acct", f"{N}__tenantId": "t", f"{N}__clientId": "c", f"{N}__clientSecret": "s"},
        ("https://acct.blob.core.windows.net", "ClientSecretCredential"),
    ),
]


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize(("env", "expected"), CASES)
def test_the_same_settings_read_the_same_everywhere(
    reader: str, env: dict[str, str], expected: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)  # building a credential reads them; nothing calls a token endpoint
    assert READERS[reader](env) == expected


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("env", [{}, {f"{N}__accountName": "acct", f"{N}__credential": "cli"}])
def test_a_connection_that_is_not_configured_is_an_error_naming_it(reader: str, env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=N):
        READERS[reader](env)
