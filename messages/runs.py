"""The inputs of the two orchestrations, built by the triggers from a model's spec and the settings.

The policies travel in the input (never read again by the recipe): a run keeps the policy it started with, whatever
changes meanwhile. Older inputs still parse: ``from_dict`` fills what they lack with the defaults below and ignores
keys it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from messages.enums import Trigger, WebhookFormat
from messages.wire import Message

#: the name the pipeline itself goes by as an approver (locally; on Azure its managed identity): it can never approve
#: its own release, and a policy may not list it
PIPELINE_APPROVER = "mlops-pipeline"


@dataclass(frozen=True)
class Promotion(Message):
    """The promotion rule: the challenger wins if the ``confidence`` interval of its relative improvement in
    ``metric`` lies above ``min_improvement``; a first model must reach ``r2_floor`` in ``floor_metric`` (the value
    keeps the name of its first use, R², so that inputs of runs in flight still read)."""

    metric: str = "rmse"
    confidence: float = 0.95
    min_improvement: float = 0.0
    r2_floor: float = 0.3
    floor_metric: str = "r2"


@dataclass(frozen=True)
class DriftLimits(Message):
    """A feature drifted when PSI exceeds ``psi`` or the KS p-value falls below ``ks_pvalue``."""

    psi: float = 0.25
    ks_pvalue: float = 0.001


@dataclass(frozen=True)
class RetrainConfig(Message):
    model_name: str
    incoming: str = "incoming"
    quarantine: str = "quarantine"
    datasets: str = "datasets"
    promotion: Promotion = field(default_factory=Promotion)
    drift: DriftLimits = field(default_factory=DriftLimits)
    poll_seconds: float = 5.0
    timeout_minutes: int = 60
    #: the model's spec folder (``models/<name>``) when the model is trained as its spec declares; empty for the
    #: default model, trained by its own recipe from the settings
    spec: str = ""
    #: where the model's dataset lives in the datasets container (``models/<name>/``); empty for the default model
    dataset_prefix: str = ""


@dataclass(frozen=True)
class RetrainInput(Message):
    config: RetrainConfig
    trigger: Trigger = Trigger.HTTP
    #: ``"<incoming container>/<blob>"``, or None: train on the accumulated dataset
    data: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class ApiTest(Message):
    """The release's API tests of an endpoint: ``requests`` scoring calls, at most ``max_error_rate`` failing and a
    p99 latency of at most ``max_p99_ms``."""

    requests: int = 50
    max_p99_ms: float = 500.0
    max_error_rate: float = 0.01


@dataclass(frozen=True)
class DeployPolicy(Message):
    """How endpoint operations are polled: durable timers up to ``poll_seconds`` apart, for ``timeout_minutes``."""

    poll_seconds: float = 30.0
    timeout_minutes: float = 60.0


@dataclass(frozen=True)
class ApprovalPolicy(Message):
    """The release's approval step: it waits up to ``timeout_s`` for one of ``approvers`` to approve or reject."""

    approvers: list[str] = field(default_factory=list)
    timeout_s: float = 86_400.0


@dataclass(frozen=True)
class ReleaseConfig(Message):
    api_test: ApiTest = field(default_factory=ApiTest)
    #: production's tests; None: the same as QA's
    api_test_production: ApiTest | None = None
    #: seconds between looks at the model's release slot while another release holds it
    poll_seconds: float = 5.0
    deploy: DeployPolicy = field(default_factory=DeployPolicy)
    #: the model's endpoints are ``<endpoint_prefix>qa`` and ``<endpoint_prefix>production``: empty for the default
    #: model, ``"<model>-"`` for another
    endpoint_prefix: str = ""
    #: the policy's approval step between QA and production; None: no approval (the default policy)
    approval: ApprovalPolicy | None = None
    #: the format of each notification webhook of the settings, by position (the URLs, secrets, stay in the
    #: settings); empty: no notification is sent
    notify: list[WebhookFormat] = field(default_factory=list)
    #: the app's base URL for the links of notifications (empty: links relative to the app)
    links: str = ""

    @property
    def production_tests(self) -> ApiTest:
        return self.api_test_production or self.api_test


@dataclass(frozen=True)
class ReleaseInput(Message):
    model_name: str
    version: str
    trigger: Trigger = Trigger.EVENT
    event_id: str = ""
    config: ReleaseConfig = field(default_factory=ReleaseConfig)
