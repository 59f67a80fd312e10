"""Batch scoring on Azure ML through the real azure-ai-ml client, with a fake Azure ML at the HTTP transport boundary.

The fake answers exactly the requests ``MLClient.batch_endpoints.invoke`` and ``MLClient.jobs.get`` make: the batch
endpoint's GET on ARM, the POST to its scoring URI (``/jobs``) and the job's GET on ARM. The answers have the shapes
of the azure-ai-ml SDK's own recording ``batch_services/e2etests/test_batch_endpoint.pyTestBatchEndpointtest_batch_
invoke.json`` (Azure/azure-sdk-for-python, commit ``0cb6befd2e9aba91c44cd17c4538d35905969f9f``): the endpoint's
``scoringUri`` ending ``/jobs``, the 201 batch job with ``status: Preparing`` and the ``azureml.batchrun`` tags; the
job's ARM answer is the recorded command job's shape (``tests/fixtures/azure/command_job.json``) as a pipeline job.
The credential is a static one: no token endpoint is ever called.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import BaseAdapter

from backends.azure.batch import AzureBatchScoring, batch_endpoint_name, build_azure_batch
from backends.errors import NotFoundError, SettingsError
from backends.ports import BatchScoring, BlobInfo, ModelVersion
from backends.settings import Settings
from messages.batch import BatchInput, BatchPlan, ChunkResult
from messages.enums import JobState
from ml.schema import ACTIVE_SCHEMA
from tests.unit.backends.azure.fake_arm import WS, _response
from tests.unit.backends.azure.test_azure_backends import ENV, MemoryStorage

SETTINGS = Settings.from_env(ENV | {"AZUREML_BATCH_ENDPOINT": "mlops-bt", "AZUREML_BATCH_DATASTORE": "appbatch"})
ENDPOINT = "mlops-bt-diabetes"
SCORING_HOST = f"{ENDPOINT}.eastus2.inference.ml.azure.com"
ARM = "management.azure.com"
MODEL = ModelVersion("diabetes", "7", "champion")


class BatchStorage(MemoryStorage):
    """A missing blob is ``NotFoundError``, as in ``backends.storage.BlobStorage``."""

    def info(self, container: str, name: str) -> BlobInfo:
        if (container, name) not in self.blobs:
            raise NotFoundError(f"info {container}/{name}: not found")
        return super().info(container, name)


class StaticCredential:
    """Hands out a fixed token and records the audiences asked for; never reaches a token endpoint."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("static-token", 9_999_999_999)


@dataclass
class Request:
    method: str
    host: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


@dataclass
class FakeAzureMl(BaseAdapter):
    """Batch endpoints (by name) and jobs (by name, with their status) of one workspace, and the requests seen."""

    endpoints: set[str] = field(default_factory=lambda: {ENDPOINT})
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = urlparse(str(request.url))
        raw = request.body.decode() if isinstance(request.body, bytes) else request.body
        body = json.loads(raw) if raw else None
        seen = Request(str(request.method), url.netloc, url.path, parse_qs(url.query), body, dict(request.headers))
        self.seen.append(seen)
        status, answer = self.route(seen)
        return _response(request, status, answer, {})

    def route(self, r: Request) -> tuple[int, Any]:
        if r.host == ARM and r.method == "GET" and r.path.startswith(f"{WS}/batchEndpoints/"):
            name = r.path.rsplit("/", 1)[-1]
            return (200, endpoint_answer(name)) if name in self.endpoints else (404, not_found())
        if r.host == ARM and r.method == "GET" and r.path.startswith(f"{WS}/jobs/"):
            name = r.path.rsplit("/", 1)[-1]
            return (200, job_answer(name, **self.jobs[name])) if name in self.jobs else (404, not_found())
        if r.method == "POST" and r.host.endswith(".inference.ml.azure.com") and r.path == "/jobs":
            props = r.body["properties"]
            name = props["name"]
            self.jobs[name] = {"status": "NotStarted", "inputs": props["inputData"], "outputs": props["outputData"]}
            return 201, invoke_answer(r.host.split(".", 1)[0], name, props)
        return 404, not_found()

    def close(self) -> None:
        pass

    def calls(self) -> list[tuple[str, str, str]]:
        return [(r.method, r.host, r.path.rsplit("/", 2)[-2] if r.host == ARM else r.path) for r in self.seen]


