"""devhost reaches storage by identity alone: service URIs and a token credential, no account key anywhere, against
an Azurite that accepts only bearer tokens over HTTPS. The credential is the Functions host's default
(``DefaultAzureCredential``) narrowed by ``AZURE_TOKEN_CREDENTIALS=AzureCliCredential`` to a stand-in ``az``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.storage.blob import BlobServiceClient

from tests.integration.devhost_identity.oauth_azurite import (
    OAuthAzurite,
    TokenCredential,
    start_oauth_azurite,
    write_az,
)
from tests.support.devhost_proc import make_devhost


@pytest.fixture(scope="module")
def oauth_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthAzurite]:
    handle = start_oauth_azurite(tmp_path_factory.mktemp("oauth-azurite"))
    try:
        yield handle
    finally:
        handle.stop()


def client(azurite: OAuthAzurite) -> BlobServiceClient:
    return BlobServiceClient(azurite.blob_uri, credential=TokenCredential(), connection_verify=str(azurite.cert))


def identity_env(azurite: OAuthAzurite, tmp_path: Path) -> dict[str, str]:
    bin_dir = write_az(tmp_path)
    return {
        "DataStorage__blobServiceUri": azurite.blob_uri,
        "AzureWebJobsStorage__blobServiceUri": azurite.blob_uri,
        "AZURE_TOKEN_CREDENTIALS": "AzureCliCredential",
        "REQUESTS_CA_BUNDLE": str(azurite.cert), "SSL_CERT_FILE": str(azurite.cert),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_AZ_LOG": str(tmp_path / "az.log"),
    }


def test_the_emulator_refuses_shared_keys(oauth_azurite: OAuthAzurite) -> None:
    keyed = BlobServiceClient.from_connection_string(
        f"DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint="
        f"{oauth_azurite.blob_uri};", connection_verify=str(oauth_azurite.cert), retry_total=0)
    with pytest.raises((HttpResponseError, ClientAuthenticationError)):
        keyed.create_container("keyed")
    client(oauth_azurite).create_container("works")


@pytest.mark.parametrize(("app", "container", "blob"), [("blob_app", "devhost-drops", "id/poll.txt"),
                                                        ("eventgrid_blob_app", "eg-drops", "in/eg.txt")])
def test_blob_triggers_run_with_identity_only(oauth_azurite: OAuthAzurite, tmp_path: Path, app: str,
                                              container: str, blob: str) -> None:
    env = identity_env(oauth_azurite, tmp_path)
    assert not any("AccountKey" in v or "UseDevelopmentStorage" in v for v in env.values())
    host = make_devhost(app, tmp_path, env)
    for name in ("AzureWebJobsStorage", "DataStorage"):
        host.env.pop(name, None)
    svc = client(oauth_azurite)
    box = svc.get_container_client(container)
    if not box.exists():
        box.create_container()
    host.start()
    try:
        if app == "eventgrid_blob_app":
            host.wait_for(lambda: "subscription on_drop-blobcreated created" in host.output(), what="subscription")
        box.upload_blob(blob, b"by identity", overwrite=True)
        path = host.counts / "blobs"
        host.wait_for(lambda: path.exists() and f"{container}/{blob} 11 by identity" in path.read_text(),
                      what="the function run", timeout=60)
        assert "account get-access-token" in (tmp_path / "az.log").read_text()
        assert "storage unreachable" not in host.output()
    finally:
        assert host.stop() == 0
