"""The prediction log written by identity, as on Azure: no key in any setting, Azurite over HTTPS with OAuth.

The server is a real subprocess with the real azure-identity credentials: the managed identity of an Azure ML
deployment (its token endpoint stood in for on 127.0.0.1, as ``MSI_ENDPOINT`` / ``MSI_SECRET`` announce it), and a
developer's ``az login`` (``AZURE_TOKEN_CREDENTIALS=AzureCliCredential`` with a stand-in ``az``). No credential
reaches a real token endpoint; Azurite's debug log shows how every request authenticated.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from sklearn.linear_model import Ridge

from ml.sample import diabetes_frame
from scoring.storage import API_VERSION
from tests.support.azurite import ROOT, Azurite
from tests.support.identity import STORAGE_AUDIENCE, StaticTokenCredential, stand_in_az
from tests.support.scoring import ManagedIdentityEndpoint, managed_identity_endpoint, save_model, start_server

ROWS = diabetes_frame().drop(columns=["target"]).head(12).to_numpy().tolist()
#: what would let a credential find a real identity or a real token endpoint
_AMBIENT = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_TOKEN_CREDENTIALS",
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(Ridge(alpha=1.0), tmp_path_factory.mktemp("identity-model") / "model")


@pytest.fixture
def token_endpoint() -> Iterator[ManagedIdentityEndpoint]:
    endpoint = managed_identity_endpoint()
    yield endpoint
    endpoint.close()


def _no_ambient_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _AMBIENT:
        monkeypatch.delenv(name, raising=False)


def _records(azurite: Azurite, container: str) -> list[dict[str, object]]:
    """Every log record in the container, read with a token as well (so the debug log holds no key at all)."""
    assert azurite.tls is not None
    service = BlobServiceClient(
        azurite.blob_url,
        credential=StaticTokenCredential(),
        api_version=API_VERSION,
        connection_verify=str(azurite.tls.ca_file),
    )
    box = service.get_container_client(container)
    return [
        json.loads(line) for blob in box.list_blobs() for line in box.download_blob(blob.name).readall().splitlines()
    ]


def _serve_and_stop(tmp_path: Path, model: Path, env: dict[str, str], container: str) -> None:
    server = start_server(
        tmp_path / "state",
        env,
        "--model-dir",
        str(model),
        "--version",
        "5",
        "--logs-connection",
        "SCORING_LOGS",
        "--logs-container",
        container,
    )
    try:
        with server.client() as client:
            for i, row in enumerate(ROWS):
                assert (
                    client.post("/score", json={"data": [row]}, headers={"x-request-id": f"id-{i}"}).status_code == 200
                )
    finally:
        assert server.stop(signal.SIGTERM) == 0, server.log_file.read_text()


def test_the_endpoint_managed_identity_writes_the_prediction_log(
    tmp_path: Path,
    model: Path,
    azurite_identity: Azurite,
    token_endpoint: ManagedIdentityEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_ambient_identity(monkeypatch)
    client_id = str(uuid.uuid4())
    container = f"mi-{uuid.uuid4().hex[:10]}"
    env = {
        **azurite_identity.tls_env(),
        **token_endpoint.env,
        **{
            k.replace("AzureWebJobsStorage", "SCORING_LOGS"): v for k, v in azurite_identity.identity_settings().items()
        },
        "SCORING_LOGS__credential": "managedidentity",
        "SCORING_LOGS__clientId": client_id,
    }
    shared_before = azurite_identity.authorizations().get("SharedKey", 0)  # the account is shared with other tests
    _serve_and_stop(tmp_path, model, env, container)
    records = _records(azurite_identity, container)
    assert sorted(str(r["request_id"]) for r in records) == sorted(f"id-{i}" for i in range(len(ROWS)))
    assert token_endpoint.calls, "the managed identity was never asked for a token"
    assert {(c["clientid"], c["resource"]) for c in token_endpoint.calls} == {(client_id, STORAGE_AUDIENCE)}
    assert azurite_identity.authorizations().get("SharedKey", 0) == shared_before, "a shared key was used"


def test_a_developer_identity_writes_the_prediction_log(
    tmp_path: Path, model: Path, azurite_identity: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_ambient_identity(monkeypatch)
    az = stand_in_az(tmp_path / "az")
    container = f"dev-{uuid.uuid4().hex[:10]}"
    env = {**azurite_identity.tls_env(), **az.env(), "SCORING_LOGS__blobServiceUri": azurite_identity.blob_url}
    shared_before = azurite_identity.authorizations().get("SharedKey", 0)
    _serve_and_stop(tmp_path, model, env, container)
    assert len(_records(azurite_identity, container)) == len(ROWS)
    assert any(call[:2] == ["account", "get-access-token"] for call in az.calls())
    assert azurite_identity.authorizations().get("SharedKey", 0) == shared_before, "a shared key was used"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {},
            "storage connection SCORING_LOGS is not configured: set SCORING_LOGS to a connection string, or "
            "SCORING_LOGS__blobServiceUri",
        ),
        ({"SCORING_LOGS__blobServiceUri": "http://127.0.0.1:1/devstoreaccount1"}, "needs an https:// endpoint"),
        (
            {"SCORING_LOGS__accountName": "acct", "SCORING_LOGS__credential": "password"},
            "SCORING_LOGS__credential='password' is malformed: the only value is 'managedidentity'",
        ),
    ],
)
def test_a_misconfigured_log_connection_stops_start_up_naming_the_setting(
    tmp_path: Path, model: Path, settings: dict[str, str], message: str
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scoring.server",
            "--port",
            "1",
            "--model-dir",
            str(model),
            "--auth",
            "platform",
            "--logs-connection",
            "SCORING_LOGS",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **settings},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
