from __future__ import annotations

from collections.abc import Iterator

import pytest

from backends.settings import current
from triggers import blob, blueprints, supervisor


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    current.cache_clear()
    yield
    current.cache_clear()


@pytest.mark.usefixtures("fresh_settings")
def test_the_endpoint_supervisor_is_registered_for_the_local_backend_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_BACKEND", "local")
    assert supervisor.bp in blueprints()
    current.cache_clear()
    monkeypatch.setenv("MLOPS_BACKEND", "azureml")
    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "acct")
    registered = blueprints()
    assert supervisor.bp not in registered and blob.bp in registered
