"""The BatchScoring port on Azure ML: each model's batch endpoint scores the file as one platform job.

- ``plan`` invokes the model's batch endpoint (``<AZUREML_BATCH_ENDPOINT>-<model>``, named as the model's online
  endpoints are, within Azure's 32 characters; its default deployment serves the champion) on the input as a
  ``uri_file`` through the datastore bound to the batch container (``AZUREML_BATCH_DATASTORE``):
  ``azureml://datastores/<ds>/paths/<model>/in/<path>``, the output ``score`` going to
  ``azureml://datastores/<ds>/paths/<model>/out/<path>``. The job's name is derived from the blob's name and etag,
  so a retried plan finds the job it started instead of starting another. The plan names the job
  (``BatchPlan.job``); the orchestration polls it with durable timers. No chunk is scored by this app.
- ``job_status`` reads the job (``MLClient.jobs.get``) and maps Azure ML's status to ``JobState``. A job that
  failed or was canceled leaves ``<out>.error.json`` (code ``job_failed`` / ``job_canceled``, the job's status and
  studio link) beside the output, as a refused file's report is.
- ``finish`` checks the job's output is in place and returns it; the use case writes the report.

A missing batch endpoint refuses the file (``unsupported``, saying which endpoint to create), never a crash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

from azure.ai.ml import Input, MLClient, Output
from azure.ai.ml.constants import AssetTypes
from azure.core.exceptions import ResourceNotFoundError

from backends.azure.client import enum_text
from backends.azure.jobs import STATES, _call
from backends.errors import NotFoundError
from backends.ports import ModelVersion, Storage
from backends.settings import Settings
from messages.batch import (
    BatchChunk,
    BatchInput,
    BatchJobStatus,
    BatchPlan,
    BatchProblem,
    BatchResult,
    ChunkResult,
)
from messages.enums import JobState
from ml.batch import output_name
from ml.schema import Schema

#: Azure ML's longest batch endpoint name
ENDPOINT_NAME_MAX = 32
#: a model deployment's output is named ``score``; its one input may have any name
INPUT, OUTPUT = "data", "score"
ERROR_SUFFIX = ".error.json"


def batch_endpoint_name(prefix: str, model: str) -> str:
    """``<prefix>-<model>``; a name over Azure's 32 characters keeps a hash of the model's instead."""
    name = f"{prefix}-{model}"
    if len(name) > ENDPOINT_NAME_MAX:
        digest = hashlib.sha256(model.encode()).hexdigest()[:8]
        name = f"{prefix[: ENDPOINT_NAME_MAX - 9]}-{digest}"
    return name


def datastore_uri(datastore: str, path: str) -> str:
    return f"azureml://datastores/{datastore}/paths/{path}"


def job_name(run: BatchInput) -> str:
    """One job per version of a file: ``batch-<model>-<sha1 of container, name and etag>``."""
    digest = hashlib.sha1(f"{run.container}/{run.name}|{run.etag}".encode()).hexdigest()[:20]
    return f"batch-{run.model[:40]}-{digest}".replace(".", "-")


class AzureBatchScoring:
    def __init__(self, ml: MLClient, settings: Settings, storage: Storage) -> None:
        self.ml, self.settings, self.storage = ml, settings, storage

    def endpoint(self, model: str) -> str:
        return batch_endpoint_name(self.settings.AZUREML_BATCH_ENDPOINT, model)

    def plan(self, run: BatchInput, model: ModelVersion, schema: Schema) -> BatchPlan:
        output = output_name(run.name)
        base = BatchPlan(run.model, model.version, format=_format(run.name), output=output, id_column="row")
        try:
            info = self.storage.info(run.container, run.name)
        except NotFoundError:
            info = None
        if info is None or info.etag != run.etag:
            return _refused(base, "changed", f"{run.container}/{run.name} was replaced after version {run.etag}")
        name = job_name(run)
        try:
            job = self.ml.jobs.get(name)
            return replace(base, job=str(job.name), size=info.size)
        except ResourceNotFoundError:
            pass
        endpoint = self.endpoint(run.model)
        datastore = self.settings.AZUREML_BATCH_DATASTORE
        try:
            job = _call(
                lambda: self.ml.batch_endpoints.invoke(
                    endpoint_name=endpoint,
                    inputs={INPUT: Input(type=AssetTypes.URI_FILE, path=datastore_uri(datastore, run.name))},
                    outputs={OUTPUT: Output(type=AssetTypes.URI_FILE, path=datastore_uri(datastore, output))},
                    job_name=name,
                    experiment_name=run.model,
                ),
                f"invoke batch endpoint {endpoint}",
            )
        except NotFoundError:
            return _refused(
                base,
                "unsupported",
                f"{run.name}: model {run.model!r} has no Azure ML batch endpoint {endpoint} "
                f"(create it with a default deployment of version {model.version})",
            )
        return replace(base, job=str(job.name or name), size=info.size)

    def score_chunk(self, run: BatchInput, plan: BatchPlan, chunk: BatchChunk, schema: Schema) -> ChunkResult:
        raise ValueError(f"{run.name}: scored by Azure ML batch job {plan.job}, not in chunks")

    def job_status(self, plan: BatchPlan) -> BatchJobStatus:
        job = _call(lambda: self.ml.jobs.get(plan.job), f"batch job {plan.job}")
        raw = enum_text(job.status)
        state = STATES.get(raw, JobState.QUEUED)
        url = str(getattr(job, "studio_url", "") or "")
        message = "" if state is JobState.COMPLETED else f"Azure ML status {raw}"
        if state in (JobState.FAILED, JobState.CANCELED):
            self._write_error(plan, job, state, message, url)
        return BatchJobStatus(str(job.name), state, message, 0, url)

    def finish(self, run: BatchInput, plan: BatchPlan, results: list[ChunkResult]) -> BatchResult:
        """The job wrote ``<model>/out/<path>`` through the datastore; its row counts are the job's (unknown: 0)."""
        self.storage.info(run.container, plan.output)  # NotFoundError: the job left no output
        rows, scored = sum(r.rows for r in results), sum(r.scored for r in results)
        return BatchResult(f"{run.container}/{plan.output}", "", rows, scored, rows - scored, plan.version)

    def _write_error(self, plan: BatchPlan, job: Any, state: JobState, message: str, url: str) -> None:
        inputs = getattr(job, "inputs", None) or {}
        source = getattr(inputs.get(INPUT), "path", None) if isinstance(inputs, dict) else None
        body = {
            "source": source,
            "model": plan.model,
            "model_version": plan.version or None,
            "code": "job_canceled" if state is JobState.CANCELED else "job_failed",
            "error": f"batch job {plan.job}: {message}",
            "job": plan.job,
            "studio_url": url or None,
        }
        self.storage.write(
            self.settings.BATCH_CONTAINER, plan.output + ERROR_SUFFIX, json.dumps(body, indent=1).encode()
        )


def _format(name: str) -> str:
    return "parquet" if name.lower().endswith((".parquet", ".pq")) else "csv"


def _refused(plan: BatchPlan, code: str, message: str) -> BatchPlan:
    return replace(plan, problem=BatchProblem(code, message))


def build_azure_batch(
    settings: Settings, storage: Storage, ml: MLClient | None = None, **client_kwargs: Any
) -> AzureBatchScoring:
    """Over the app's one ``MLClient`` (the training jobs' one, ``backends.factory``), or ``ml``; with
    ``client_kwargs`` (``credential``, ``transport``: tests) a client of its own."""
    if ml is None and not client_kwargs:
        from backends.azure.jobs import AzureJobs
        from backends.factory import build_backends

        jobs = build_backends(settings).jobs
        ml = jobs.ml if isinstance(jobs, AzureJobs) else None
    if ml is None:
        from backends.azure.client import ml_client

        credential = client_kwargs.pop("credential", None)
        ml = ml_client(settings, credential, **client_kwargs)
    return AzureBatchScoring(ml, settings, storage)
