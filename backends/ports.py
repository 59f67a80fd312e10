"""One port (``typing.Protocol``) per external system, and the small values that cross them.

The Azure (``backends/azure/``) and local (``backends/local/``) implementations stand side by side
and are picked once from settings (``backends/factory.py``). Every value here is JSON-able through
``to_dict`` / ``from_dict`` so activities can return it to an orchestrator unchanged; those an orchestrator reads
(training requests and job statuses, endpoint operations) are messages (``messages.work``), re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from messages.batch import BatchChunk, BatchInput, BatchJobStatus, BatchPlan, BatchResult, ChunkResult
from messages.enums import JobState, ModelStage
from messages.work import (
    DeploymentRequest,
    JobStatus,
    Operation,
    OperationKind,
    OperationState,
    OperationStatus,
    TrainingRequest,
)
from ml.schema import Schema

__all__ = [
    "DeploymentRequest",
    "JobStatus",
    "Operation",
    "OperationKind",
    "OperationState",
    "OperationStatus",
    "TrainingRequest",
]

# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlobInfo:
    container: str
    name: str
    etag: str
    size: int
    last_modified: str
    metadata: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainingOutputs:
    """A local copy of a finished job's outputs: the MLflow model folder, metrics and holdout rows."""

    job_id: str
    model_dir: Path
    metrics: dict[str, float]
    holdout_path: Path


JOB_STATES = tuple(state.value for state in JobState)
MODEL_STAGES = tuple(stage.value for stage in ModelStage)

#: Allowed stage moves. A new version starts in ``qa``; ``production`` means deployed to production and
#: under test; ``champion`` is the one version serving production after a successful release.
STAGE_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "qa": ("production", "rejected", "archived"),
    "production": ("champion", "rejected"),
    "champion": ("archived",),
    "archived": ("qa",),
    "rejected": ("qa",),
}


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    stage: str
    tags: dict[str, str] = field(default_factory=dict)
    source: str = ""
    registered: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        return cls(
            d["name"],
            str(d["version"]),
            d.get("stage", ""),
            dict(d.get("tags") or {}),
            d.get("source", ""),
            d.get("registered", ""),
        )


@dataclass(frozen=True)
class EndpointState:
    """An endpoint's deployments (slot → model version) and traffic (slot → percent).

    ``key`` is a secret: activities never return it to an orchestrator (use ``public()``).
    """

    name: str
    url: str
    key: str
    deployments: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("key")
        return d

    @property
    def scoring_url(self) -> str:
        """Where to POST a scoring request (``url`` is the endpoint's base URL or already its scoring URI)."""
        return self.url if self.url.rstrip("/").endswith("/score") else self.url.rstrip("/") + "/score"

    @property
    def serving_version(self) -> str | None:
        """The version receiving the most traffic, if any."""
        live = [(pct, slot) for slot, pct in self.traffic.items() if pct > 0 and slot in self.deployments]
        return self.deployments[max(live)[1]] if live else None


# --- ports ----------------------------------------------------------------------------------


@runtime_checkable
class Storage(Protocol):
    """Blob storage. One implementation (azure-storage-blob) serves Azurite and Azure Storage."""

    def ensure_containers(self, names: tuple[str, ...]) -> None: ...

    def read(self, container: str, name: str) -> tuple[bytes, BlobInfo]: ...

    def info(self, container: str, name: str) -> BlobInfo: ...

    def write(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        metadata: dict[str, str] | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> BlobInfo: ...

    def list(self, container: str, prefix: str = "") -> list[BlobInfo]: ...

    def delete(self, container: str, name: str) -> None: ...

    def url(self, container: str, name: str) -> str: ...

    def read_range(self, container: str, name: str, offset: int, length: int, etag: str | None = None) -> bytes: ...

    def stage_block(self, container: str, name: str, block_id: str, data: bytes) -> None: ...

    def commit_blocks(
        self, container: str, name: str, block_ids: Sequence[str], *, metadata: dict[str, str] | None = None
    ) -> BlobInfo: ...


@runtime_checkable
class TrainingJobs(Protocol):
    """Runs ``python -m ml.train`` somewhere (a subprocess, an Azure ML command job)."""

    def submit(self, request: TrainingRequest) -> JobStatus: ...

    def status(self, job_id: str) -> JobStatus: ...

    def cancel(self, job_id: str) -> None: ...

    def fetch_outputs(self, job_id: str, dest: Path) -> TrainingOutputs: ...

    def model_source(self, job_id: str) -> str: ...


@runtime_checkable
class ModelRegistry(Protocol):
    """Model versions with tags and stages (MLflow locally, the Azure ML registry on Azure)."""

    def register(self, name: str, source: str, tags: dict[str, str]) -> ModelVersion: ...

    def get(self, name: str, version: str) -> ModelVersion: ...

    def list(self, name: str) -> list[ModelVersion]: ...

    def champion(self, name: str) -> ModelVersion | None: ...

    def set_stage(self, name: str, version: str, stage: str) -> ModelVersion: ...

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> ModelVersion:
        """Merge ``tags`` into the version's tags (the stage tag excepted: stages move by ``set_stage``)."""
        ...

    def download(self, name: str, version: str, dest: Path) -> Path: ...


@runtime_checkable
class Endpoints(Protocol):
    """Online endpoints (``qa`` and ``production``), each with up to two slots and a traffic split.

    Changes are long operations: ``begin_*`` starts one and returns at once (a deployment on Azure takes minutes);
    ``operation_status`` tells where it stands. Both are idempotent: beginning again an operation already under way
    or done returns its status instead of starting it twice, so a retried activity resumes where the first left off.
    Traffic only ever moves to deployments that finished successfully.
    """

    def begin_deploy(self, request: DeploymentRequest, model: ModelVersion) -> OperationStatus: ...

    def begin_traffic(self, endpoint: str, traffic: dict[str, int]) -> OperationStatus: ...

    def begin_remove(self, endpoint: str, slot: str) -> OperationStatus: ...

    def operation_status(self, operation: Operation) -> OperationStatus: ...

    def state(self, endpoint: str) -> EndpointState: ...

    def supervise(self) -> list[str]:
        """Bring back every endpoint that holds deployments but does not answer; return the names restarted."""
        ...


@runtime_checkable
class BatchScoring(Protocol):
    """Scores a file of rows with one model version, writing the predictions beside it.

    ``plan`` reads what it needs of the file (its header, its chunks) and either returns the chunks, which the
    orchestration fans out over (``score_chunk``, each idempotent: a retry replaces its own output), or starts a job
    on the platform (``BatchPlan.job``), which ``job_status`` follows; ``finish`` assembles the output. A file
    that cannot be scored is a ``BatchPlan.problem``, never an exception.
    """

    def plan(self, run: BatchInput, model: ModelVersion, schema: Schema) -> BatchPlan: ...

    def score_chunk(self, run: BatchInput, plan: BatchPlan, chunk: BatchChunk, schema: Schema) -> ChunkResult: ...

    def job_status(self, plan: BatchPlan) -> BatchJobStatus: ...

    def finish(self, run: BatchInput, plan: BatchPlan, results: list[ChunkResult]) -> BatchResult: ...
