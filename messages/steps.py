"""What the recipes send to their activities and read back: one message per activity request and result.

Each activity parses its request with ``from_dict`` (a malformed payload is a permanent ``MessageError``), and each
recipe reads a result with ``from_dict`` too, so a renamed field fails in one place, loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from messages.enums import Decision, ModelStage, NoticeKind, WebhookFormat
from messages.runs import ApiTest, Promotion, RetrainConfig
from messages.wire import Message
from messages.work import Operation, OperationState, OperationStatus


@dataclass(frozen=True)
class ModelRef(Message):
    model_name: str
    version: str


@dataclass(frozen=True)
class DropRequest(Message):
    """A drop to validate, accept or quarantine (``report``: the validation report's blob)."""

    data: str
    config: RetrainConfig
    etag: str = ""
    report: str = ""


@dataclass(frozen=True)
class DropCheck(Message):
    ok: bool
    summary: str
    messages: list[str] = field(default_factory=list)
    rows: int = 0
    etag: str = ""
    report: str = ""


@dataclass(frozen=True)
class Quarantined(Message):
    quarantined: str
    report: str = ""


@dataclass(frozen=True)
class DatasetRef(Message):
    """A dataset version as the recipe reads it (``services.datasets.DatasetVersion``'s JSON form)."""

    version: str | None = None
    rows: int = 0
    #: the accepted drops, ``{"blob", "etag", "rows", "sha256", "path"}`` each (the lineage the registry records)
    drops: list[dict[str, Any]] = field(default_factory=list)
    #: the drops as ``container/blob`` references (what a training job reads)
    paths: list[str] = field(default_factory=list)
    #: set when the accepted drop added nothing: the ``blob@etag`` already holding the very same rows
    duplicate_of: str | None = None
    #: the dataset version the champion was trained on (``snapshot_dataset`` only)
    champion_dataset_version: str | None = None


@dataclass(frozen=True)
class DatasetRequest(Message):
    config: RetrainConfig


@dataclass(frozen=True)
class JobRef(Message):
    job_id: str


@dataclass(frozen=True)
class EvaluateRequest(Message):
    job_id: str
    model_name: str
    promotion: Promotion = field(default_factory=Promotion)


@dataclass(frozen=True)
class Evaluation(Message):
    promote: bool
    reason: str
    metric: str = ""
    challenger: dict[str, float] = field(default_factory=dict)
    champion: dict[str, float] | None = None
    interval: list[float] | None = None
    n_rows: int = 0
    champion_version: str | None = None
    job_id: str = ""


@dataclass(frozen=True)
class RegisterRequest(Message):
    model_name: str
    job_id: str
    run_id: str
    dataset_version: str
    drops: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Registered(Message):
    """A registered version (the registry's answer; the recipe reads its ``version``)."""

    version: str
    name: str = ""
    stage: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None


@dataclass(frozen=True)
class Described(Message):
    """What the release reads of its version: the retrain run that registered it (None if not recorded)."""

    run_id: str | None = None


@dataclass(frozen=True)
class StageMove(Message):
    model_name: str
    version: str
    stage: ModelStage


@dataclass(frozen=True)
class ReleaseClaim(Message):
    model_name: str
    version: str
    owner: str


@dataclass(frozen=True)
class Claim(Message):
    granted: bool
    superseded: bool
    active: str | None
    newest: str


@dataclass(frozen=True)
class DeployRequest(Message):
    model_name: str
    version: str
    endpoint: str


@dataclass(frozen=True)
class DeployPlan(Message):
    """Where a deployment goes (``slot``), what serves beside it, and the operation's status to poll (None in a
    plan recorded before deployments became long operations: the deployment was done on return)."""

    slot: str
    status: OperationStatus | None = None
    previous_slot: str | None = None
    previous_version: str | None = None
    others: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrafficRequest(Message):
    endpoint: str
    traffic: dict[str, int]
    model_name: str = ""


@dataclass(frozen=True)
class RemoveRequest(Message):
    endpoint: str
    slot: str
    model_name: str = ""


@dataclass(frozen=True)
class OperationPoll(Message):
    operation: Operation


@dataclass(frozen=True)
class ApiTestRequest(Message):
    model_name: str
    version: str
    endpoint: str
    thresholds: ApiTest = field(default_factory=ApiTest)


@dataclass(frozen=True)
class ApiVerdict(Message):
    passed: bool
    summary: str
    reasons: list[str] = field(default_factory=list)
    requests: int = 0
    p99_ms: float = 0.0
    error_rate: float = 0.0
    version: str = ""


@dataclass(frozen=True)
class ApprovalDecision(Message):
    """The external event an approver's ``POST /api/runs/{id}/approve`` or ``/reject`` raises: who decided, how,
    why, and when the API took it."""

    decision: Decision
    by: str
    comment: str = ""
    principal_id: str = ""
    at: str = ""


@dataclass(frozen=True)
class TagRequest(Message):
    """Tags to set on a model version (merged into the ones it has)."""

    model_name: str
    version: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice(Message):
    """One notification to one webhook of the settings (``target``: its position; ``format``: the body it takes)."""

    kind: NoticeKind
    target: int
    format: WebhookFormat
    run_id: str
    model_name: str
    version: str
    outcome: str = ""
    reason: str = ""
    approvers: list[str] = field(default_factory=list)
    since: str = ""
    until: str = ""
    #: the run in the API; for a pending approval also where to approve or reject
    link: str = ""
    approve_link: str = ""
    reject_link: str = ""
    time: str = ""


def succeeded(status: OperationStatus) -> bool:
    return status.state is OperationState.SUCCEEDED


def failed_message(status: OperationStatus | dict[str, Any]) -> str:
    message = status.message if isinstance(status, OperationStatus) else str(status.get("message") or "")
    return message or "no message"
