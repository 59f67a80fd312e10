"""The MLOps loop end to end on devhost: drop → retrain → registered → event → release → production serves it."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
from tests.e2e.conftest import Host, drop, production, running_devhost, wait_for
from tests.e2e.drops import bad_drops, csv, noisier
from tests.e2e.specs import iris_frame, write_iris_specs
from tests.support.app import KEY, app_values, copy_app
from tests.support.azurite import Azurite, free_port
from tests.support.browser import rendered_dom

pytestmark = pytest.mark.slow
MODEL = "diabetes-ridge"
SAMPLE = "diabetes-e2e.csv"


@pytest.fixture(scope="module")
def host(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """devhost serving a copy of the app to which two models were added by writing their spec folders only."""
    root = copy_app(tmp_path_factory.mktemp("app"))
    write_iris_specs(root / "models")
    port = free_port()
    with running_devhost(root, app_values(azurite.connection_string, root / ".mlops", port), port) as running:
        yield running


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


def test_a_second_model_is_trained_and_released_to_its_own_endpoints_and_leaves_the_default_alone(
    host: Host, released: Released
) -> None:
    default_before = registered_versions(host)
    first = drop(host, "breast-cancer/sample.csv", breast_cancer_frame().to_csv(index=False).encode())
    bad = drop(host, "breast-cancer/wrong-columns.csv", diabetes_frame().to_csv(index=False).encode())
    run = host.wait_finished(first)
    assert run["outcome"] == "registered" and run["model"] == "breast-cancer", run
    assert "AUC meets the floor (at least 0.8)" in run["reason"]
    rejected = host.wait_finished(bad)
    assert rejected["outcome"] == "invalid_data" and "missing column(s)" in rejected["reason"], rejected
    release = host.wait_finished(release_id("breast-cancer", run["model_version"]))
    assert release["outcome"] == "deployed", release
    versions = host.get("/api/models/breast-cancer/versions").json()
    assert [(v["version"], v["stage"]) for v in versions] == [(run["model_version"], "champion")]
    assert versions[0]["metrics"]["auc"] > 0.95 and versions[0]["metrics"]["log_loss"] > 0
    summary = next(m for m in host.get("/api/models").json() if m["name"] == "breast-cancer")
    assert (summary["champion"], summary["task"]) == (run["model_version"], "binary")
    assert {r["id"] for r in host.get("/api/runs", model="breast-cancer", limit=500).json()} >= {first, bad}
    # its own endpoints, with their own addresses and keys; the default model's production is untouched
    endpoints = json.loads((host.home / "endpoints.json").read_text())
    own = endpoints["breast-cancer-production"]
    assert own["url"] != endpoints["production"]["url"] and own["key"] != endpoints["production"]["key"]
    rows = breast_cancer_frame().drop(columns=["target"]).head(3).to_numpy().tolist()
    scored = httpx.post(
        f"{own['url'].rstrip('/')}/score", json={"data": rows}, headers={"Authorization": f"Bearer {own['key']}"}
    )
    assert scored.status_code == 200 and scored.json()["model_version"] == run["model_version"], scored.text
    assert set(scored.json()["predictions"]) <= {0.0, 1.0}
    assert registered_versions(host) == default_before and champion(host) == released.version
    url, key = production(host)
    default_answer = httpx.post(
        f"{url}/score", json={"data": sample_rows(1)}, headers={"Authorization": f"Bearer {key}"}
    )
    assert default_answer.json()["model_version"] == released.version


def test_models_added_as_spec_folders_run_at_once_and_a_failing_release_leaves_the_others_alone(
    host: Host, released: Released
) -> None:
    """Two models added by writing spec folders only (``tests.e2e.specs``), dropped for at the same time as the
    default model: each is trained and registered; one is released to its own endpoints, the other's release fails
    its QA tests, and neither changes what the default model serves."""
    data = iris_frame().to_csv(index=False).encode()
    runs = {
        "iris-forest": drop(host, "iris-forest/iris.csv", data),
        "iris-strict": drop(host, "iris-strict/iris.csv", data),
        MODEL: drop(host, "noisier-at-once.csv", csv(noisier(300, 11))),
    }
    finished = {model: host.wait_finished(run, timeout=240) for model, run in runs.items()}
    for model in ("iris-forest", "iris-strict"):
        assert finished[model]["outcome"] == "registered" and finished[model]["model"] == model, finished[model]
        assert "accuracy meets the floor (at least 0.8)" in finished[model]["reason"]
    forest = host.wait_finished(release_id("iris-forest", finished["iris-forest"]["model_version"]), timeout=240)
    strict = host.wait_finished(release_id("iris-strict", finished["iris-strict"]["model_version"]), timeout=240)
    assert forest["outcome"] == "deployed", forest
    assert strict["outcome"] == "qa_failed" and "p99 latency" in strict["reason"], strict
    own = json.loads((host.home / "endpoints.json").read_text())["iris-forest-production"]
    rows = iris_frame().drop(columns=["species"]).head(4).to_numpy().tolist()
    scored = httpx.post(f"{own['url']}/score", json={"data": rows}, headers={"Authorization": f"Bearer {own['key']}"})
    assert scored.status_code == 200 and set(scored.json()["predictions"]) <= {0.0, 1.0, 2.0}, scored.text
    listed = {m["name"]: m for m in host.get("/api/models").json()}
    assert listed["iris-forest"]["champion"] == forest["model_version"]
    assert listed["iris-strict"]["champion"] is None  # rejected in QA: no champion, production never touched
    assert "iris-strict-production" not in json.loads((host.home / "endpoints.json").read_text())
    default_run = finished[MODEL]
    assert default_run["status"] == "Completed" and default_run["model"] == MODEL, default_run
    url, key = production(host)
    answer = httpx.post(f"{url}/score", json={"data": sample_rows(1)}, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200 and answer.json()["model_version"] in {
        released.version,
        *([default_run["model_version"]] if default_run["outcome"] == "registered" else []),
    }
