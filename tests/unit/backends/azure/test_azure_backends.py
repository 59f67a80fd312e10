"""The Azure backend driven through the real azure-ai-ml client, with a fake ARM at the HTTP transport boundary.

Assertions are on the requests the SDK sent (method, path, api-version, body fields) and on how our adapters
read the answers. The credential is fake: no Azure credential ever runs (no IMDS probe).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from backends.azure.endpoints import AzureEndpoints, model_version_of
from backends.azure.factory import build_azure_backends
from backends.azure.jobs import AzureJobs
from backends.azure.registry import AzureRegistry
from backends.errors import StageTransitionError, TransientBackendError
from backends.ports import TrainingRequest
from backends.settings import Settings
from tests.unit.backends.azure.fake_arm import WS, FakeArm, FakeCredential, transport

SETTINGS = Settings.from_env({"MLOPS_BACKEND": "azureml", "AZURE_SUBSCRIPTION_ID": "sub",
                              "AZURE_RESOURCE_GROUP": "rg", "AZUREML_WORKSPACE": "ws",
                              "AzureWebJobsStorage__accountName": "acct"})


@pytest.fixture
def arm() -> FakeArm:
    return FakeArm()


@pytest.fixture
def backends(arm: FakeArm) -> Iterator[tuple[AzureJobs, AzureRegistry, AzureEndpoints]]:
    jobs, registry, endpoints = build_azure_backends(SETTINGS, None,  # type: ignore[arg-type]
                                                     credential=FakeCredential(), transport=transport(arm),
                                                     retry_total=0)
    assert isinstance(jobs, AzureJobs) and isinstance(registry, AzureRegistry)
    assert isinstance(endpoints, AzureEndpoints)
    jobs.code = WS + "/codes/train-code/versions/1"  # a code asset id: no upload to storage in tests
    endpoints.scoring_code = WS + "/codes/score-code/versions/1"
    yield jobs, registry, endpoints


def test_training_job_request(backends: Any, arm: FakeArm) -> None:
    jobs, _, _ = backends
    status = jobs.submit(TrainingRequest("train-abc", "3", ["datasets/drops/a.csv", "datasets/drops/b.csv"],
                                         {"alpha": "2"}))
    assert status.job_id == "train-abc" and status.state == "queued"
    (put,) = [s for s in arm.seen if s.method == "PUT" and s.path.endswith("/jobs/train-abc")]
    assert put.query["api-version"] == ["2025-01-01-preview"]
    assert put.headers["Authorization"] == "Bearer fake-token"
    body = put.body["properties"]
    assert body["jobType"] == "Command"
    assert body["command"] == ("python -m ml.train --data ${{inputs.data0}} ${{inputs.data1}} "
                               "--output ${{outputs.model_output}} --alpha 2.0")
    assert body["inputs"]["data1"] == {"uri": "azureml://datastores/workspaceblobstore/paths/drops/b.csv",
                                       "jobInputType": "uri_file"}
    assert body["outputs"]["model_output"]["jobOutputType"] == "uri_folder"
    assert body["computeId"] == WS + "/computes/cpu-cluster"
    assert body["environmentId"] == WS + "/environments/mlops-train/versions/1"
    assert body["codeId"] == WS + "/codes/train-code/versions/1"
    assert body["experimentName"] == "diabetes-ridge"


def test_resubmitting_a_job_is_a_no_op(backends: Any, arm: FakeArm) -> None:
    jobs, _, _ = backends
    jobs.submit(TrainingRequest("train-once", "1", ["datasets/drops/a.csv"]))
    jobs.submit(TrainingRequest("train-once", "1", ["datasets/drops/a.csv"]))
    assert len(arm.bodies("PUT", "/jobs/train-once$")) == 1


@pytest.mark.parametrize(("remote", "state"), [("Running", "running"), ("Completed", "completed"),
                                               ("Failed", "failed"), ("Canceled", "canceled"),
                                               ("Queued", "queued"), ("NotResponding", "failed")])
def test_job_status_mapping(backends: Any, arm: FakeArm, remote: str, state: str) -> None:
    jobs, _, _ = backends
    jobs.submit(TrainingRequest("train-s", "1", ["datasets/drops/a.csv"]))
    arm.resources[(WS + "/jobs/train-s").lower()]["properties"]["status"] = remote
    status = jobs.status("train-s")
    assert status.state == state
    assert status.url.startswith("https://ml.azure.com/runs/train-s")
    assert jobs.model_source("train-s") == "azureml://jobs/train-s/outputs/model_output/paths/model/"


def test_server_errors_are_transient(backends: Any, arm: FakeArm) -> None:
    jobs, _, _ = backends
    arm.route = lambda method, path, body: (503, {"error": {"code": "ServiceUnavailable", "message": "busy"}})
    with pytest.raises(TransientBackendError, match="HTTP 503"):
        jobs.status("train-x")


def test_registration_is_mlflow_typed_tagged_and_idempotent(backends: Any, arm: FakeArm) -> None:
    jobs, registry, _ = backends
    tags = {"job_id": "train-abc", "run_id": "retrain-1", "dataset_version": "3", "rmse": "54.2"}
    first = registry.register("diabetes-ridge", jobs.model_source("train-abc"), tags)
    again = registry.register("diabetes-ridge", jobs.model_source("train-abc"), tags)
    assert first.version == again.version == "1" and first.stage == "qa"
    (put,) = [s for s in arm.seen if s.method == "PUT" and "/models/diabetes-ridge/versions/" in s.path]
    assert put.query["api-version"] == ["2023-08-01-preview"]
    body = put.body["properties"]
    assert body["modelType"] == "mlflow_model"
    assert body["modelUri"] == "azureml://jobs/train-abc/outputs/model_output/paths/model/"
    assert body["tags"] == {**tags, "stage": "qa"}
    assert body["properties"] == {"job_id": "train-abc", "run_id": "retrain-1"}


def test_stages_move_along_the_transition_table(backends: Any) -> None:
    jobs, registry, _ = backends
    for job in ("train-1", "train-2"):
        registry.register("diabetes-ridge", jobs.model_source(job), {"job_id": job})
    for stage in ("production", "champion"):
        registry.set_stage("diabetes-ridge", "1", stage)
    assert registry.champion("diabetes-ridge").version == "1"  # type: ignore[union-attr]
    with pytest.raises(StageTransitionError, match="from 'qa' to 'champion'"):
        registry.set_stage("diabetes-ridge", "2", "champion")
    registry.set_stage("diabetes-ridge", "2", "production")
    registry.set_stage("diabetes-ridge", "2", "champion")
    stages = {v.version: v.stage for v in registry.list("diabetes-ridge")}
    assert stages == {"2": "champion", "1": "archived"}
    assert [v.version for v in registry.list("diabetes-ridge")] == ["2", "1"]


def test_qa_is_a_managed_endpoint_and_production_kubernetes(backends: Any, arm: FakeArm) -> None:
    jobs, registry, endpoints = backends
    model = registry.register("diabetes-ridge", jobs.model_source("train-abc"), {"job_id": "train-abc"})
    qa = endpoints.deploy("qa", "blue", model)
    prod = endpoints.deploy("production", "green", model)
    endpoint_puts = {s.path.rsplit("/", 1)[-1]: s.body for s in arm.seen
                     if s.method == "PUT" and s.path.endswith(("/diabetes-qa", "/diabetes-prod"))}
    assert endpoint_puts["diabetes-qa"]["properties"]["authMode"] == "Key"
    assert endpoint_puts["diabetes-prod"]["properties"]["compute"] == WS + "/computes/aks-prod"
    (qa_put,) = arm.bodies("PUT", "/onlineEndpoints/diabetes-qa/deployments/blue$")
    assert qa_put["properties"]["endpointComputeType"] == "Managed"
    assert qa_put["properties"]["model"] == WS + "/models/diabetes-ridge/versions/1"
    assert qa_put["sku"]["capacity"] == 1 and qa_put["properties"]["instanceType"] == "Standard_DS3_v2"
    (prod_put,) = arm.bodies("PUT", "/onlineEndpoints/diabetes-prod/deployments/green$")
    assert prod_put["properties"]["endpointComputeType"] == "Kubernetes"
    assert prod_put["properties"]["codeConfiguration"]["scoringScript"] == "score.py"
    assert qa.deployments == {"blue": "1"} and prod.deployments == {"green": "1"}
    assert qa.key == "primary-secret" and qa.scoring_url.endswith("/score")
    assert "key" not in qa.public()


def test_blue_green_traffic_and_rollback(backends: Any, arm: FakeArm) -> None:
    jobs, registry, endpoints = backends
    v1 = registry.register("diabetes-ridge", jobs.model_source("train-1"), {"job_id": "train-1"})
    v2 = registry.register("diabetes-ridge", jobs.model_source("train-2"), {"job_id": "train-2"})
    endpoints.deploy("production", "blue", v1)
    endpoints.set_traffic("production", {"blue": 100})
    endpoints.deploy("production", "green", v2)
    shifted = endpoints.set_traffic("production", {"blue": 0, "green": 100})
    assert shifted.serving_version == "2"
    restored = endpoints.set_traffic("production", {"blue": 100, "green": 0})
    after = endpoints.remove("production", "green")
    assert restored.serving_version == "1" and after.deployments == {"blue": "1"}
    traffic_puts = [b["properties"]["traffic"] for b in arm.bodies("PUT", "/onlineEndpoints/diabetes-prod$")]
    shift, back = traffic_puts[-2:]  # the SDK leaves 0% slots out of the map it sends
    assert (shift.get("blue", 0), shift["green"]) == (0, 100)
    assert (back["blue"], back.get("green", 0)) == (100, 0)
    assert [s.method for s in arm.seen if s.path.endswith("/deployments/green")][-1] == "DELETE"
    assert any(s.path.endswith("/diabetes-prod/listKeys") and s.method == "POST" for s in arm.seen)


def test_model_reference_forms() -> None:
    assert model_version_of(WS + "/models/diabetes-ridge/versions/12") == "12"
    assert model_version_of("azureml:diabetes-ridge:7") == "7"
