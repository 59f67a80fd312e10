"""Training as an Azure ML command job running ``python -m ml.train`` (the same entry point as the local job)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from azure.ai.ml import Input, MLClient, Output, command
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import ManagedIdentityConfiguration
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from backends.azure.client import enum_text
from backends.errors import NotFoundError, TransientBackendError
from backends.ports import JobStatus, TrainingOutputs, TrainingRequest
from backends.settings import Settings
from messages.enums import JobState

PROJECT_ROOT = Path(__file__).resolve().parents[2]
OUTPUT = "model_output"
#: Azure ML job statuses → the port's states, for training and batch scoring jobs alike (any other, e.g. NotStarted,
#: Queued, Preparing, Provisioning, Starting: still queued)
STATES = {
    "Completed": JobState.COMPLETED,
    "Failed": JobState.FAILED,
    "NotResponding": JobState.FAILED,
    "Paused": JobState.FAILED,
    "Canceled": JobState.CANCELED,
    "CancelRequested": JobState.CANCELED,
    "Running": JobState.RUNNING,
    "Finalizing": JobState.RUNNING,
}


def job_inputs(request: TrainingRequest, datastore: str) -> dict[str, Input]:
    """One ``uri_file`` input per accepted drop. The datastore is bound to the datasets container (infra/main.bicep),
    so ``datasets/drops/<sha>.csv`` becomes ``azureml://datastores/<ds>/paths/drops/<sha>.csv``."""
    return {
        f"data{i}": Input(
            type=AssetTypes.URI_FILE, path=f"azureml://datastores/{datastore}/paths/{ref.split('/', 1)[1]}"
        )
        for i, ref in enumerate(request.data)
    }


#: a spec folder as the job's command may name it: one of the app's models, uploaded with the job's code
_SPEC_PATH = re.compile(r"^models/[a-z][a-z0-9-]{1,38}[a-z0-9]$")


class AzureJobs:
    def __init__(self, ml: MLClient, settings: Settings, code: str | None = None) -> None:
        self.ml, self.settings = ml, settings
        self.code = code or str(PROJECT_ROOT)  # uploaded minus .amlignore: ml/, models/ and the requirements

    def submit(self, request: TrainingRequest) -> JobStatus:
        try:
            return self._status(self.ml.jobs.get(request.job_name))
        except ResourceNotFoundError:
            pass
        inputs = job_inputs(request, self.settings.AZUREML_DATASTORE)
        data_args = " ".join(f"${{{{inputs.{name}}}}}" for name in inputs)
        alpha = f" --alpha {float(request.params['alpha'])}" if "alpha" in request.params else ""
        spec = request.params.get("spec", "")
        if spec and not _SPEC_PATH.match(spec):
            raise ValueError(f"a training job's spec is a folder of the app's code (models/<name>), got {spec!r}")
        model = spec.rsplit("/", 1)[-1] if spec else self.settings.MODEL_NAME
        job = command(
            name=request.job_name,
            display_name=f"train {model} on dataset {request.dataset_version}",
            command=f"python -m ml.train --data {data_args} --output ${{{{outputs.{OUTPUT}}}}}{alpha}"
            + (f" --spec {spec}" if spec else ""),
            inputs=inputs,
            outputs={OUTPUT: Output(type=AssetTypes.URI_FOLDER)},
            environment=f"azureml:{self.settings.AZUREML_ENVIRONMENT}",
            compute=self.settings.AZUREML_COMPUTE,
            experiment_name=model,
            tags={"dataset_version": request.dataset_version},
            identity=self._identity(),
        )
        job.code = self.code
        return self._status(_call(lambda: self.ml.jobs.create_or_update(job), f"submit job {request.job_name}"))

    def _identity(self) -> ManagedIdentityConfiguration | None:
        """The cluster's user-assigned identity: it reads the inputs and writes the outputs through the identity-based
        datastore (the storage account accepts no keys). None: Azure ML's default for the compute."""
        client_id = self.settings.AZUREML_JOB_IDENTITY_CLIENT_ID
        return ManagedIdentityConfiguration(client_id=client_id) if client_id else None

    def status(self, job_id: str) -> JobStatus:
        return self._status(_call(lambda: self.ml.jobs.get(job_id), f"job {job_id}"))

    def cancel(self, job_id: str) -> None:
        _call(lambda: self.ml.jobs.begin_cancel(job_id), f"cancel job {job_id}")

    def fetch_outputs(self, job_id: str, dest: Path) -> TrainingOutputs:
        """Download the job's output folder, straight from the workspace's storage (not through ARM).

        With identity-based datastores (the workspace's ``systemDatastoresAuthMode: identity``) azure-ai-ml reads
        the blobs with this ``MLClient``'s credential, the app's identity, which needs a data role on that account.
        """
        _call(
            lambda: self.ml.jobs.download(job_id, download_path=str(dest), output_name=OUTPUT),
            f"download outputs of {job_id}",
        )
        folder = next((p.parent for p in dest.rglob("metrics.json")), None)
        if folder is None:
            raise NotFoundError(f"job {job_id} has no metrics.json in its {OUTPUT} output")
        metrics = {
            k: v for k, v in json.loads((folder / "metrics.json").read_text()).items() if isinstance(v, int | float)
        }
        return TrainingOutputs(job_id, folder / "model", metrics, folder / "holdout.csv")

    def model_source(self, job_id: str) -> str:
        return f"azureml://jobs/{job_id}/outputs/{OUTPUT}/paths/model/"

    def _status(self, job: Any) -> JobStatus:
        raw = enum_text(job.status)
        state = STATES.get(raw, JobState.QUEUED)
        message = f"Azure ML status {raw}" if state is not JobState.COMPLETED else ""
        return JobStatus(str(job.name), state, message, "", str(getattr(job, "studio_url", "") or ""))


def _call(action: Any, what: str) -> Any:
    try:
        return action()
    except ResourceNotFoundError as exc:
        raise NotFoundError(f"{what}: not found") from exc
    except ServiceRequestError as exc:
        raise TransientBackendError(f"{what}: {exc}") from exc
    except HttpResponseError as exc:
        if exc.status_code is not None and (exc.status_code >= 500 or exc.status_code in (408, 429)):
            raise TransientBackendError(f"{what}: HTTP {exc.status_code}") from exc
        raise