def not_found() -> dict[str, Any]:
    return {"error": {"code": "UserError", "message": "Not found", "details": []}}


def endpoint_answer(name: str) -> dict[str, Any]:
    """The recorded batch endpoint GET (provisioned, AAD-token auth, a default deployment)."""
    return {
        "id": f"{WS}/batchEndpoints/{name}",
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints",
        "properties": {
            "description": None,
            "properties": {"BatchEndpointCreationApiVersion": "2022-05-01"},
            "scoringUri": f"https://{name}.eastus2.inference.ml.azure.com/jobs",
            "swaggerUri": None,
            "authMode": "AADToken",
            "defaults": {"deploymentName": "champion"},
            "provisioningState": "Succeeded",
        },
        "systemData": {"createdAt": "2023-04-09T00:26:46.2787237+00:00", "createdBy": "someone"},
        "tags": {},
        "location": "eastus2",
        "identity": {"type": "SystemAssigned", "principalId": "00000000-0000-0000-0000-000000000000"},
    }


def invoke_answer(endpoint: str, name: str, props: dict[str, Any]) -> dict[str, Any]:
    """The recorded 201 of the scoring URI: the batch job of the default deployment, ``Preparing``."""
    return {
        "id": f"{WS}/batchEndpoints/{endpoint}/deployments/champion/jobs/{name}",
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints/deployments/jobs",
        "properties": {
            "provisioningState": "Succeeded",
            "inputData": {k: v | {"description": None, "mode": "ReadOnlyMount"} for k, v in props["inputData"].items()},
            "compute": {"target": f"{WS}/computes/cpu-cluster", "instanceCount": None, "isLocal": False},
            "output": {"datastoreId": None, "path": None},
            "retrySettings": {"maxRetries": 3, "timeout": "PT30S"},
            "status": "Preparing",
            "interactionEndpoints": {
                "Studio": {
                    "jobEndpointType": "Studio",
                    "port": None,
                    "endpoint": f"https://ml.azure.com/runs/{name}?wsid={WS}",
                    "properties": None,
                }
            },
            "tags": {
                "outputType": "output_data",
                "inputType": "input_data",
                "azureml.batchrun": "true",
                "azureml.deploymentname": "champion",
                "azureml.jobtype": "azureml.batchjob",
            },
            "properties": {"azureml.runsource": "azureml.PipelineRun", "runType": "HTTP"},
            "name": name,
        },
        "systemData": {"createdAt": "2023-04-09T00:28:19.80314+00:00", "createdBy": "someone"},
    }


