"""The BatchScoring port on Azure ML: not available yet. A batch run on ``MLOPS_BACKEND=azureml`` is refused with a
report saying so (outcome ``invalid_data``, code ``unsupported``), never a crash.

What remains: ``plan`` invokes the model's Azure ML batch endpoint (its deployment of the champion) on the input's
datastore URI with the output path ``<model>/out/``, returning the job's name; ``job_status`` reads the job
(``JobState`` from its status) for the orchestration's durable-timer polling; ``finish`` moves the job's output file
to ``<model>/out/<path>``. Tested at the HTTP transport boundary with answers shaped as the azure-ai-ml recordings.
"""

from __future__ import annotations

from dataclasses import replace

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

UNAVAILABLE = "batch scoring is not available on Azure ML yet (MLOPS_BACKEND=azureml): score the file offline"


class AzureBatchScoring:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def plan(self, run: BatchInput, model: ModelVersion, schema: Schema) -> BatchPlan:
        plan = BatchPlan(run.model, model.version, output=output_name(run.name))
        return replace(plan, problem=BatchProblem("unsupported", f"{run.name}: {UNAVAILABLE}"))

    def score_chunk(self, run: BatchInput, plan: BatchPlan, chunk: BatchChunk, schema: Schema) -> ChunkResult:
        raise ValueError(UNAVAILABLE)

    def job_status(self, plan: BatchPlan) -> BatchJobStatus:
        return BatchJobStatus(plan.job, JobState.FAILED, UNAVAILABLE)

    def finish(self, run: BatchInput, plan: BatchPlan, results: list[ChunkResult]) -> BatchResult:
        raise ValueError(UNAVAILABLE)


def build_azure_batch(settings: Settings, storage: Storage) -> AzureBatchScoring:
    return AzureBatchScoring(storage)
