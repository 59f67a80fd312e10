"""The app's storage reached by identity, as on Azure (no key in any setting): Azurite over HTTPS with OAuth.

In process the token credential is injected; as a child process (the CLI) the real ``DefaultAzureCredential`` runs
with ``AZURE_TOKEN_CREDENTIALS=AzureCliCredential`` and a stand-in ``az``, so no credential reaches a token endpoint.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.errors import BackendError
from backends.ports import Storage
from backends.settings import Settings
from backends.storage import BlobStorage
from tests.support.app import child_env
from tests.support.azurite import Azurite
from tests.support.identity import STORAGE_AUDIENCE, StaticTokenCredential, stand_in_az
from tests.unit.backends import contracts

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def trusted(azurite_identity: Azurite, monkeypatch: pytest.MonkeyPatch) -> Azurite:
    """This process trusts the test CA the way a deployed app trusts Azure's: through the environment."""
    for name, value in azurite_identity.tls_env().items():
        monkeypatch.setenv(name, value)
    return azurite_identity


@pytest.fixture
def credential() -> StaticTokenCredential:
    return StaticTokenCredential()


@pytest.fixture
def storage(trusted: Azurite, credential: StaticTokenCredential) -> Iterator[BlobStorage]:
    settings = Settings.from_env(trusted.identity_settings())
    assert settings.storage.identity_based and settings.AzureWebJobsStorage == ""
    store = BlobStorage.from_settings(settings, credential=credential)
    yield store
    store.close()


@pytest.fixture
def container() -> str:
    return f"id-{uuid.uuid4().hex[:12]}"


def test_the_storage_contract_holds_by_identity(
    storage: Storage, container: str, credential: StaticTokenCredential
) -> None:
    contracts.storage_round_trip(storage, container)
    contracts.storage_create_only(storage, container)
    contracts.storage_conditional_write(storage, container)
    contracts.storage_list_and_delete(storage, container)
    assert set(credential.scopes) == {STORAGE_AUDIENCE + "/.default"}


def test_a_token_azurite_refuses_is_a_permanent_error(trusted: Azurite, container: str) -> None:
    store = BlobStorage.from_settings(
        Settings.from_env(trusted.identity_settings()), credential=StaticTokenCredential(lifetime_s=-600)
    )
    with pytest.raises(BackendError, match=r"HTTP 40[13]"):
        store.ensure_containers((container,))


def test_the_cli_drops_a_file_with_the_developers_identity(trusted: Azurite, tmp_path: Path) -> None:
    """``python -m cli drop`` with identity-only settings: DefaultAzureCredential → the (stand-in) Azure CLI."""
    az = stand_in_az(tmp_path / "az")
    before = trusted.authorizations().get("SharedKey", 0)
    container = f"drops-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "drop.csv"
    data.write_text("age,target\n1,2\n")
    (tmp_path / "local.settings.sample.json").write_text((ROOT / "local.settings.sample.json").read_text())
    env = child_env(
        tmp_path,
        {
            **trusted.identity_settings(),
            **trusted.tls_env(),
            **az.env(),
            "AzureWebJobsStorage": "",
            "INCOMING_CONTAINER": container,
        },
    )
    done = subprocess.run(
        [sys.executable, "-m", "cli", "--root", str(tmp_path), "drop", str(data)],
        check=False,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"uploaded {data} as {container}/drop.csv" in done.stdout
    assert any("--resource" in call and "https://storage.azure.com" in call for call in az.calls())
    store = BlobStorage.from_settings(
        Settings.from_env(trusted.identity_settings()), credential=StaticTokenCredential()
    )
    assert store.read(container, "drop.csv")[0] == data.read_bytes()
    assert trusted.authorizations().get("SharedKey", 0) == before, "a shared key was used"
