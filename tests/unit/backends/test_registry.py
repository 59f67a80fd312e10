"""MlflowRegistry on a real MLflow registry (SQLite in tmp_path), through the registry contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from backends.local.events import ModelEventSink
from backends.local.registry import MlflowRegistry
from tests.support.azurite import free_port
from tests.unit.backends import contracts
from tests.unit.backends.support import recording_server


@pytest.fixture
def registry(tmp_path: Path) -> MlflowRegistry:
    return MlflowRegistry(tmp_path / "home", events=None)


def test_register_is_idempotent(registry: MlflowRegistry, ridge_model: Path) -> None:
    contracts.registry_register_idempotent(registry, "idem", str(ridge_model))


def test_list_newest_first(registry: MlflowRegistry, ridge_model: Path) -> None:
    contracts.registry_list_newest_first(registry, "many", str(ridge_model))


def test_stage_transitions(registry: MlflowRegistry, ridge_model: Path) -> None:
    contracts.registry_stage_transitions(registry, "stages", str(ridge_model))


def test_tags_merge(registry: MlflowRegistry, ridge_model: Path) -> None:
    contracts.registry_tags_merge(registry, "tagged", str(ridge_model))


def test_champion_alias_moves(registry: MlflowRegistry, ridge_model: Path) -> None:
    contracts.registry_champion_moves(registry, "champ", str(ridge_model))
    client = MlflowClient(tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri)
    assert client.get_registered_model("champ").aliases == {}


def test_champion_is_an_mlflow_alias(registry: MlflowRegistry, ridge_model: Path) -> None:
    version = registry.register("alias", str(ridge_model), {"job_id": "a1"}).version
    registry.set_stage("alias", version, "production")
    registry.set_stage("alias", version, "champion")
    client = MlflowClient(tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri)
    assert str(client.get_model_version_by_alias("alias", "champion").version) == version


def test_download(registry: MlflowRegistry, ridge_model: Path, tmp_path: Path) -> None:
    contracts.registry_download(registry, "dl", str(ridge_model), tmp_path / "copy")


def test_registries_do_not_share_state(tmp_path: Path, ridge_model: Path) -> None:
    one = MlflowRegistry(tmp_path / "one")
    two = MlflowRegistry(tmp_path / "two")
    one.register("m", str(ridge_model), {"job_id": "x"})
    assert two.list("m") == []
    assert (tmp_path / "one" / "mlflow.db").exists()
    assert list((tmp_path / "one" / "mlruns").rglob("MLmodel"))


def test_a_second_instance_on_the_same_home_sees_the_versions(tmp_path: Path, ridge_model: Path) -> None:
    first = MlflowRegistry(tmp_path / "h").register("m", str(ridge_model), {"job_id": "j"})
    assert MlflowRegistry(tmp_path / "h").register("m", str(ridge_model), {"job_id": "j"}) == first


def test_not_a_model_folder(registry: MlflowRegistry, tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="no MLmodel"):
        registry.register("m", str(tmp_path), {"job_id": "j"})


def test_register_posts_model_registered_once(tmp_path: Path, ridge_model: Path) -> None:
    with recording_server() as server:
        registry = MlflowRegistry(tmp_path / "home", ModelEventSink(server.url, tmp_path / "home" / "events-outbox"))
        version = registry.register("ev", str(ridge_model), {"job_id": "j1", "rmse": "50.1"})
        registry.register("ev", str(ridge_model), {"job_id": "j1", "rmse": "50.1"})
    [request] = server.requests
    [event] = request["body"]
    assert event["subject"] == f"models/ev:{version.version}"
    assert event["data"]["ModelTags"]["job_id"] == "j1"
    assert event["data"]["ModelTags"]["stage"] == "qa"


def test_undelivered_event_is_redelivered_on_the_next_register(tmp_path: Path, ridge_model: Path) -> None:
    home = tmp_path / "home"
    dead = ModelEventSink(f"http://127.0.0.1:{free_port()}/hook", home / "events-outbox", attempts=1, timeout_s=2)
    first = MlflowRegistry(home, dead).register("out", str(ridge_model), {"job_id": "j1"})
    assert len(dead.pending()) == 1
    with recording_server() as server:
        live = ModelEventSink(server.url, home / "events-outbox")
        second = MlflowRegistry(home, live).register("out", str(ridge_model), {"job_id": "j2"})
    subjects = [request["body"][0]["subject"] for request in server.requests]
    assert subjects == [f"models/out:{first.version}", f"models/out:{second.version}"]
    assert live.pending() == []
