"""The scoring server over real HTTP: predictions, validation, auth, swaps under load, logs, restarts."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from azure.storage.blob import BlobServiceClient
from sklearn.linear_model import Ridge
from sklearn.tree import DecisionTreeRegressor

from ml.models import load
from ml.sample import diabetes_frame
from tests.support.azurite import Azurite
from tests.support.scoring import Server, save_model, start_server

ROWS = diabetes_frame().drop(columns=["target"]).head(100)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "ridge": save_model(Ridge(alpha=1.0), root / "ridge"),
        "ridge2": save_model(Ridge(alpha=50.0), root / "ridge2"),
        "tree": save_model(DecisionTreeRegressor(max_depth=4, random_state=0), root / "tree"),
    }


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = start_server(tmp_path / "state")
    yield running
    running.stop()


@pytest.mark.parametrize("name", ["ridge", "tree"])
def test_predictions_equal_the_models_own_predict(server: Server, models: dict[str, Path], name: str) -> None:
    assert server.deploy("blue", "7", models[name]).json()["deployments"]["blue"]["fast_path"] is (name == "ridge")
    with server.client() as client:
        response = client.post("/score", json={"data": ROWS.to_numpy().tolist()})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == "7" and response.headers["x-model-version"] == "7"
    expected = load(models[name]).predict(ROWS)
    np.testing.assert_allclose(body["predictions"], expected, rtol=1e-9)


BAD_REQUESTS = [
    (b"{oops", 400, "not valid JSON"),
    (b"[1, 2]", 422, 'expected a JSON object {"data"'),
    (b'{"data": []}', 422, "non-empty list of rows"),
    (b'{"data": [[1, 2, 3]]}', 422, "row 0: expected 10 numbers"),
    (b'{"data": [[1,2,3,4,5,6,7,8,9,10], [1,2,3,4,5,6,7,8,9,"x"]]}', 422, "row 1, column 's6': expected a finite"),
    (b'{"data": [[true,2,3,4,5,6,7,8,9,10]]}', 422, "column 'age': expected a finite number, got True"),
    (b'{"data": [[1e999,2,3,4,5,6,7,8,9,10]]}', 400, "not valid JSON"),
    (b'{"data": [[NaN,2,3,4,5,6,7,8,9,10]]}', 400, "not valid JSON"),
    (b'{"data": [[null,2,3,4,5,6,7,8,9,10]]}', 422, "got None"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_REQUESTS)
def test_bad_requests_get_a_4xx_naming_the_problem(
    server: Server, models: dict[str, Path], body: bytes, status: int, message: str
) -> None:
    server.deploy("blue", "1", models["ridge"])
    with server.client() as client:
        response = client.post("/score", content=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_batch_and_body_limits(server: Server, models: dict[str, Path]) -> None:
    server.deploy("blue", "1", models["ridge"])
    with server.client() as client:
        too_many = client.post("/score", json={"data": [[50, 1, 25, 90, 180, 100, 50, 4, 4.5, 90]] * 1001})
        too_big = client.post("/score", content=b"{" + b" " * (1 << 20) + b"}")
    assert too_many.status_code == 413 and "exceeds the limit of 1000" in too_many.json()["error"]
    assert too_big.status_code == 413


def test_auth(server: Server, models: dict[str, Path]) -> None:
    server.deploy("blue", "1", models["ridge"])
    row = {"data": [ROWS.iloc[0].tolist()]}
    assert httpx.post(server.url + "/score", json=row).status_code == 401
    assert httpx.post(server.url + "/score", json=row, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert (
        httpx.post(server.url + "/score", json=row, headers={"Authorization": f"Bearer {server.admin_key}"}).status_code
        == 401
    )
    assert httpx.get(server.url + "/admin/state", headers={"Authorization": f"Bearer {server.key}"}).status_code == 401
    assert httpx.get(server.url + "/metrics").status_code == 401
    assert httpx.get(server.url + "/").status_code == 200


def test_health_traffic_and_admin_errors(server: Server, models: dict[str, Path]) -> None:
    assert httpx.get(server.url + "/health").status_code == 503
    server.deploy("blue", "1", models["ridge"])
    server.deploy("green", "2", models["ridge2"])
    with server.client(admin=True) as admin:
        assert admin.put("/admin/traffic", json={"blue": 50, "green": 40}).status_code == 422
        assert admin.put("/admin/traffic", json={"purple": 100}).status_code == 422
        bad = admin.put("/admin/deployments/blue", json={"version": "3", "model_dir": "/nonexistent"})
        assert bad.status_code == 422 and "cannot load" in bad.json()["error"]
        assert admin.put("/admin/traffic", json={"blue": 50, "green": 50}).status_code == 200
    with server.client() as client:
        versions = [
            client.post("/score", json={"data": [ROWS.iloc[0].tolist()]}).json()["model_version"] for _ in range(100)
        ]
    assert versions.count("1") == 50 and versions.count("2") == 50
    health = httpx.get(server.url + "/health").json()
    assert health["traffic"] == {"blue": 50, "green": 50}


def test_swap_under_load_drops_no_request(server: Server, models: dict[str, Path]) -> None:
    server.deploy("blue", "1", models["ridge"])
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        with server.client() as client:
            for _ in range(2000):
                if stop.is_set():
                    return
                r = client.post("/score", json={"data": [ROWS.iloc[3].tolist()]})
                results.append((r.status_code, r.json().get("model_version", "")))

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 10
    while len(results) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.deploy("green", "2", models["ridge2"]).status_code == 200
    with server.client(admin=True) as admin:
        assert admin.put("/admin/traffic", json={"blue": 0, "green": 100}).status_code == 200
        seen = len(results)
        while len(results) < seen + 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert admin.delete("/admin/deployments/blue").status_code == 200
    stop.set()
    for w in workers:
        w.join()
    assert results and all(status == 200 for status, _ in results)
    assert {v for _, v in results} == {"1", "2"}
    assert results[-1][1] == "2"


def test_state_is_restored_after_restart(tmp_path: Path, models: dict[str, Path]) -> None:
    first = start_server(tmp_path / "state")
    first.deploy("green", "4", models["ridge"])
    assert first.stop() == 0
    second = start_server(tmp_path / "state")
    try:
        with second.client() as client:
            assert client.post("/score", json={"data": [ROWS.iloc[0].tolist()]}).json()["model_version"] == "4"
    finally:
        second.stop()


def test_prediction_logs_land_in_storage_and_survive_a_graceful_stop(
    tmp_path: Path, azurite: Azurite, models: dict[str, Path]
) -> None:
    running = start_server(
        tmp_path / "state",
        {"AzureWebJobsStorage": azurite.connection_string, "SCORING_LOGS_CONTAINER": "logs-graceful"},
    )
    running.deploy("blue", "3", models["ridge"])
    with running.client() as client:
        for i in range(25):
            client.post("/score", json={"data": [ROWS.iloc[i].tolist()]}, headers={"x-request-id": f"r{i}"})
    assert running.stop(signal.SIGTERM) == 0
    box = BlobServiceClient.from_connection_string(
        azurite.connection_string, api_version="2025-11-05"
    ).get_container_client("logs-graceful")
    records = []
    for blob in box.list_blobs():
        assert blob.name.startswith("test/") and blob.name.endswith(".jsonl")
        assert len(blob.name.split("/")) == 6
        records += [json.loads(line) for line in box.download_blob(blob.name).readall().splitlines()]
    assert sorted(r["request_id"] for r in records) == sorted(f"r{i}" for i in range(25))
    first = next(r for r in records if r["request_id"] == "r0")
    assert first["model_version"] == "3"
    assert first["request"] == {"data": [ROWS.iloc[0].tolist()]}
    assert first["response"]["predictions"][0] == pytest.approx(load(models["ridge"]).predict(ROWS.head(1))[0])
    assert first["response"]["model_version"] == "3" and first["time"].endswith("+00:00")
    assert first["latency_ms"] >= 0


def test_storage_down_keeps_serving_and_counts(tmp_path: Path, models: dict[str, Path]) -> None:
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    running = start_server(tmp_path / "state", {"AzureWebJobsStorage": dead})
    try:
        running.deploy("blue", "1", models["ridge"])
        with running.client() as client:
            statuses = [client.post("/score", json={"data": [ROWS.iloc[0].tolist()]}).status_code for _ in range(20)]
            assert statuses == [200] * 20
            deadline = time.monotonic() + 20
            metrics = ""
            while time.monotonic() < deadline:
                metrics = client.get("/metrics").text
                if "prediction_log_write_failures_total 0" not in metrics:
                    break
                time.sleep(0.2)
        assert "prediction_log_buffered 20" in metrics
        assert 'scoring_requests_total{version="1",status="200"} 20' in metrics
        assert "prediction_log_write_failures_total 0" not in metrics
    finally:
        running.stop(signal.SIGKILL)
