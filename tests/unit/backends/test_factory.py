"""build_backends picks the local implementations from settings, once per settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends.factory import build_backends
from backends.local.endpoints import LocalEndpoints
from backends.local.jobs import LocalJobs
from backends.local.registry import MlflowRegistry
from backends.ports import Endpoints, ModelRegistry, Storage, TrainingJobs
from backends.settings import Settings
from backends.storage import BlobStorage


def test_local_backends_built_once(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "MLOPS_HOME": str(tmp_path / "home"),
            "QA_ENDPOINT_PORT": "18081",
            "PROD_ENDPOINT_PORT": "18082",
            "DEVHOST_MASTER_KEY": "ignored-here",
        }
    )
    built = build_backends(settings)
    assert build_backends(settings) is built
    assert isinstance(built.storage, BlobStorage) and isinstance(built.storage, Storage)
    assert isinstance(built.jobs, LocalJobs) and isinstance(built.jobs, TrainingJobs)
    assert isinstance(built.registry, MlflowRegistry) and isinstance(built.registry, ModelRegistry)
    assert isinstance(built.endpoints, LocalEndpoints) and isinstance(built.endpoints, Endpoints)
    assert built.registry.tracking_uri == f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    assert built.jobs.env["MLFLOW_TRACKING_URI"] == built.registry.tracking_uri
    assert built.jobs.env["MLFLOW_EXPERIMENT_ID"] == built.registry.job_environment()["MLFLOW_EXPERIMENT_ID"]
    assert built.endpoints.ports == {"qa": 18081, "production": 18082}
    assert built.jobs.slots == (os.cpu_count() or 1)
    assert built.registry.events is not None
    assert built.registry.events.url.startswith("http://127.0.0.1:7071/runtime/webhooks/eventgrid")


def test_relative_home_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    built = build_backends(Settings.from_env({"MLOPS_HOME": "rel-home"}))
    assert isinstance(built.registry, MlflowRegistry)
    assert built.registry.home == tmp_path / "rel-home"


def test_azureml_backends_come_from_the_azure_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The azure factory is imported only for MLOPS_BACKEND=azureml and given the settings and the storage."""
    import sys
    import types

    from backends.ports import Storage as StoragePort

    local = build_backends(Settings.from_env({"MLOPS_HOME": str(tmp_path / "home")}))
    calls: list[tuple[Settings, StoragePort]] = []

    def build_azure_backends(settings: Settings, storage: StoragePort) -> tuple[object, object, object]:
        calls.append((settings, storage))
        return local.jobs, local.registry, local.endpoints

    stand_in = types.ModuleType("backends.azure.factory")
    stand_in.build_azure_backends = build_azure_backends  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "backends.azure.factory", stand_in)
    settings = Settings.from_env(
        {
            "MLOPS_BACKEND": "azureml",
            "AZURE_SUBSCRIPTION_ID": "s",
            "AZURE_RESOURCE_GROUP": "g",
            "AZUREML_WORKSPACE": "w",
            "AzureWebJobsStorage__accountName": "acct",
        }
    )
    built = build_backends(settings)
    assert [c[0] for c in calls] == [settings] and calls[0][1] is built.storage
    assert built.jobs is local.jobs and built.endpoints is local.endpoints


def test_training_slots_come_from_the_settings(tmp_path: Path) -> None:
    built = build_backends(Settings.from_env({"MLOPS_HOME": str(tmp_path / "home"), "LOCAL_TRAINING_SLOTS": "3"}))
    assert isinstance(built.jobs, LocalJobs) and built.jobs.slots == 3
