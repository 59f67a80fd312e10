"""The MLOps loop end to end on devhost: drop → retrain → registered → event → release → production serves it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from backends.storage import API_VERSION
from cli.commands import sample_rows
from ml.sample import breast_cancer_frame, diabetes_frame
from orchestrators.ids import release_id
from tests.e2e.conftest import Host, drop, production, wait_for
from tests.e2e.drops import bad_drops, csv, noisier
from tests.support.app import KEY
from tests.support.browser import rendered_dom

pytestmark = pytest.mark.slow
MODEL = "diabetes-ridge"
SAMPLE = "diabetes-e2e.csv"


@dataclass(frozen=True)
class Released:
    retrain: dict[str, Any]
    release: dict[str, Any]
    version: str


def champion(host: Host) -> str | None:
    models = host.get(f"/api/models/{MODEL}/versions").json()
    return next((m["version"] for m in models if m["stage"] == "champion"), None)


@pytest.fixture(scope="module")
def released(host: Host) -> Released:
    retrain_id = drop(host, SAMPLE, diabetes_frame().to_csv(index=False).encode())
    wait_for(f"run {retrain_id} appearing", lambda: host.run(retrain_id), 60)
    retrain = host.wait_finished(retrain_id)
    assert retrain["status"] == "Completed", retrain
    assert retrain["outcome"] == "registered", retrain
    version = retrain["model_version"]
    assert retrain["related"] == release_id(MODEL, version)
    assert [s["name"] for s in retrain["stages"]][:3] == ["validate", "accept", "train"]
    assert all(s["status"] == "succeeded" for s in retrain["stages"]), retrain["stages"]
    release = host.wait_finished(release_id(MODEL, version))
    assert release["outcome"] == "deployed", release
    assert release["related"] == retrain_id
    return Released(retrain, release, version)


def test_keys_are_required(host: Host) -> None:
    assert httpx.get(f"{host.base_url}/api/runs").status_code == 401
    assert httpx.get(f"{host.base_url}/api/runs", headers={"x-functions-key": "wrong"}).status_code == 401
    # the first /api/models builds the registry (imports MLflow): seconds on a loaded machine
    assert httpx.get(f"{host.base_url}/api/models", params={"code": KEY}, timeout=60).status_code == 200


def test_sample_drop_is_trained_registered_and_released(host: Host, released: Released) -> None:
    runs = host.get("/api/runs", limit=10).json()
    ids = [r["id"] for r in runs]
    assert released.retrain["id"] in ids and released.release["id"] in ids
    assert ids.index(released.release["id"]) < ids.index(released.retrain["id"])  # newest first
    url, key = production(host)
    scored = httpx.post(
        f"{url}/score", json={"data": sample_rows(2)}, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert scored.status_code == 200, scored.text
    assert scored.json()["model_version"] == released.version
    assert len(scored.json()["predictions"]) == 2
    models = host.get(f"/api/models/{MODEL}/versions").json()
    top = next(m for m in models if m["version"] == released.version)
    assert top["stage"] == "champion"
    assert top["run_id"] == released.retrain["id"]
    assert top["metrics"]["rmse"] > 0
    summary = next(m for m in host.get("/api/models").json() if m["name"] == MODEL)
    assert summary["default"] is True and summary["status"] == "ok" and summary["task"] == "regression"
    assert summary["champion"] == released.version and summary["versions"] >= 1
    one = host.get("/api/runs", model=MODEL).json()
    assert released.retrain["id"] in [r["id"] for r in one] and {r["model"] for r in one} == {MODEL}


def test_http_retrain_of_the_same_blob_is_the_same_run(host: Host, released: Released) -> None:
    response = host.http.post("/api/retrain", json={"data": f"incoming/{SAMPLE}"})
    assert response.status_code == 202, response.text
    assert response.json()["id"] == released.retrain["id"]
    assert "/runtime/webhooks/durabletask/instances/" in response.json()["statusQueryGetUri"]
    missing = host.http.post("/api/retrain", json={"data": "incoming/no-such.csv"})
    assert missing.status_code == 404 and "no-such.csv" in missing.json()["error"]
    bad = host.http.post("/api/retrain", content=b"{nope")
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]


def test_redelivered_model_registered_event_starts_one_release(host: Host, released: Released) -> None:
    def event(version: Any, event_id: str) -> dict[str, Any]:
        return {
            "id": event_id,
            "topic": "/local",
            "subject": f"models/{MODEL}:{version}",
            "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
            "eventTime": "2026-01-01T00:00:00Z",
            "data": {"ModelName": MODEL, "ModelVersion": version, "ModelTags": {}, "ModelProperties": {}},
            "dataVersion": "",
            "metadataVersion": "1",
        }

    for body in ([event(released.version, "again-1")], [event(int(released.version), "again-2")]):
        response = host.http.post(
            "/runtime/webhooks/eventgrid",
            params={"functionName": "on_model_registered"},
            json=body,
            headers={"aeg-event-type": "Notification"},
        )
        assert response.status_code in (200, 202), response.text
    runs = host.get("/api/runs", limit=500).json()
    releases = [r for r in runs if r["kind"] == "release" and r["model_version"] == released.version]
    assert [r["id"] for r in releases] == [release_id(MODEL, released.version)]
    assert releases[0]["outcome"] == "deployed"


def test_the_same_rows_uploaded_again_train_nothing(host: Host, released: Released) -> None:
    retrain_id = drop(host, "again-" + SAMPLE, diabetes_frame().to_csv(index=False).encode())
    run = host.wait_finished(retrain_id)
    assert run["outcome"] == "skipped_no_new_data", run
    assert f"same rows as incoming/{SAMPLE}@" in run["reason"]
    assert [s["name"] for s in run["stages"]] == ["validate", "accept"]
    assert champion(host) == released.version


def test_bad_drop_is_quarantined_and_the_champion_stays(host: Host, released: Released) -> None:
    frame = diabetes_frame().head(40).drop(columns=["s6"])
    frame.loc[3, "bmi"] = 900.0
    name = "broken-e2e.csv"
    retrain_id = drop(host, name, frame.to_csv(index=False).encode())
    wait_for(f"run {retrain_id} appearing", lambda: host.run(retrain_id), 60)
    run = host.wait_finished(retrain_id)
    assert run["outcome"] == "invalid_data", run
    assert "s6" in run["reason"] and "bmi" in run["reason"]
    with BlobServiceClient.from_connection_string(
        host.values["AzureWebJobsStorage"], api_version=API_VERSION
    ) as service:
        quarantined = [b.name for b in service.get_container_client("quarantine").list_blobs()]
        assert any(n.startswith(name) or n.endswith(name) for n in quarantined), quarantined
        assert len([n for n in quarantined if name in n]) >= 2, quarantined  # the drop and its report
        assert not service.get_blob_client("incoming", name).exists()
    assert champion(host) == released.version


def test_dashboard_page_is_served(host: Host, released: Released) -> None:
    page = httpx.get(f"{host.base_url}/api/dashboard", params={"code": KEY})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/api/runs" in page.text and "/api/models" in page.text


def test_the_dashboard_shows_every_run_in_a_browser_even_one_with_an_odd_id(host: Host, released: Released) -> None:
    """A run started through the Durable API with an id unlike ours (it fails at once: no input) blanks nothing."""
    odd = "odd id ü+1"
    started = host.http.post(f"/runtime/webhooks/durabletask/orchestrators/retrain/{quote(odd)}", json=None)
    assert started.status_code == 202, started.text
    wait_for("the odd run failing", lambda: (host.run(quote(odd)) or {}).get("status") == "Failed", 60)
    dom = rendered_dom(f"{host.base_url}/api/dashboard?code={KEY}")
    assert odd in dom
    assert f"{released.version}</td>" in dom  # the models table rendered too
    assert '<div id="error"></div>' in dom, "the page shows an error"


def registered_versions(host: Host) -> list[str]:
    return sorted((m["version"] for m in host.get(f"/api/models/{MODEL}/versions").json()), key=int)


def test_a_drop_that_does_not_help_is_not_better(host: Host, released: Released) -> None:
    before = registered_versions(host)
    retrain_id = drop(host, "noisier-e2e.csv", csv(noisier(300, seed=11)))
    run = host.wait_finished(retrain_id)
    assert run["outcome"] == "not_better", run
    assert "not better beyond noise" in run["reason"] and "champion RMSE" in run["reason"], run["reason"]
    assert [s["name"] for s in run["stages"]] == ["validate", "accept", "train", "evaluate"]
    assert registered_versions(host) == before
    assert champion(host) == released.version


def test_every_kind_of_bad_drop_is_quarantined_with_its_reason(host: Host, released: Released) -> None:
    before = registered_versions(host)
    catalogue = bad_drops()
    ids = {name: drop(host, name, data) for name, (data, _) in catalogue.items()}
    runs = {name: host.wait_finished(run_id, timeout=120) for name, run_id in ids.items()}
    for name, (_, phrase) in catalogue.items():
        run = runs[name]
        assert run["outcome"] == "invalid_data", (name, run)
        assert phrase in run["reason"], (name, run["reason"])
        assert run["stages"][0]["status"] == "failed", (name, run["stages"])
    with BlobServiceClient.from_connection_string(
        host.values["AzureWebJobsStorage"], api_version=API_VERSION
    ) as service:
        quarantine = service.get_container_client("quarantine")
        held = {b.name: b.metadata for b in quarantine.list_blobs(include=["metadata"])}
        incoming = {b.name for b in service.get_container_client("incoming").list_blobs()}
    for name in catalogue:
        assert name in held and f"{name}.report.json" in held, name
        assert held[name]["source"] == f"incoming/{name}" and held[name]["reason"], held[name]
        assert name not in incoming
    assert registered_versions(host) == before
    assert champion(host) == released.version


def test_no_release_episode_leaves_a_generator_error_in_the_log(host: Host, released: Released) -> None:
    log = host.log.read_text(errors="replace")
    assert "generator ignored GeneratorExit" not in log
    assert "warm: MlflowRegistry backends built" in log, "the warmup trigger did not run as the host came up"


def test_a_second_model_trains_from_its_own_folder_and_leaves_the_default_alone(host: Host, released: Released) -> None:
    default_before = registered_versions(host)
    first = drop(host, "breast-cancer/sample.csv", breast_cancer_frame().to_csv(index=False).encode())
    bad = drop(host, "breast-cancer/wrong-columns.csv", diabetes_frame().to_csv(index=False).encode())
    run = host.wait_finished(first)
    assert run["outcome"] == "registered" and run["model"] == "breast-cancer", run
    assert run["related"] is None  # registered only: the QA and production endpoints serve the default model
    rejected = host.wait_finished(bad)
    assert rejected["outcome"] == "invalid_data" and "missing column(s)" in rejected["reason"], rejected
    versions = host.get("/api/models/breast-cancer/versions").json()
    # registered (stage qa, where every new version starts); it becomes champion through a release, which models
    # other than the default get with endpoints of their own
    assert [(v["version"], v["stage"]) for v in versions] == [(run["model_version"], "qa")]
    assert versions[0]["metrics"]["auc"] > 0.95 and versions[0]["metrics"]["log_loss"] > 0
    summary = next(m for m in host.get("/api/models").json() if m["name"] == "breast-cancer")
    assert (summary["qa"], summary["champion"], summary["task"]) == (run["model_version"], None, "binary")
    assert "AUC meets the floor (at least 0.8)" in run["reason"]
    assert {r["id"] for r in host.get("/api/runs", model="breast-cancer", limit=500).json()} >= {first, bad}
    assert registered_versions(host) == default_before  # the default model: no new version, same champion
    assert champion(host) == released.version