def job_answer(name: str, status: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """The job on ARM, as the recorded job answer (``command_job.json``) but of the batch run's pipeline."""
    return {
        "id": f"{WS}/jobs/{name}",
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/jobs",
        "properties": {
            "description": None,
            "tags": {"azureml.batchrun": "true", "azureml.deploymentname": "champion"},
            "properties": {"azureml.runsource": "azureml.PipelineRun", "runType": "HTTP"},
            "displayName": name,
            "status": status,
            "experimentName": ENDPOINT,
            "services": {
                "Studio": {
                    "jobServiceType": "Studio",
                    "port": None,
                    "endpoint": f"https://ml.azure.com/runs/{name}?wsid={WS}",
                    "status": None,
                    "errorMessage": None,
                    "properties": None,
                }
            },
            "computeId": None,
            "isArchived": False,
            "identity": None,
            "componentId": None,
            "jobType": "Pipeline",
            "settings": {},
            "jobs": {},
            "inputs": {
                k: {"description": None, "uri": v["uri"], "mode": "ReadOnlyMount", "jobInputType": "uri_file"}
                for k, v in inputs.items()
            },
            "outputs": {
                k: {"description": None, "uri": v["uri"], "mode": "ReadWriteMount", "jobOutputType": "uri_file"}
                for k, v in outputs.items()
            },
        },
        "systemData": {"createdAt": "2023-04-09T00:28:19.80314+00:00", "createdBy": "someone"},
    }


@pytest.fixture
def aml() -> FakeAzureMl:
    return FakeAzureMl()


@pytest.fixture
def credential() -> StaticCredential:
    return StaticCredential()


@pytest.fixture
def storage() -> BatchStorage:
    return BatchStorage()


@pytest.fixture
def scoring(aml: FakeAzureMl, credential: StaticCredential, storage: BatchStorage) -> Iterator[AzureBatchScoring]:
    session = requests.Session()
    session.mount("https://", aml)
    yield build_azure_batch(
        SETTINGS,
        storage,
        credential=credential,
        retry_total=0,
        transport=RequestsTransport(session=session, session_owner=False),
    )
    session.close()


def drop(storage: BatchStorage, name: str = "diabetes/in/2026/day.csv") -> BatchInput:
    info = storage.write("batch", name, b"age,sex,bmi\n1,2,3\n")
    return BatchInput("batch", "diabetes", name, info.etag)


def test_plan_invokes_the_models_batch_endpoint_on_the_datastore_uris(
    scoring: AzureBatchScoring, aml: FakeAzureMl, credential: StaticCredential, storage: BatchStorage
) -> None:
    assert isinstance(scoring, BatchScoring)
    run = drop(storage)
    plan = scoring.plan(run, MODEL, ACTIVE_SCHEMA)
    assert plan.problem is None and plan.job and not plan.chunks
    assert (plan.model, plan.version, plan.output, plan.format) == ("diabetes", "7", "diabetes/out/2026/day.csv", "csv")
    assert [(m, h, p) for m, h, p in aml.calls()] == [
        ("GET", ARM, "jobs"),  # a job of this file version already? (a retried plan must not start another)
        ("GET", ARM, "batchEndpoints"),
        ("POST", SCORING_HOST, "/jobs"),
    ]
    get_job, get_endpoint, invoke = aml.seen
    assert get_job.path == f"{WS}/jobs/{plan.job}"
    assert get_endpoint.path == f"{WS}/batchEndpoints/{ENDPOINT}"
    assert get_endpoint.query["api-version"] == ["2023-10-01"]
    assert invoke.headers["Authorization"] == "Bearer static-token"
    assert ("https://ml.azure.com/.default",) in credential.scopes, "the scoring URI takes an Azure ML token"
    props = invoke.body["properties"]
    assert props["name"] == plan.job
    assert props["inputData"] == {
        "data": {"jobInputType": "UriFile", "uri": "azureml://datastores/appbatch/paths/diabetes/in/2026/day.csv"}
    }
    assert props["outputData"] == {
        "score": {"jobOutputType": "UriFile", "uri": "azureml://datastores/appbatch/paths/diabetes/out/2026/day.csv"}
    }
    assert props["properties"] == {"experimentName": "diabetes"}
    assert not [r for r in aml.seen if "login" in r.host], "no token endpoint is ever called"


def test_a_retried_plan_finds_its_job_instead_of_invoking_again(
    scoring: AzureBatchScoring, aml: FakeAzureMl, storage: BatchStorage
) -> None:
    run = drop(storage)
    first = scoring.plan(run, MODEL, ACTIVE_SCHEMA)
    again = scoring.plan(run, MODEL, ACTIVE_SCHEMA)
    assert again.job == first.job
    assert [c for c in aml.calls() if c[0] == "POST"] == [("POST", SCORING_HOST, "/jobs")]
    other = drop(storage, "diabetes/in/other.parquet")
    planned = scoring.plan(other, MODEL, ACTIVE_SCHEMA)
    assert planned.job != first.job and planned.output == "diabetes/out/other.parquet.csv"
    assert planned.format == "parquet"


def test_a_model_without_a_batch_endpoint_is_refused_not_crashed(
    scoring: AzureBatchScoring, aml: FakeAzureMl, storage: BatchStorage
) -> None:
    aml.endpoints.clear()
    plan = scoring.plan(drop(storage), MODEL, ACTIVE_SCHEMA)
    assert plan.problem is not None and plan.problem.code == "unsupported" and not plan.job
    assert ENDPOINT in plan.problem.message and "version 7" in plan.problem.message


def test_a_replaced_file_is_superseded_before_any_job(
    scoring: AzureBatchScoring, aml: FakeAzureMl, storage: BatchStorage
) -> None:
    run = drop(storage)
    storage.write("batch", run.name, b"age,sex,bmi\n9,9,9\n")
    plan = scoring.plan(run, MODEL, ACTIVE_SCHEMA)
    assert plan.problem is not None and plan.problem.code == "changed"
    assert aml.seen == []


@pytest.mark.parametrize(
    ("remote", "state"),
    [
        ("NotStarted", JobState.QUEUED),
        ("Queued", JobState.QUEUED),
        ("Preparing", JobState.QUEUED),
        ("Provisioning", JobState.QUEUED),
        ("Starting", JobState.QUEUED),
        ("Running", JobState.RUNNING),
        ("Finalizing", JobState.RUNNING),
        ("Completed", JobState.COMPLETED),
        ("Failed", JobState.FAILED),
        ("NotResponding", JobState.FAILED),
        ("Canceled", JobState.CANCELED),
        ("CancelRequested", JobState.CANCELED),
    ],
)
def test_job_status_maps_azure_ml_statuses(
    scoring: AzureBatchScoring, aml: FakeAzureMl, storage: BatchStorage, remote: str, state: JobState
) -> None:
    plan = scoring.plan(drop(storage), MODEL, ACTIVE_SCHEMA)
    aml.jobs[plan.job]["status"] = remote
    status = scoring.job_status(plan)
    assert (status.job, status.state) == (plan.job, state)
    assert status.url == f"https://ml.azure.com/runs/{plan.job}?wsid={WS}"
    last = aml.seen[-1]
    assert (last.method, last.host, last.path) == ("GET", ARM, f"{WS}/jobs/{plan.job}")
    assert last.query["api-version"], "jobs.get names its api-version"
    error = f"{plan.output}.error.json"
    if state in (JobState.FAILED, JobState.CANCELED):
        report = json.loads(storage.read("batch", error)[0])
        assert report["code"] == ("job_canceled" if state is JobState.CANCELED else "job_failed")
        assert report["error"] == f"batch job {plan.job}: Azure ML status {remote}"
        assert report["source"] == "azureml://datastores/appbatch/paths/diabetes/in/2026/day.csv"
        assert (report["model"], report["model_version"], report["job"]) == ("diabetes", "7", plan.job)
    else:
        with pytest.raises(NotFoundError):
            storage.info("batch", error)


def test_finish_returns_the_jobs_output_and_needs_it_in_place(
    scoring: AzureBatchScoring, aml: FakeAzureMl, storage: BatchStorage
) -> None:
    run = drop(storage)
    plan = scoring.plan(run, MODEL, ACTIVE_SCHEMA)
    with pytest.raises(NotFoundError):
        scoring.finish(run, plan, [ChunkResult(0, 0, 0)])
    storage.write("batch", plan.output, b"row,prediction\n0,1.5\n")  # the job writes it through the datastore
    result = scoring.finish(run, plan, [ChunkResult(0, 0, 0)])
    assert (result.output, result.version, result.problem) == ("batch/diabetes/out/2026/day.csv", "7", None)


def test_chunks_are_never_scored_by_the_app(scoring: AzureBatchScoring, storage: BatchStorage) -> None:
    run = drop(storage)
    with pytest.raises(ValueError, match="batch job"):
        scoring.score_chunk(run, BatchPlan("diabetes", job="j"), None, ACTIVE_SCHEMA)  # type: ignore[arg-type]


def test_batch_endpoint_names_follow_the_online_endpoints_rule() -> None:
    assert batch_endpoint_name("mlops-bt", "diabetes") == "mlops-bt-diabetes"
    long = batch_endpoint_name("mlops-bt-abcdefghijklm", "a-model-with-a-long-name")
    assert (
        len(long) <= 32
        and long.startswith("mlops-bt-abcdefghijk")
        and long != batch_endpoint_name("mlops-bt-abcdefghijklm", "another-model-long-name")
    )


def test_batch_settings_are_validated() -> None:
    with pytest.raises(SettingsError, match="AZUREML_BATCH_ENDPOINT"):
        Settings.from_env(ENV | {"AZUREML_BATCH_ENDPOINT": "1-bad_name"})
    with pytest.raises(SettingsError, match="AZUREML_BATCH_DATASTORE"):
        Settings.from_env(ENV | {"AZUREML_BATCH_DATASTORE": "no-hyphens"})
