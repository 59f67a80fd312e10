"""A release on devhost against a fake Azure Resource Manager whose deployments take many polls to succeed.

Black box: devhost runs the whole app as a subprocess with ``MLOPS_BACKEND=azureml``; the real ``MLClient`` and
the app's ARM client talk HTTPS to the fake ARM (``AZUREML_ARM_ENDPOINT``, trusted through ``REQUESTS_CA_BUNDLE``),
authenticated by ``AZURE_TOKEN_CREDENTIALS=AzureCliCredential`` with a stand-in ``az``. Each endpoint's
``scoringUri`` is a real scoring server on 127.0.0.1 that the fake ARM loads a deployment into when its operation
succeeds (as Azure ML's data plane would), so the release's API tests run for real.

Shown: no activity runs longer than a few seconds (from the orchestration's history), the recipe polls each
operation with durable timers, and each endpoint's traffic PUT reached ARM only after its deployment had
succeeded (from the fake ARM's request log).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from backends.azure.endpoints import model_version_of
from orchestrators.ids import release_id
from tests.e2e.conftest import Host, running_devhost, stop_process, wait_for
from tests.support.app import ROOT, app_values, copy_app
from tests.support.azurite import Azurite, free_port
from tests.unit.backends.azure.arm_server import arm_server, make_tls, stand_in_az
from tests.unit.backends.azure.fake_arm import WS, ArmSimulator, Seen

pytestmark = pytest.mark.slow
MODEL = "diabetes-ridge"
POLLS = 6  # every deployment, traffic change and removal answers "Updating" this many times before it ends
KEY, ADMIN_KEY = "endpoint-primary-key", "endpoint-admin-key"
LONGEST_ACTIVITY_S = 8.0  # the first also imports azure-ai-ml; a blocking deploy would take 6 polls x 5 s


@dataclass
class ScoringServer:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    def admin(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method, self.url + path, json=body, timeout=30, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ScoringServer]]:
    """The two endpoints' containers: scoring servers behind the endpoint key (the front end's check)."""
    started: dict[str, ScoringServer] = {}
    try:
        for arm_name in ("diabetes-qa", "diabetes-prod"):
            folder = tmp_path_factory.mktemp(arm_name)
            (folder / "keys.json").write_text(json.dumps({"key": KEY, "admin_key": ADMIN_KEY}))
            port = free_port()
            log = (folder / "server.log").open("wb")
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scoring.server",
                    "--name",
                    arm_name,
                    "--port",
                    str(port),
                    "--host",
                    "127.0.0.1",
                    "--state-dir",
                    str(folder),
                    "--keys-file",
                    str(folder / "keys.json"),
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            started[arm_name] = ScoringServer(arm_name, f"http://127.0.0.1:{port}", process)
        for server in started.values():
            wait_for(f"scoring server {server.name}", lambda s=server: _answers(s.url), 60)  # type: ignore[misc]
        yield started
    finally:
        for server in started.values():
            stop_process(server.process)


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def data_plane(servers: dict[str, ScoringServer], model_dir: Path) -> Any:
    """What Azure ML does once an operation succeeded: load the deployment's model, route the endpoint's traffic."""

    def prepare(key: str, resource: dict[str, Any] | None) -> None:
        found = re.search(r"/onlineendpoints/([^/]+)(?:/deployments/([^/]+))?$", key)
        assert found, key
        server = servers[found[1]]
        props = (resource or {}).get("properties", {})
        if found[2] and (resource is None or props.get("provisioningState") != "Succeeded"):
            server.admin("DELETE", f"/admin/deployments/{found[2]}")
        elif found[2]:
            version = model_version_of(str(props["model"]))
            answer = server.admin(
                "PUT", f"/admin/deployments/{found[2]}", {"version": version, "model_dir": str(model_dir)}
            )
            assert answer.status_code == 200, answer.text
        elif props.get("traffic"):
            deployed = server.admin("GET", "/admin/state").json()["deployments"]
            wanted = {slot: int(props["traffic"].get(slot, 0)) for slot in deployed}
            answer = server.admin("PUT", "/admin/traffic", wanted)
            assert answer.status_code == 200, answer.text

    return prepare


def seed_model(simulator: ArmSimulator, version: str) -> None:
    """A registered MLflow model version, as the registry holds one after the retrain registered it."""
    path = f"{WS}/models/{MODEL}/versions/{version}"
    simulator.route(
        "PUT",
        path,
        {
            "properties": {
                "modelType": "mlflow_model",
                "modelUri": f"azureml://jobs/train-{version}/outputs/model_output/paths/model/",
                "tags": {"stage": "qa", "job_id": f"train-{version}", "run_id": "retrain-seeded"},
                "properties": {"job_id": f"train-{version}"},
                "isAnonymous": False,
                "isArchived": False,
            }
        },
    )


@dataclass
class Released:
    host: Host
    simulator: ArmSimulator
    run: dict[str, Any]
    history: list[dict[str, Any]]


@pytest.fixture(scope="module")
def released(
    azurite: Azurite, servers: dict[str, ScoringServer], ridge_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Released]:
    base = tmp_path_factory.mktemp("azure-release")
    tls = make_tls(base / "tls")
    simulator = ArmSimulator(
        polls=POLLS,
        keys={"primaryKey": KEY, "secondaryKey": "unused"},
        scoring_uri=lambda name: servers[name].url + "/score",
        prepare=data_plane(servers, ridge_model),
    )
    seed_model(simulator, "1")
    # a datasets container of its own: the model's release lock (releases/<model>.json) lives there, and the session's
    # Azurite has seen other releases of the same model, whose newest version would supersede this one's
    datasets = f"azrel-{uuid.uuid4().hex[:12]}"
    _containers(azurite.connection_string, "incoming", "quarantine", datasets, "scoring-logs")
    with arm_server(simulator, tls) as arm:
        root = copy_app(base / "app")
        port = free_port()
        values = {
            **app_values(azurite.connection_string, root / ".mlops", port),
            "MLOPS_BACKEND": "azureml",
            "DATASETS_CONTAINER": datasets,
            "AZURE_SUBSCRIPTION_ID": "sub",
            "AZURE_RESOURCE_GROUP": "rg",
            "AZUREML_WORKSPACE": "ws",
            "AZUREML_ARM_ENDPOINT": arm.url,
            "DEPLOY_POLL_SECONDS": "0.2",
            "AZURE_TOKEN_CREDENTIALS": "AzureCliCredential",
            "REQUESTS_CA_BUNDLE": str(tls.ca_bundle),
            "PATH": f"{stand_in_az(base / 'bin')}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
            f"{os.environ.get('PATH', '')}",
        }
        with running_devhost(root, values, port) as host:
            event = [
                {
                    "id": "registered-1",
                    "topic": WS,
                    "subject": f"models/{MODEL}:1",
                    "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
                    "eventTime": "2026-01-01T00:00:00Z",
                    "dataVersion": "",
                    "metadataVersion": "1",
                    "data": {"ModelName": MODEL, "ModelVersion": "1", "ModelTags": {}, "ModelProperties": {}},
                }
            ]
            answer = host.http.post(
                "/runtime/webhooks/eventgrid",
                params={"functionName": "on_model_registered"},
                json=event,
                headers={"aeg-event-type": "Notification"},
            )
            assert answer.status_code in (200, 202), answer.text
            instance = release_id(MODEL, "1")
            wait_for("the release appearing", lambda: host.run(instance), 60)
            run = host.wait_finished(instance, timeout=240)
            status = host.http.get(
                f"/runtime/webhooks/durabletask/instances/{instance}", params={"showHistory": "true"}
            ).json()
            yield Released(host, simulator, run, list(status["historyEvents"]))


def _containers(connection_string: str, *names: str) -> None:
    """The app's containers, as the infrastructure creates them with the storage account."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection_string)
    for name in names:
        with contextlib.suppress(ResourceExistsError):
            service.create_container(name)


