"""The whole loop as on Azure: storage reached only by identity (no key in any setting) and the Event Grid blob trigger.

Azurite runs over HTTPS with OAuth; devhost, its system-topic stand-in, the app's activities, the training job's
staging and the scoring servers' prediction log all authenticate with ``DefaultAzureCredential`` narrowed by
``AZURE_TOKEN_CREDENTIALS=AzureCliCredential`` to a stand-in ``az`` (no credential reaches a token endpoint). The drop
reaches ``on_blob_drop`` as a ``BlobCreated`` delivery to the host's blob webhook, as Flex Consumption delivers it.
Azurite's debug log then shows that every request of the run carried a bearer token and none a shared key.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backends.settings import Settings
from backends.storage import BlobStorage
from cli.commands import sample_rows
from ml.sample import diabetes_frame
from orchestrators.ids import release_id, retrain_id_for_blob
from tests.e2e.conftest import Host, running_devhost, wait_for
from tests.support.app import app_values, copy_app
from tests.support.azurite import Azurite, free_port
from tests.support.identity import StaticTokenCredential, stand_in_az
from triggers.blobs import canonical_etag

pytestmark = pytest.mark.slow
SAMPLE = "diabetes-identity.csv"


@pytest.fixture(scope="module")
def identity_host(azurite_identity: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    base = tmp_path_factory.mktemp("identity-loop")
    root = copy_app(base / "app")
    az = stand_in_az(base / "az")
    port = free_port()
    values = {
        **app_values("", root / ".mlops", port),
        **azurite_identity.identity_settings(),
        **azurite_identity.tls_env(),
        "AZURE_TOKEN_CREDENTIALS": "AzureCliCredential",
        "PATH": os.pathsep.join((str(az.bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", ""))),
        "DURABLE_TASK_HUB": "IdentityHub",
    }
    assert not any("AccountKey" in value or "SharedAccessSignature" in value for value in values.values())
    with running_devhost(root, values, port) as host:
        yield host
    assert az.calls(), "nothing authenticated through the stand-in Azure CLI"


@pytest.fixture(scope="module")
def storage(azurite_identity: Azurite, monkeypatch_module: pytest.MonkeyPatch) -> Iterator[BlobStorage]:
    """The test's own view of the account: by identity too (a bearer token), so the audit below covers everything."""
    for name, value in azurite_identity.tls_env().items():
        monkeypatch_module.setenv(name, value)
    store = BlobStorage.from_settings(
        Settings.from_env(azurite_identity.identity_settings()), credential=StaticTokenCredential()
    )
    yield store
    store.close()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_a_drop_goes_to_production_with_identity_only_storage(
    identity_host: Host, storage: BlobStorage, azurite_identity: Azurite
) -> None:
    host = identity_host
    shared_before = azurite_identity.authorizations().get("SharedKey", 0)
    storage.ensure_containers(("incoming",))
    written = storage.write("incoming", SAMPLE, diabetes_frame().to_csv(index=False).encode())
    retrain_id = retrain_id_for_blob(SAMPLE, canonical_etag(written.etag))
    wait_for(f"run {retrain_id} appearing (BlobCreated → blob webhook)", lambda: host.run(retrain_id), 90)
    retrain = host.wait_finished(retrain_id, timeout=240)
    assert (retrain["status"], retrain["outcome"], retrain["trigger"]) == ("Completed", "registered", "blob"), retrain
    release = host.wait_finished(release_id("diabetes-ridge", retrain["model_version"]), timeout=240)
    assert release["outcome"] == "deployed", release

    production = json.loads((host.home / "endpoints.json").read_text())["production"]
    answer = httpx.post(
        f"{production['url'].rstrip('/')}/score",
        json={"data": sample_rows(3)},
        headers={"Authorization": f"Bearer {production['key']}"},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["model_version"] == retrain["model_version"], answer.text

    def logged() -> list[str]:
        return [b.name for b in storage.list(host.values["SCORING_LOGS_CONTAINER"], "production/")]

    assert wait_for("the prediction log written by identity", logged, 60)
    assert storage.list("datasets"), "the accepted drop and its manifest were written by identity"
    assert azurite_identity.authorizations().get("SharedKey", 0) == shared_before, "a shared key was used"
    assert azurite_identity.authorizations().get("Bearer", 0) > 0
