"""devhost reaches storage by identity alone: service URIs and a token credential, no account key anywhere, against
an Azurite that accepts only bearer tokens over HTTPS. The credential is the Functions host's default
(``DefaultAzureCredential``) narrowed by ``AZURE_TOKEN_CREDENTIALS=AzureCliCredential`` to a stand-in ``az``."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.storage.blob import BlobServiceClient

from tests.support.azurite import Azurite
from tests.support.devhost_proc import make_devhost
from tests.support.identity import StaticTokenCredential, stand_in_az


def client(azurite: Azurite) -> BlobServiceClient:
    assert azurite.tls is not None
    return BlobServiceClient(
        azurite.blob_url, credential=StaticTokenCredential(), connection_verify=str(azurite.tls.ca_file)
    )


def identity_env(azurite: Azurite, tmp_path: Path) -> dict[str, str]:
    az = stand_in_az(tmp_path / "az")
    return {
        **azurite.identity_settings("DataStorage"),
        **azurite.identity_settings(),
        **azurite.tls_env(),
        **az.env(),
        "AZ_CALLS": str(az.calls_file),
    }


def test_the_emulator_refuses_a_wrong_key_and_takes_a_token(azurite_identity: Azurite) -> None:
    assert azurite_identity.tls is not None
    keyed = BlobServiceClient.from_connection_string(
        f"DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint="
        f"{azurite_identity.blob_url};",
        connection_verify=str(azurite_identity.tls.ca_file),
        retry_total=0,
    )
    with pytest.raises((HttpResponseError, ClientAuthenticationError)):
        keyed.create_container("keyed")
    box = client(azurite_identity).get_container_client("works")
    if not box.exists():
        box.create_container()


@pytest.mark.parametrize(
    ("app", "container", "blob"),
    [("blob_app", "devhost-drops", "id/poll.txt"), ("eventgrid_blob_app", "eg-drops", "in/eg.txt")],
)
def test_blob_triggers_run_with_identity_only(
    azurite_identity: Azurite, tmp_path: Path, app: str, container: str, blob: str
) -> None:
    env = identity_env(azurite_identity, tmp_path)
    assert not any("AccountKey" in v or "UseDevelopmentStorage" in v for v in env.values())
    host = make_devhost(app, tmp_path, env)
    for name in ("AzureWebJobsStorage", "DataStorage"):
        host.env.pop(name, None)
    svc = client(azurite_identity)
    box = svc.get_container_client(container)
    if not box.exists():
        box.create_container()
    host.start()
    try:
        if app == "eventgrid_blob_app":
            host.wait_for(lambda: "subscription on_drop-blobcreated created" in host.output(), what="subscription")
        box.upload_blob(blob, b"by identity", overwrite=True)
        path = host.counts / "blobs"
        host.wait_for(
            lambda: path.exists() and f"{container}/{blob} 11 by identity" in path.read_text(),
            what="the function run",
            timeout=60,
        )
        assert "get-access-token" in Path(env["AZ_CALLS"]).read_text()
        assert "storage unreachable" not in host.output()
    finally:
        assert host.stop() == 0
