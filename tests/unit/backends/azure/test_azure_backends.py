"""The Azure backend driven through the real azure-ai-ml client, with a fake ARM at the HTTP transport boundary.

Assertions are on the requests the SDK sent (method, path, api-version, body fields) and on how our adapters
read the answers. The credential is fake: no Azure credential ever runs (no IMDS probe).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from backends.azure.endpoints import AzureEndpoints, model_version_of
from backends.azure.factory import build_azure_backends
from backends.azure.jobs import AzureJobs
from backends.azure.registry import AzureRegistry
from backends.azure.scoring_image import ScoringImage, stage_build_context
from backends.errors import OperationRefused, StageTransitionError, TransientBackendError
from backends.ports import (
    BlobInfo,
    DeploymentRequest,
    Operation,
    OperationKind,
    OperationState,
    OperationStatus,
    TrainingRequest,
)
from backends.settings import Settings
from tests.unit.backends import contracts
from tests.unit.backends.azure.fake_arm import WS, FakeArm, FakeCredential, transport

IDENTITY = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ep"
ENV = {
    "MLOPS_BACKEND": "azureml",
    "AZURE_SUBSCRIPTION_ID": "sub",
    "AZURE_RESOURCE_GROUP": "rg",
    "AZUREML_WORKSPACE": "ws",
    "AZUREML_ENDPOINT_IDENTITY_ID": IDENTITY,
    "AZUREML_ENDPOINT_IDENTITY_CLIENT_ID": "endpoint-client-id",
    "AzureWebJobsStorage__accountName": "acct",
}
SETTINGS = Settings.from_env(ENV)


@dataclass
class MemoryStorage:
    """The Storage port in memory, for what the Azure backends store in the app's account (the image context)."""

    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)
    staged: dict[tuple[str, str, str], bytes] = field(default_factory=dict)

    def ensure_containers(self, names: tuple[str, ...]) -> None:
        pass

    def read(self, container: str, name: str) -> tuple[bytes, BlobInfo]:
        return self.blobs[(container, name)], self.info(container, name)

    def info(self, container: str, name: str) -> BlobInfo:
        data = self.blobs[(container, name)]
        return BlobInfo(container, name, hashlib.sha1(data).hexdigest(), len(data), "")

    def write(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        metadata: dict[str, str] | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> BlobInfo:
        self.blobs[(container, name)] = data
        return self.info(container, name)

    def list(self, container: str, prefix: str = "") -> list[BlobInfo]:
        return [self.info(c, n) for c, n in self.blobs if c == container and n.startswith(prefix)]

    def read_range(self, container: str, name: str, offset: int, length: int, etag: str | None = None) -> bytes:
        return self.blobs[(container, name)][offset : offset + length]

    def stage_block(self, container: str, name: str, block_id: str, data: bytes) -> None:
        self.staged[(container, name, block_id)] = data

    def commit_blocks(
        self, container: str, name: str, block_ids: Sequence[str], *, metadata: dict[str, str] | None = None
    ) -> BlobInfo:
        return self.write(container, name, b"".join(self.staged[(container, name, b)] for b in block_ids))

    def delete(self, container: str, name: str) -> None:
        self.blobs.pop((container, name), None)

    def url(self, container: str, name: str) -> str:
        return f"https://acct.blob.core.windows.net/{container}/{name}"


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def arm() -> FakeArm:
    return FakeArm()


@pytest.fixture
def backends(arm: FakeArm, storage: MemoryStorage) -> Iterator[tuple[AzureJobs, AzureRegistry, AzureEndpoints]]:
    jobs, registry, endpoints = build_azure_backends(
        SETTINGS, storage, credential=FakeCredential(), transport=transport(arm), retry_total=0
    )
    assert isinstance(jobs, AzureJobs) and isinstance(registry, AzureRegistry)
    assert isinstance(endpoints, AzureEndpoints)
    jobs.code = WS + "/codes/train-code/versions/1"  # a code asset id: no upload to storage in tests
    yield jobs, registry, endpoints


def test_training_job_request(backends: Any, arm: FakeArm) -> None:
    jobs, _, _ = backends
    status = jobs.submit(
        TrainingRequest("train-abc", "3", ["datasets/drops/a.csv", "datasets/drops/b.csv"], {"alpha": "2"})
    )
    assert status.job_id == "train-abc" and status.state == "queued"
    (put,) = [s for s in arm.seen if s.method == "PUT" and s.path.endswith("/jobs/train-abc")]
    assert put.query["api-version"] == ["2025-01-01-preview"]
    assert put.headers["Authorization"] == "Bearer fake-token"
    body = put.body["properties"]
    assert body["jobType"] == "Command"
    assert body["command"] == (
        "python -m ml.train --data ${{inputs.data0}} ${{inputs.data1}} --output ${{outputs.model_output}} --alpha 2.0"
    )
    assert body["inputs"]["data1"] == {
        "uri": "azureml://datastores/workspaceblobstore/paths/drops/b.csv",
        "jobInputType": "uri_file",
    }
    assert body["outputs"]["model_output"]["jobOutputType"] == "uri_folder"
    assert body["computeId"] == WS + "/computes/cpu-cluster"
    assert body["environmentId"] == WS + "/environments/mlops-train/versions/1"
    assert body["codeId"] == WS + "/codes/train-code/versions/1"
    assert body["experimentName"] == "diabetes-ridge"


def test_a_models_spec_travels_with_the_job_and_names_its_experiment(backends: Any, arm: FakeArm) -> None:
    jobs, _, _ = backends
    paths = ["datasets/models/breast-cancer/drops/a.csv"]
    jobs.submit(TrainingRequest("train-bc", "1", paths, {"spec": "models/breast-cancer"}))
    (put,) = [s for s in arm.seen if s.method == "PUT" and s.path.endswith("/jobs/train-bc")]
    body = put.body["properties"]
    assert body["command"] == (
        "python -m ml.train --data ${{inputs.data0}} --output ${{outputs.model_output}} --spec models/breast-cancer"
    )
    assert body["inputs"]["data0"]["uri"] == (
        "azureml://datastores/workspaceblobstore/paths/models/breast-cancer/drops/a.csv"
    )
    assert body["experimentName"] == "breast-cancer"
    with pytest.raises(ValueError, match="a folder of the app's code"):
        jobs.submit(TrainingRequest("train-x", "1", paths, {"spec": "/etc; rm -rf /"}))
    assert not [s for s in arm.seen if s.path.endswith("/jobs/train-x") and s.method == "PUT"]


def test_resubmitting_a_job_is_a_no_op(backends: Any, arm: FakeArm) -> None:
    jobs, _, _ = backends
    jobs.submit(TrainingRequest("train-once", "1", ["datasets/drops/a.csv"]))
    jobs.submit(TrainingRequest("train-once", "1", ["datasets/drops/a.csv"]))
    assert len(arm.bodies("PUT", "/jobs/train-once$")) == 1


@pytest.mark.parametrize(
    ("remote", "state"),
    [
        ("Running", "running"),
        ("Completed", "completed"),
        ("Failed", "failed"),
        ("Canceled", "canceled"),
        ("Queued", "queued"),
        ("NotResponding", "failed"),
    ],
)
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
    arm.failures.clear()
    busy = {"error": {"code": "ServiceUnavailable", "message": "busy"}}
    arm.route = lambda method, path, body: (503, busy, {})  # type: ignore[method-assign]
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
    assert registry.champion("diabetes-ridge").version == "1"
    with pytest.raises(StageTransitionError, match="from 'qa' to 'champion'"):
        registry.set_stage("diabetes-ridge", "2", "champion")
    registry.set_stage("diabetes-ridge", "2", "production")
    registry.set_stage("diabetes-ridge", "2", "champion")
    stages = {v.version: v.stage for v in registry.list("diabetes-ridge")}
    assert stages == {"2": "champion", "1": "archived"}
    assert [v.version for v in registry.list("diabetes-ridge")] == ["2", "1"]


def settle(endpoints: AzureEndpoints, status: OperationStatus, limit: int = 50) -> tuple[OperationStatus, int]:
    """Poll an operation as the orchestration does (without the timers); answer its end and the checks it took."""
    for checks in range(limit):
        if status.finished:
            return status, checks
        status = endpoints.operation_status(OperationStatus.from_dict(status.to_dict()).operation)
    raise AssertionError(f"operation still {status.state} after {limit} checks")


def deploy(
    endpoints: AzureEndpoints, registry: AzureRegistry, endpoint: str, slot: str, version: str
) -> OperationStatus:
    model = registry.get("diabetes-ridge", version)
    return endpoints.begin_deploy(DeploymentRequest(endpoint, slot, model.name, model.version), model)


def register(jobs: AzureJobs, registry: AzureRegistry, *names: str) -> None:
    for job in names:
        registry.register("diabetes-ridge", jobs.model_source(job), {"job_id": job})


def test_qa_is_a_managed_endpoint_and_production_kubernetes_running_the_scoring_image(
    backends: Any, arm: FakeArm
) -> None:
    jobs, registry, endpoints = backends
    register(jobs, registry, "train-abc")
    for endpoint, slot in (("qa", "blue"), ("production", "green")):
        final, _ = settle(endpoints, deploy(endpoints, registry, endpoint, slot, "1"))
        assert final.state is OperationState.SUCCEEDED, final
    puts = {
        s.path.rsplit("/", 1)[-1]: s.body
        for s in arm.seen
        if s.method == "PUT" and s.path.endswith(("/diabetes-qa", "/diabetes-prod"))
    }
    assert puts["diabetes-qa"]["properties"]["authMode"] == "Key"
    assert puts["diabetes-qa"]["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}
    assert puts["diabetes-prod"]["properties"]["compute"] == WS + "/computes/aks-prod"
    (env_put,) = arm.bodies("PUT", "/environments/mlops-scoring/versions/")
    routes = env_put["properties"]["inferenceConfig"]
    assert routes == {
        "livenessRoute": {"path": "/", "port": 5001},
        "readinessRoute": {"path": "/health", "port": 5001},
        "scoringRoute": {"path": "/score", "port": 5001},
    }
    context = env_put["properties"]["build"]
    assert context["contextUri"].startswith("https://acct.blob.core.windows.net/datasets/scoring-build/")
    assert context["dockerfilePath"] == "Dockerfile"
    env_id = next(s.path for s in arm.seen if s.method == "PUT" and "/environments/mlops-scoring/versions/" in s.path)
    (qa_put,) = arm.bodies("PUT", "/onlineEndpoints/diabetes-qa/deployments/blue$")
    (prod_put,) = arm.bodies("PUT", "/onlineEndpoints/diabetes-prod/deployments/green$")
    for body, kind in ((qa_put, "Managed"), (prod_put, "Kubernetes")):
        props = body["properties"]
        assert props["endpointComputeType"] == kind
        assert props["model"] == WS + "/models/diabetes-ridge/versions/1"
        assert props["environmentId"] == env_id
        assert "codeConfiguration" not in props
        assert props["environmentVariables"]["SCORING_LOGS__blobServiceUri"] == "https://acct.blob.core.windows.net"
        assert props["environmentVariables"]["SCORING_LOGS__credential"] == "managedidentity"
        assert props["environmentVariables"]["SCORING_LOGS__clientId"] == "endpoint-client-id"
        assert props["environmentVariables"]["SCORING_MODEL_VERSION"] == "1"
    assert qa_put["properties"]["instanceType"] == "Standard_DS3_v2" and qa_put["sku"]["capacity"] == 1
    assert qa_put["properties"]["environmentVariables"]["SCORING_ENDPOINT_NAME"] == "qa"
    assert len(arm.bodies("PUT", "/environments/mlops-scoring/versions/")) == 1, "one image for both endpoints"
    state = endpoints.state("qa")
    assert state.deployments == {"blue": "1"} and state.key == "primary-secret" and "key" not in state.public()


def test_a_models_own_endpoints_are_named_after_it_and_keep_their_kinds(backends: Any, arm: FakeArm) -> None:
    jobs, registry, endpoints = backends
    register(jobs, registry, "train-abc")
    for endpoint, slot in (("breast-cancer-qa", "blue"), ("breast-cancer-production", "blue")):
        final, _ = settle(endpoints, deploy(endpoints, registry, endpoint, slot, "1"))
        assert final.state is OperationState.SUCCEEDED, final
    (qa_put,) = arm.bodies("PUT", "/onlineEndpoints/diabetes-qa-breast-cancer/deployments/blue$")
    (prod_put,) = arm.bodies("PUT", "/onlineEndpoints/diabetes-prod-breast-cancer/deployments/blue$")
    assert qa_put["properties"]["endpointComputeType"] == "Managed"
    assert prod_put["properties"]["endpointComputeType"] == "Kubernetes"
    assert prod_put["properties"]["environmentVariables"]["SCORING_ENDPOINT_NAME"] == "breast-cancer-production"
    (endpoint_put,) = arm.bodies("PUT", "/onlineEndpoints/diabetes-prod-breast-cancer$")
    assert endpoint_put["properties"]["compute"] == WS + "/computes/aks-prod"
    long_name = endpoints._name("a-model-with-a-rather-long-name-qa")
    assert len(long_name) <= 32 and long_name.startswith("diabetes-qa-")
    with pytest.raises(ValueError, match="unknown endpoint 'staging'"):
        endpoints._name("staging")


def test_a_long_deployment_is_polled_and_a_retried_begin_resumes_it(backends: Any, arm: FakeArm) -> None:
    jobs, registry, endpoints = backends
    register(jobs, registry, "train-1")
    arm.polls = 5
    first = deploy(endpoints, registry, "qa", "blue", "1")
    assert first.state is OperationState.RUNNING and "mfeOperationsStatus" in first.operation.status_url
    _, checks = settle(endpoints, first)  # the endpoint first: created, then the deployment once it is ready
    deployment_puts = arm.bodies("PUT", "/diabetes-qa/deployments/blue$")
    assert len(deployment_puts) == 1 and checks == 12, "5 + 1 checks for the endpoint, as many for the deployment"
    arm.resources.pop((WS + "/onlineEndpoints/diabetes-qa/deployments/blue").lower())
    begun = deploy(endpoints, registry, "qa", "blue", "1")
    again = deploy(endpoints, registry, "qa", "blue", "1")  # the activity retried: it finds the half-made one
    assert begun.state is again.state is OperationState.RUNNING
    assert len(arm.bodies("PUT", "/diabetes-qa/deployments/blue$")) == 2, "no PUT over a deployment under way"
    final, checks = settle(endpoints, again)
    assert final.state is OperationState.SUCCEEDED and checks == 6


def test_traffic_moves_only_to_a_deployment_that_succeeded(backends: Any, arm: FakeArm) -> None:
    jobs, registry, endpoints = backends
    register(jobs, registry, "train-1", "train-2")
    settle(endpoints, deploy(endpoints, registry, "production", "blue", "1"))
    settle(endpoints, endpoints.begin_traffic("production", {"blue": 100}))
    arm.polls = 3
    green = deploy(endpoints, registry, "production", "green", "2")
    with pytest.raises(OperationRefused, match="deployment green, whose provisioning state is Updating"):
        endpoints.begin_traffic("production", {"blue": 0, "green": 100})
    settle(endpoints, green)
    moving = endpoints.begin_traffic("production", {"blue": 0, "green": 100})
    assert moving.state is OperationState.RUNNING
    puts = len(arm.bodies("PUT", "/onlineEndpoints/diabetes-prod$"))
    retried = endpoints.begin_traffic("production", {"blue": 0, "green": 100})  # the activity ran again
    assert retried.state is OperationState.RUNNING and retried.operation.status_url == moving.operation.status_url
    assert len(arm.bodies("PUT", "/onlineEndpoints/diabetes-prod$")) == puts, "no second PUT while one runs"
    assert endpoints.state("production").serving_version == "1", "ARM applies traffic when the operation ends"
    final, _ = settle(endpoints, moving)
    assert final.state is OperationState.SUCCEEDED and endpoints.state("production").serving_version == "2"
    sent = arm.bodies("PUT", "/onlineEndpoints/diabetes-prod$")[-1]["properties"]["traffic"]
    assert sent == {"green": 100}
    order = [s for s in arm.seen if "diabetes-prod" in s.path or "mfeOperationsStatus" in s.path]
    traffic_put = max(i for i, s in enumerate(order) if s.method == "PUT" and s.path.endswith("/diabetes-prod"))
    green_done = max(
        i
        for i, s in enumerate(order)
        if s.method == "GET"
        and s.path.endswith("/deployments/green")
        and s.status == 200
        and s.answer["properties"]["provisioningState"] == "Succeeded"
    )
    assert green_done < traffic_put


def test_a_failed_deployment_carries_arms_error(backends: Any, arm: FakeArm) -> None:
    jobs, registry, endpoints = backends
    register(jobs, registry, "train-1")
    arm.polls = 1
    arm.failures = {"/deployments/blue": {"code": "ResourceNotReady", "message": "User container has crashed"}}
    final, _ = settle(endpoints, deploy(endpoints, registry, "qa", "blue", "1"))
    assert final.state is OperationState.FAILED
    assert final.message == "deployment blue of diabetes-qa: ResourceNotReady: User container has crashed"
    again = deploy(endpoints, registry, "qa", "blue", "1")  # a retry neither hides the failure nor PUTs again
    assert again.state is OperationState.FAILED and "User container has crashed" in again.message
    assert len(arm.bodies("PUT", "/deployments/blue$")) == 1


def test_removal_waits_for_the_delete_and_never_drops_a_serving_slot(backends: Any, arm: FakeArm) -> None:
    jobs, registry, endpoints = backends
    register(jobs, registry, "train-1", "train-2")
    for slot, version in (("blue", "1"), ("green", "2")):
        settle(endpoints, deploy(endpoints, registry, "production", slot, version))
    settle(endpoints, endpoints.begin_traffic("production", {"blue": 100, "green": 0}))
    with pytest.raises(OperationRefused, match="blue takes 100% of the traffic"):
        endpoints.begin_remove("production", "blue")
    arm.polls = 2
    removing = endpoints.begin_remove("production", "green")
    assert removing.state is OperationState.RUNNING and "green" in endpoints.state("production").deployments
    final, checks = settle(endpoints, removing)
    assert final.state is OperationState.SUCCEEDED and checks == 3
    assert endpoints.state("production").deployments == {"blue": "1"}
    assert endpoints.begin_remove("production", "green").state is OperationState.SUCCEEDED  # idempotent
    emptied, _ = settle(endpoints, endpoints.begin_remove("production", "blue"))  # the last one: traffic first
    assert emptied.state is OperationState.SUCCEEDED and endpoints.state("production").deployments == {}
    assert arm.bodies("PUT", "/onlineEndpoints/diabetes-prod$")[-1]["properties"]["traffic"] == {}


def test_status_urls_off_the_arm_endpoint_are_never_called(backends: Any, arm: FakeArm) -> None:
    jobs, registry, endpoints = backends
    register(jobs, registry, "train-1")
    settle(endpoints, deploy(endpoints, registry, "qa", "blue", "1"))
    forged = Operation(
        OperationKind.DEPLOY, "qa", "blue", "1", status_url="https://attacker.example/op", model_name="diabetes-ridge"
    )
    before = len(arm.seen)
    assert endpoints.operation_status(forged).state is OperationState.SUCCEEDED
    assert all("attacker" not in s.path for s in arm.seen[before:])


def test_the_scoring_environment_is_registered_once_per_build_context(
    backends: Any, arm: FakeArm, storage: MemoryStorage
) -> None:
    _, _, endpoints = backends
    first = endpoints.image.environment_id()
    again = ScoringImage(endpoints.ml, storage, SETTINGS, WS).environment_id()
    assert first == again and len(arm.bodies("PUT", "/environments/")) == 1

    def changed(dest: Path) -> Path:
        stage_build_context(dest)
        (dest / "scoring" / "extra.txt").write_text("a change")
        return dest

    other = ScoringImage(endpoints.ml, storage, SETTINGS, WS, stage=changed).environment_id()
    assert other != first and len(arm.bodies("PUT", "/environments/")) == 2
    uploaded = {n for (c, n) in storage.blobs if c == "datasets"}
    assert any(n.endswith("/Dockerfile") for n in uploaded) and any(n.endswith("/scoring/extra.txt") for n in uploaded)


def test_training_jobs_run_as_the_clusters_identity(arm: FakeArm, storage: MemoryStorage) -> None:
    settings = Settings.from_env({**ENV, "AZUREML_JOB_IDENTITY_CLIENT_ID": "cluster-client-id"})
    jobs, _, _ = build_azure_backends(
        settings, storage, credential=FakeCredential(), transport=transport(arm), retry_total=0
    )
    assert isinstance(jobs, AzureJobs)
    jobs.code = WS + "/codes/train-code/versions/1"
    jobs.submit(TrainingRequest("train-id", "1", ["datasets/drops/a.csv"]))
    (body,) = arm.bodies("PUT", "/jobs/train-id$")
    assert body["properties"]["identity"] == {"identityType": "Managed", "clientId": "cluster-client-id"}


def test_model_reference_forms() -> None:
    assert model_version_of(WS + "/models/diabetes-ridge/versions/12") == "12"
    assert model_version_of("azureml:diabetes-ridge:7") == "7"


@pytest.mark.parametrize("polls", [0, 3])
def test_the_endpoints_contract_at_the_transport_boundary(backends: Any, arm: FakeArm, polls: int) -> None:
    jobs, registry, endpoints = backends
    register(jobs, registry, "train-1", "train-2")
    arm.polls = polls
    contracts.endpoints_blue_green(
        endpoints, "production", registry.get("diabetes-ridge", "1"), registry.get("diabetes-ridge", "2")
    )
