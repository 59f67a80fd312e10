"""POST /api/retrain with a data reference, GET /api/models and GET /api/models/{name}/versions against real Azurite
and the local registry."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.blob import InputStream

from backends.settings import current
from backends.storage import BlobStorage
from orchestrators.ids import retrain_id_for_blob
from services.catalog import MODELS_ROOT, load_catalog
from tests.support.azurite import Azurite
from tests.unit.triggers.conftest import FakeDurable
from triggers import blob, http_api

retrain = http_api.http_retrain.build().get_user_function().client_function
list_models = http_api.list_models.build().get_user_function()
list_versions = http_api.list_model_versions.build().get_user_function()
on_blob_drop = blob.on_blob_drop.build().get_user_function().client_function


@pytest.fixture
def storage(azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> BlobStorage:
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("INCOMING_CONTAINER", "edge-unit-incoming")
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    current.cache_clear()
    store = BlobStorage(azurite.connection_string)
    store.ensure_containers(("edge-unit-incoming",))
    return store


def post(body: dict[str, object]) -> func.HttpRequest:
    return func.HttpRequest("POST", "http://127.0.0.1:7071/api/retrain", body=json.dumps(body).encode())


def test_retrain_of_a_blob_uses_the_blob_triggers_id(storage: BlobStorage, durable: FakeDurable) -> None:
    info = storage.write("edge-unit-incoming", "2026/drop.csv", b"age\n1\n")
    response = asyncio.run(retrain(post({"data": "edge-unit-incoming/2026/drop.csv"}), durable))
    assert response.status_code == 202, response.get_body()
    instance_id = json.loads(response.get_body())["id"]
    assert instance_id == retrain_id_for_blob("2026/drop.csv", info.etag)
    given = durable.started[0][2]
    assert given["data"] == "edge-unit-incoming/2026/drop.csv" and given["etag"] == info.etag
    # the blob trigger for the same version, and a second POST, find the run already there
    arrival = InputStream(data=b"", name="edge-unit-incoming/2026/drop.csv", blob_properties={"ETag": f'"{info.etag}"'})
    asyncio.run(on_blob_drop(arrival, durable))
    again = asyncio.run(retrain(post({"data": "edge-unit-incoming/2026/drop.csv"}), durable))
    assert again.status_code == 202 and json.loads(again.get_body())["id"] == instance_id
    assert len(durable.started) == 1


def test_blob_trigger_without_properties_asks_storage(storage: BlobStorage, durable: FakeDurable) -> None:
    info = storage.write("edge-unit-incoming", "bare.csv", b"age\n1\n")
    asyncio.run(on_blob_drop(InputStream(data=b"", name="edge-unit-incoming/bare.csv"), durable))
    assert durable.started[0][1] == retrain_id_for_blob("bare.csv", info.etag)


def test_retrain_of_a_missing_blob_is_404(storage: BlobStorage, durable: FakeDurable) -> None:
    response = asyncio.run(retrain(post({"data": "edge-unit-incoming/none.csv"}), durable))
    assert response.status_code == 404
    assert "edge-unit-incoming/none.csv does not exist" in json.loads(response.get_body())["error"]
    assert durable.started == []


def get(path: str, route: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest("GET", f"http://h{path}", body=b"", route_params=route or {})


def test_models_of_an_empty_registry(storage: BlobStorage) -> None:
    response = asyncio.run(list_models(get("/api/models")))
    assert response.status_code == 200
    assert json.loads(response.get_body()) == [
        {
            "name": "breast-cancer",
            "default": False,
            "status": "ok",
            "problems": [],
            "task": "binary",
            "description": "benign (1) or malignant (0) breast tumour, from 30 cell nucleus measurements",
            "champion": None,
            "qa": None,
            "production": None,
            "versions": 0,
        },
        {
            "name": "diabetes-ridge",
            "default": True,
            "status": "ok",
            "problems": [],
            "task": "regression",
            "description": "disease progression one year after baseline (diabetes, 10 baseline variables)",
            "champion": None,
            "qa": None,
            "production": None,
            "versions": 0,
        },
    ]
    versions = asyncio.run(list_versions(get("/api/models/diabetes-ridge/versions", {"name": "diabetes-ridge"})))
    assert versions.status_code == 200 and json.loads(versions.get_body()) == []


def test_versions_of_an_unknown_model_are_404(storage: BlobStorage) -> None:
    response = asyncio.run(list_versions(get("/api/models/nope/versions", {"name": "nope"})))
    assert response.status_code == 404
    assert json.loads(response.get_body())["error"] == "no model 'nope' (models: breast-cancer, diabetes-ridge)"


def test_a_bad_spec_is_listed_with_its_problems_and_the_others_still_serve(
    storage: BlobStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "models"
    shutil.copytree(MODELS_ROOT / "diabetes-ridge", root / "diabetes-ridge")
    (root / "broken").mkdir()
    (root / "broken" / "model.yaml").write_text("task: regresion\n")
    monkeypatch.setattr(http_api, "catalog", lambda: load_catalog(root, current()))
    listed = {m["name"]: m for m in json.loads(asyncio.run(list_models(get("/api/models"))).get_body())}
    assert sorted(listed) == ["broken", "diabetes-ridge"]
    assert listed["diabetes-ridge"]["status"] == "ok"
    broken = listed["broken"]
    assert broken["status"] == "error" and broken["task"] is None
    assert any("task" in problem and "regresion" in problem for problem in broken["problems"]), broken["problems"]
