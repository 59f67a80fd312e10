"""Storage connections are read as the Functions host reads them: a connection string, or identity-based settings."""

from __future__ import annotations

import json

import pytest

from backends.errors import SettingsError
from backends.settings import Settings
from backends.storage_connection import DEVELOPMENT_STORAGE, resolve

N = "AzureWebJobsStorage"


def test_a_connection_string_wins() -> None:
    connection = resolve({N: "UseDevelopmentStorage=true", f"{N}__accountName": "acct"}, N)
    assert connection.connection_string == "UseDevelopmentStorage=true"
    assert not connection.identity_based


def test_account_name_gives_the_public_cloud_endpoints_and_the_default_credential() -> None:
    connection = resolve({f"{N}__accountName": "mlopsdata"}, N)
    assert connection.identity_based
    assert [connection.service_uri(s) for s in ("blob", "queue", "table")] == [
        "https://mlopsdata.blob.core.windows.net",
        "https://mlopsdata.queue.core.windows.net",
        "https://mlopsdata.table.core.windows.net",
    ]
    assert connection.credential_kind == "default"


def test_service_uris_win_over_the_account_name_and_serviceuri_is_blob_only() -> None:
    env = {
        f"{N}__accountName": "acct",
        f"{N}__serviceUri": "https://127.0.0.1:1/devstoreaccount1/",
        f"{N}__queueServiceUri": "https://127.0.0.1:2/devstoreaccount1",
    }
    connection = resolve(env, N)
    assert connection.service_uri("blob") == "https://127.0.0.1:1/devstoreaccount1"
    assert connection.service_uri("queue") == "https://127.0.0.1:2/devstoreaccount1"
    assert connection.service_uri("table") == "https://acct.table.core.windows.net"


def test_a_missing_service_names_the_setting_to_add() -> None:
    connection = resolve({f"{N}__blobServiceUri": "https://127.0.0.1:1/devstoreaccount1"}, N)
    with pytest.raises(SettingsError, match=rf"{N}__queueServiceUri or {N}__accountName"):
        connection.service_uri("queue")


def test_managed_identity_with_a_client_id() -> None:
    env = {f"{N}__accountName": "acct", f"{N}__credential": "managedidentity", f"{N}__clientId": "1234"}
    connection = resolve(env, N)
    assert (connection.credential_kind, connection.client_id) == ("managedidentity", "1234")
    assert connection.as_settings("LOGS") == {
        "LOGS__blobServiceUri": "https://acct.blob.core.windows.net",
        "LOGS__queueServiceUri": "https://acct.queue.core.windows.net",
        "LOGS__tableServiceUri": "https://acct.table.core.windows.net",
        "LOGS__credential": "managedidentity",
        "LOGS__clientId": "1234",
    }


def test_a_service_principal_needs_all_three_settings() -> None:
    base = {f"{N}__accountName": "acct", f"{N}__tenantId": "t", f"{N}__clientId": "c"}
    assert resolve(base, N).credential_kind == "default"
    assert resolve({**base, f"{N}__clientSecret": "s"}, N).credential_kind == "clientsecret"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, f"storage connection {N} is not configured: set {N} to a connection string, or {N}__accountName"),
        ({f"{N}__accountName": "a", f"{N}__credential": "cli"}, "the only value is 'managedidentity'"),
        ({f"{N}__blobServiceUri": "http://127.0.0.1:10000/devstoreaccount1"}, "needs an https:// endpoint"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        resolve(env, N)


def test_the_emulator_stands_in_only_for_the_local_backend() -> None:
    assert Settings.from_env({}).storage.connection_string == DEVELOPMENT_STORAGE
    azure = {
        "MLOPS_BACKEND": "azureml",
        "AZURE_SUBSCRIPTION_ID": "s",
        "AZURE_RESOURCE_GROUP": "g",
        "AZUREML_WORKSPACE": "w",
    }
    with pytest.raises(SettingsError, match=f"storage connection {N} is not configured"):
        Settings.from_env(azure)
    on_azure = Settings.from_env({**azure, f"{N}__accountName": "acct", f"{N}__credential": "managedidentity"})
    assert on_azure.storage.service_uri("blob") == "https://acct.blob.core.windows.net"
    assert on_azure.AzureWebJobsStorage == ""


def test_masked_settings_describe_the_connection_without_secrets() -> None:
    keyed = Settings.from_env({N: "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0"})
    assert "c2VjcmV0" not in json.dumps(keyed.masked())
    identity = Settings.from_env(
        {f"{N}__accountName": "a", f"{N}__tenantId": "t", f"{N}__clientId": "c", f"{N}__clientSecret": "hunter2"}
    )
    shown = json.dumps(identity.masked())
    assert "hunter2" not in shown
    assert "identity-based (clientsecret (client id c))" in shown
