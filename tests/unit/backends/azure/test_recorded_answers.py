"""The Azure ML backend on answers real Azure gave the azure-ai-ml SDK's own recorded tests.

The same adapter code as ``test_azure_backends`` (the real ``MLClient``, our ARM client, ``AzureEndpoints``,
``AzureJobs``, ``AzureRegistry``) reads ARM's own shapes: the online endpoint's creation and the deployment's
long-running operations as they were polled (``Updating`` until ``Succeeded``), the traffic change, a command
job's creation and a model version's get and list. Where the recordings came from: ``tests/fixtures/azure/README.md``.
"""

from __future__ import annotations

from typing import Any

import requests
from azure.core.pipeline.transport import RequestsTransport

from backends.azure.endpoints import AzureEndpoints
from backends.azure.factory import build_azure_backends
from backends.azure.jobs import AzureJobs
from backends.azure.registry import AzureRegistry
from backends.ports import DeploymentRequest, ModelVersion, OperationState, TrainingRequest
from backends.settings import Settings
from tests.unit.backends.azure.fake_arm import FakeCredential
from tests.unit.backends.azure.recorded import RecordedArm, load
from tests.unit.backends.azure.test_azure_backends import MemoryStorage
from tests.unit.backends.contracts import settle

SUB = "00000000-0000-0000-0000-000000000"
WSP = f"/subscriptions/{SUB}/resourceGroups/00000/providers/Microsoft.MachineLearningServices/workspaces/00000"
ENDPOINT = "online-ept-10cd4ed17147449"
SETTINGS = Settings.from_env(
    {
        "MLOPS_BACKEND": "azureml",
        "AZURE_SUBSCRIPTION_ID": SUB,
        "AZURE_RESOURCE_GROUP": "00000",
        "AZUREML_WORKSPACE": "00000",
        "AZUREML_QA_ENDPOINT": ENDPOINT,
        "AzureWebJobsStorage__accountName": "acct",
    }
)
#: the recording's deployment shares its endpoint's name; our slots are named blue/green
AS_SLOT = {f"deployments/{ENDPOINT}": "deployments/blue", f'"{ENDPOINT}": 100': '"blue": 100'}


def deployments_as_slot(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The deployment resources' ``name`` too (their ids were renamed with the text)."""
    for entry in entries:
        body = entry["ResponseBody"]
        for resource in body.get("value", [body]) if isinstance(body, dict) else []:
            if str(resource.get("type", "")).endswith("/onlineEndpoints/deployments"):
                resource["name"] = "blue"
    return entries


class RecordedEnvironment:
    """The recording's environment (its registration is not part of the deployment's recording)."""

    def environment_id(self) -> str:
        return f"{WSP}/environments/online-endpoint-mir-test/versions/3"


def keys(method: str, path: str) -> tuple[int, Any] | None:
    """The endpoint's credentials are not kept from the recording (it held a live token): answered in the REST API's
    shapes, EndpointAuthKeys for a key endpoint and EndpointAuthToken for the recorded AML-token one."""
    if method == "POST" and path.endswith("/listkeys"):
        return 200, {"primaryKey": "unrecorded-primary", "secondaryKey": "unrecorded-secondary"}
    if method == "POST" and path.endswith("/token"):
        return 200, {
            "accessToken": "unrecorded-token",
            "tokenType": "Bearer",
            "expiryTimeUtc": 4070908800,
            "refreshAfterTimeUtc": 4070905200,
        }
    return None


def backends(replay: RecordedArm) -> tuple[AzureJobs, AzureRegistry, AzureEndpoints]:
    session = requests.Session()
    session.mount("https://", replay)
    jobs, registry, endpoints = build_azure_backends(
        SETTINGS,
        MemoryStorage(),
        credential=FakeCredential(),
        retry_total=0,
        transport=RequestsTransport(session=session, session_owner=False),
    )
    assert isinstance(jobs, AzureJobs) and isinstance(registry, AzureRegistry)
    assert isinstance(endpoints, AzureEndpoints)
    endpoints.image = RecordedEnvironment()  # type: ignore[assignment]
    return jobs, registry, endpoints


def test_a_recorded_deployment_is_created_polled_and_given_traffic() -> None:
    replay = RecordedArm(deployments_as_slot(load("online_deployment.json", AS_SLOT)), unrecorded=keys)
    _, _, endpoints = backends(replay)
    model = ModelVersion("mir_test_model", "1", "qa")
    begun = endpoints.begin_deploy(DeploymentRequest("qa", "blue", model.name, model.version), model)
    assert begun.state is OperationState.RUNNING  # the endpoint did not exist: ARM answered 201 Creating
    assert begun.operation.status_url.startswith("https://management.azure.com/subscriptions/")
    final = settle(endpoints, begun)
    assert final.state is OperationState.SUCCEEDED, final
    polled = [p for m, p, _ in replay.served if "mfeoperationsstatus" in p]
    assert len(polled) == 4 + 6, "every recorded Updating answer was polled, then Succeeded, for both operations"
    writes = [(m, p.rsplit("/", 2)[-2:]) for m, p, _ in replay.served if m == "PUT"]
    assert writes == [("PUT", ["onlineendpoints", ENDPOINT]), ("PUT", ["deployments", "blue"])]
    moved = settle(endpoints, endpoints.begin_traffic("qa", {"blue": 100}))
    assert moved.state is OperationState.SUCCEEDED
    state = endpoints.state("qa")
    assert state.deployments == {"blue": "1"} and state.traffic == {"blue": 100} and state.serving_version == "1"
    assert state.scoring_url == f"https://{ENDPOINT}.eastus2.inference.ml.azure.com/score"
    assert state.key == "unrecorded-token", "the recorded endpoint authenticates by AML token"
    statuses = {s for _, p, s in replay.served if not p.endswith(("/listkeys", "/token"))}
    assert statuses <= {200, 201, 404}


def test_a_recorded_command_job_reads_as_queued() -> None:
    replay = RecordedArm(load("command_job.json"))
    jobs, _, _ = backends(replay)
    jobs.code = f"{WSP}/codes/000000000000000000000/versions/1"
    submitted = jobs.submit(TrainingRequest("000000000000000000000", "1", ["datasets/drops/a.csv"]))
    assert submitted.job_id == "000000000000000000000" and submitted.state == "queued"
    assert "Azure ML status Starting" in submitted.message
    assert submitted.url.startswith("https://ml.azure.com/runs/000000000000000000000")
    assert jobs.status("000000000000000000000").state == "queued"
    assert [m for m, p, _ in replay.served if p.endswith("/jobs/000000000000000000000")] == ["GET", "PUT", "GET"]


def test_a_recorded_model_version_reads_back_with_its_tags_and_lineage() -> None:
    replay = RecordedArm(load("model.json"))
    _, registry, _ = backends(replay)
    listed = registry.list("test_978172339514")
    assert [v.version for v in listed] == ["3"]
    got = registry.get("test_978172339514", "3")
    assert got == listed[0]
    assert got.tags == {"foo": "bar", "abc": "123"} and got.stage == ""
    assert got.source.startswith("azureml://subscriptions/") and got.source.endswith("/lightgbm_mlflow_model")
    assert got.registered.startswith("2022-09-16T03:00:11")