def _seconds(event: dict[str, Any]) -> float:
    started = datetime.fromisoformat(str(event["ScheduledTime"]).replace("Z", "+00:00"))
    return (datetime.fromisoformat(str(event["Timestamp"]).replace("Z", "+00:00")) - started).total_seconds()


def test_the_release_deploys_through_arm_and_serves_the_version(
    released: Released, servers: dict[str, ScoringServer]
) -> None:
    assert released.run["outcome"] == "deployed", json.dumps(released.run, indent=1)
    assert [s["name"] for s in released.run["stages"]] == [
        "wait",
        "deploy_qa",
        "test_qa",
        "deploy_production",
        "test_production",
        "promote",
    ]
    scored = requests.post(
        servers["diabetes-prod"].url + "/score",
        json={"data": [[59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]]},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    assert scored.status_code == 200 and scored.json()["model_version"] == "1"
    tags = released.simulator.resources[f"{WS}/models/{MODEL}/versions/1".lower()]["properties"]["tags"]
    assert tags["stage"] == "champion"


def test_no_activity_runs_longer_than_a_few_seconds(released: Released) -> None:
    completed = [e for e in released.history if e["EventType"] in ("TaskCompleted", "TaskFailed")]
    durations = sorted(((_seconds(e), e["FunctionName"]) for e in completed), reverse=True)
    assert durations and durations[0][0] < LONGEST_ACTIVITY_S, durations[:5]
    polls = [e for e in completed if e["FunctionName"] == "endpoint_operation_status"]
    timers = [e for e in released.history if e["EventType"] == "TimerFired"]
    assert len(polls) >= 4 * POLLS, "each deployment and traffic change was polled by the orchestration"
    assert len(timers) >= len(polls), "with a durable timer before each check"


def test_traffic_moves_only_after_the_deployment_succeeded(released: Released) -> None:
    log = released.simulator.seen
    for endpoint in ("diabetes-qa", "diabetes-prod"):
        deployment = re.compile(rf"/onlineEndpoints/{endpoint}/deployments/(blue|green)$", re.I)
        (put,) = [s for s in log if s.method == "PUT" and deployment.search(s.path)]
        traffic = [
            i
            for i, s in enumerate(log)
            if s.method == "PUT"
            and s.path.endswith(f"/{endpoint}")
            and (s.body or {}).get("properties", {}).get("traffic")
        ]
        assert traffic, f"no traffic change reached {endpoint}"
        operation = _operation_of(log, put)
        answers = [s.answer["status"] for s in log if s.method == "GET" and operation in s.path.lower()]
        assert answers[:POLLS] == ["Updating"] * POLLS and answers[-1] == "Succeeded", answers
        assert set(answers[:-1]) == {"Updating"}
        succeeded = next(
            i
            for i, s in enumerate(log)
            if s.method == "GET" and operation in s.path.lower() and s.answer["status"] == "Succeeded"
        )
        assert succeeded < traffic[0], f"{endpoint}: traffic PUT before the deployment succeeded"
        ready = [
            i
            for i, s in enumerate(log[: traffic[0]])
            if s.method == "GET"
            and deployment.search(s.path)
            and s.status == 200
            and s.answer["properties"]["provisioningState"] == "Succeeded"
        ]
        assert ready, f"{endpoint}: traffic moved without reading the deployment's Succeeded state"


def _operation_of(log: list[Seen], put: Seen) -> str:
    """The async operation id the fake ARM gave for ``put`` (from the deployment it stored)."""
    stored = put.answer["properties"]["properties"]["AzureAsyncOperationUri"]
    return str(stored).split("?", 1)[0].rsplit("/", 1)[-1].lower()


def test_a_production_deployment_that_fails_rolls_back_with_arms_message(
    released: Released, servers: dict[str, ScoringServer]
) -> None:
    """Runs last: a second release whose production deployment ARM fails; traffic never moves to it."""
    message = "User container has crashed or terminated: liveness probe failed"
    released.simulator.failures = {"/diabetes-prod/deployments/green": {"code": "ResourceNotReady", "message": message}}
    seed_model(released.simulator, "2")
    before = len(released.simulator.seen)
    event = [
        {
            "id": "registered-2",
            "topic": WS,
            "subject": f"models/{MODEL}:2",
            "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
            "eventTime": "2026-01-01T00:00:00Z",
            "dataVersion": "",
            "metadataVersion": "1",
            "data": {"ModelName": MODEL, "ModelVersion": 2, "ModelTags": {}, "ModelProperties": {}},
        }
    ]
    answer = released.host.http.post(
        "/runtime/webhooks/eventgrid",
        params={"functionName": "on_model_registered"},
        json=event,
        headers={"aeg-event-type": "Notification"},
    )
    assert answer.status_code in (200, 202), answer.text
    instance = release_id(MODEL, "2")
    wait_for("the second release appearing", lambda: released.host.run(instance), 60)
    run = released.host.wait_finished(instance, timeout=240)
    assert run["outcome"] == "rolled_back", json.dumps(run, indent=1)
    assert (
        f"production deployment failed: deployment green of diabetes-prod: ResourceNotReady: {message}" in run["reason"]
        and "version 1 still serves" in run["reason"]
    )
    later = released.simulator.seen[before:]
    prod_traffic = [
        s.body["properties"]["traffic"] for s in later if s.method == "PUT" and s.path.endswith("/diabetes-prod")
    ]
    assert all("green" not in t for t in prod_traffic), prod_traffic
    assert any(s.method == "DELETE" and s.path.endswith("/diabetes-prod/deployments/green") for s in later)
    scored = requests.post(
        servers["diabetes-prod"].url + "/score",
        json={"data": [[59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]]},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    assert scored.json()["model_version"] == "1"
    tags = released.simulator.resources[f"{WS}/models/{MODEL}/versions/2".lower()]["properties"]["tags"]
    assert tags["stage"] == "rejected"
