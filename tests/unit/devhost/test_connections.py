"""Storage connections resolved by the Functions host's rules (no credential is asked for a token here)."""

from __future__ import annotations

import pytest
from azure.identity import ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential

from devhost.connections import resolve
from devhost.errors import ConfigError


def test_a_connection_string_wins() -> None:
    conn = resolve("N", {"N": "UseDevelopmentStorage=true", "N__accountName": "acct"})
    assert conn.connection_string == "UseDevelopmentStorage=true" and not conn.identity_based
    assert "127.0.0.1:10000" in conn.blob_service().url


def test_service_uris_and_account_name() -> None:
    conn = resolve("N", {"N__blobServiceUri": "https://b.example/", "N__queueServiceUri": "https://q.example"})
    assert conn.uri("blob") == "https://b.example" and conn.uri("queue") == "https://q.example"
    with pytest.raises(ConfigError, match="N__tableServiceUri"):
        conn.uri("table")
    assert resolve("N", {"N__serviceUri": "https://s.example"}).uri("blob") == "https://s.example"
    acct = resolve(None, {"AzureWebJobsStorage__accountName": "acct"})
    assert acct.uri("table") == "https://acct.table.core.windows.net"
    assert acct.blob_service().url.startswith("https://acct.blob.core.windows.net")


def test_credentials() -> None:
    uri = {"N__blobServiceUri": "https://b.example"}
    assert isinstance(
        resolve("N", {**uri, "N__credential": "managedidentity", "N__clientId": "c"}).credential(),
        ManagedIdentityCredential,
    )
    secret = {**uri, "N__tenantId": "t", "N__clientId": "c", "N__clientSecret": "s"}
    assert isinstance(resolve("N", secret).credential(), ClientSecretCredential)
    assert isinstance(resolve("N", {**uri, "N__clientId": "c"}).credential(), DefaultAzureCredential)
    with pytest.raises(ConfigError, match="only accepted value is 'managedidentity'"):
        resolve("N", {**uri, "N__credential": "certificate"})


def test_nothing_configured_names_the_forms() -> None:
    with pytest.raises(ConfigError, match=r"'Data' is not configured: set Data .* Data__accountName"):
        resolve("Data", {})


def test_any_setting_naming_the_emulator_starts_azurite() -> None:
    from devhost.listeners import emulator_settings

    env = {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "Other": "x",
        "Data": "DefaultEndpointsProtocol=http;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;",
        "Remote": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k;EndpointSuffix=core.windows.net",
    }
    assert emulator_settings(env) == ["AzureWebJobsStorage", "Data"]
    assert emulator_settings({"AzureWebJobsStorage__accountName": "acct"}) == []
