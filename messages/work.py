"""The work the activities hand to the ports and get back: training jobs and long endpoint operations."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from messages.enums import JOB_FINISHED, JobState
from messages.wire import Message


@dataclass(frozen=True)
class TrainingRequest(Message):
    """What to train. ``job_name`` is deterministic (derived from the run), so a resubmit is a no-op."""

    job_name: str
    dataset_version: str
    data: list[str]
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobStatus(Message):
    job_id: str
    state: JobState
    message: str = ""
    log_tail: str = ""
    url: str = ""

    @property
    def finished(self) -> bool:
        return self.state in JOB_FINISHED


class OperationKind(StrEnum):
    """What a long endpoint operation changes."""

    DEPLOY = "deploy"
    TRAFFIC = "traffic"
    REMOVE = "remove"


class OperationState(StrEnum):
    """Where a long endpoint operation stands (ARM's Creating/Updating/Deleting are all ``running``)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class DeploymentRequest(Message):
    """Put ``model_name`` version ``version`` in ``slot`` of ``endpoint`` (``qa`` or ``production``)."""

    endpoint: str
    slot: str
    model_name: str
    version: str


@dataclass(frozen=True)
class Operation(Message):
    """A long endpoint operation begun by one activity and polled by later ones (no secret in it).

    ``status_url`` is where the implementation polls (ARM's ``Azure-AsyncOperation``); it is a hint only: an
    implementation finds an operation's outcome from the resource itself when the hint is missing or stale.
    """

    kind: OperationKind
    endpoint: str
    slot: str = ""
    version: str = ""
    traffic: dict[str, int] = field(default_factory=dict)
    status_url: str = ""
    model_name: str = ""


@dataclass(frozen=True)
class OperationStatus(Message):
    """An operation and where it stands; ``message`` holds the platform's error when it failed."""

    operation: Operation
    state: OperationState
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.state is not OperationState.RUNNING
