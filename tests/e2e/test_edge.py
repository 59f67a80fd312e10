"""The edge alone on devhost (stand-in orchestrators, real triggers, real backends, Azurite): auth, the HTTP API,
idempotent starts, Event Grid redelivery, the dashboard. Fast; the full loop is test_loop.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cli.storage import upload
from tests.e2e.conftest import Host, running_devhost
from tests.e2e.standin_core import IDS, write_standin_core
from tests.support.app import KEY, app_values, copy_app
from tests.support.azurite import Azurite, free_port

ids: dict[str, Any] = {}
exec(IDS, ids)  # the contract's id formulas, as the stand-in core computes them
MODEL = "diabetes-ridge"


@pytest.fixture(scope="module")
def edge(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    root = copy_app(tmp_path_factory.mktemp("edge-app"))
    write_standin_core(root)
    port = free_port()
    values = {
        **app_values(azurite.connection_string, root / ".mlops", port),
        "DURABLE_TASK_HUB": "EdgeHub",
        "INCOMING_CONTAINER": "edge-incoming",
        "QUARANTINE_CONTAINER": "edge-quarantine",
        "DATASETS_CONTAINER": "edge-datasets",
        "SCORING_LOGS_CONTAINER": "edge-scoring-logs",
    }
    with running_devhost(root, values, port) as host:
        yield host


def test_function_key_is_required(edge: Host) -> None:
    for path in ("/api/runs", "/api/runs/x", "/api/models", f"/api/models/{MODEL}/versions", "/api/dashboard"):
        assert httpx.get(f"{edge.base_url}{path}").status_code == 401, path
        assert httpx.get(f"{edge.base_url}{path}", params={"code": "wrong"}).status_code == 401, path
    assert httpx.post(f"{edge.base_url}/api/retrain").status_code == 401
    assert httpx.get(f"{edge.base_url}/api/runs", params={"code": KEY}).status_code == 200


def test_manual_retrain_runs_and_is_listed(edge: Host) -> None:
    response = edge.http.post("/api/retrain")
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["id"].startswith("retrain-manual-")
    assert started["statusQueryGetUri"].startswith(f"{edge.base_url}/runtime/webhooks/durabletask/instances/")
    run = edge.wait_finished(started["id"], timeout=60)
    assert run["status"] == "Completed" and run["outcome"] == "skipped_no_new_data"
    assert run["trigger"] == "http" and run["kind"] == "retrain"
    assert run["stages"][0]["name"] == "validate" and run["stages"][0]["status"] == "succeeded"
    listed = edge.get("/api/runs", limit=5).json()
    assert started["id"] in [r["id"] for r in listed]
    assert edge.get("/api/runs", limit="abc").status_code == 400
    assert edge.get("/api/runs/retrain-none").status_code == 404


def test_retrain_of_a_blob_is_idempotent(edge: Host) -> None:
    missing = edge.http.post("/api/retrain", json={"data": "edge-incoming/none.csv"})
    assert missing.status_code == 404
    bad = edge.http.post("/api/retrain", json={"data": "incoming/a.csv"})
    assert bad.status_code == 400 and "'edge-incoming' container" in bad.json()["error"]
    etag = upload(edge.values["AzureWebJobsStorage"], "edge-incoming", "drop.csv", b"age\n1\n").strip('"')
    expected = ids["retrain_id_for_blob"]("drop.csv", etag)
    first = edge.http.post("/api/retrain", json={"data": "edge-incoming/drop.csv"})
    second = edge.http.post("/api/retrain", json={"data": "edge-incoming/drop.csv"})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"] == expected
    run = edge.wait_finished(expected, timeout=60)
    assert run["data"] == "edge-incoming/drop.csv"
    runs = [r for r in edge.get("/api/runs", limit=500).json() if r["data"] == "edge-incoming/drop.csv"]
    assert [r["id"] for r in runs] == [expected]


def test_blob_drop_starts_one_retrain(edge: Host) -> None:
    etag = upload(edge.values["AzureWebJobsStorage"], "edge-incoming", "dropped.csv", b"age\n2\n").strip('"')
    expected = ids["retrain_id_for_blob"]("dropped.csv", etag)
    run = edge.wait_finished(expected, timeout=60)
    assert run["trigger"] == "blob" and run["data"] == "edge-incoming/dropped.csv"
    again = edge.http.post("/api/retrain", json={"data": "edge-incoming/dropped.csv"})
    assert again.status_code == 202 and again.json()["id"] == expected


def grid_event(version: Any, event_id: str, model: str = MODEL) -> dict[str, Any]:
    return {
        "id": event_id,
        "topic": "/local",
        "subject": f"models/{model}:{version}",
        "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
        "eventTime": "2026-01-01T00:00:00Z",
        "data": {"ModelName": model, "ModelVersion": version, "ModelTags": {}, "ModelProperties": {}},
        "dataVersion": "",
        "metadataVersion": "1",
    }


def test_event_grid_redelivery_starts_one_release(edge: Host) -> None:
    deliveries = [[grid_event(41, "a")], [grid_event("41", "b"), grid_event(41, "c")], [grid_event(41, "d", "other")]]
    for body in deliveries:
        response = edge.http.post(
            "/runtime/webhooks/eventgrid",
            params={"functionName": "on_model_registered"},
            json=body,
            headers={"aeg-event-type": "Notification"},
        )
        assert response.status_code == 202, response.text  # the Event Grid extension accepts deliveries with 202
    release = ids["release_id"](MODEL, "41")
    run = edge.wait_finished(release, timeout=60)
    assert run["outcome"] == "deployed" and run["model_version"] == "41" and run["trigger"] == "event"
    releases = [r for r in edge.get("/api/runs", limit=500).json() if r["kind"] == "release"]
    assert [r["id"] for r in releases] == [release]


def test_models_and_dashboard(edge: Host) -> None:
    listed = {m["name"]: m for m in edge.get("/api/models").json()}
    assert listed[MODEL]["default"] is True and listed[MODEL]["versions"] == 0 and listed[MODEL]["champion"] is None
    assert edge.get(f"/api/models/{MODEL}/versions").json() == []
    page = edge.get("/api/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "renderRuns" in page.text
