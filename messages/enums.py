"""The names the run views are made of: kinds, triggers, stages, outcomes, runtime statuses, slots, environments and
model stages. One definition each, read by the code and (``for_page``) by the dashboard."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class RunKind(StrEnum):
    RETRAIN = "retrain"
    RELEASE = "release"
    BATCH = "batch"


class Trigger(StrEnum):
    """What started a run: a data drop, a model's schedule, an HTTP call, a registration event."""

    BLOB = "blob"
    TIMER = "timer"
    HTTP = "http"
    EVENT = "event"


class RuntimeStatus(StrEnum):
    """Durable Functions' runtime statuses, as the status API spells them."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TERMINATED = "Terminated"
    CANCELED = "Canceled"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    SUSPENDED = "Suspended"


FINAL_STATUSES = (RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.TERMINATED, RuntimeStatus.CANCELED)


class StageStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class Stage(StrEnum):
    """The stages of the two recipes, in the order they run."""

    VALIDATE = "validate"
    ACCEPT = "accept"
    TRAIN = "train"
    EVALUATE = "evaluate"
    REGISTER = "register"
    WAIT = "wait"
    DEPLOY_QA = "deploy_qa"
    TEST_QA = "test_qa"
    #: the release waits for a person's decision (a policy's ``approval`` step)
    APPROVAL = "approval"
    DEPLOY_PRODUCTION = "deploy_production"
    TEST_PRODUCTION = "test_production"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    PLAN = "plan"
    SCORE = "score"
    ASSEMBLE = "assemble"
    #: a notification that could not be delivered (recorded after the release's own stages; never fails it)
    NOTIFY = "notify"


class Outcome(StrEnum):
    """How a run ended (a finished run's ``outcome``); ``FAILED`` is the orchestration failing (a bug or an outage
    outlasting the retries), every other one a normal ending."""

    REGISTERED = "registered"
    NOT_BETTER = "not_better"
    INVALID_DATA = "invalid_data"
    TRAINING_FAILED = "training_failed"
    SKIPPED_NO_NEW_DATA = "skipped_no_new_data"
    SUPERSEDED = "superseded"
    DEPLOYED = "deployed"
    QA_FAILED = "qa_failed"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"
    APPROVAL_TIMED_OUT = "approval_timed_out"
    SCORED = "scored"
    NO_CHAMPION = "no_champion"
    MODEL_DISABLED = "model_disabled"
    FAILED = "failed"


RETRAIN_OUTCOMES = (
    Outcome.REGISTERED,
    Outcome.NOT_BETTER,
    Outcome.INVALID_DATA,
    Outcome.TRAINING_FAILED,
    Outcome.SKIPPED_NO_NEW_DATA,
)
RELEASE_OUTCOMES = (
    Outcome.DEPLOYED,
    Outcome.QA_FAILED,
    Outcome.ROLLED_BACK,
    Outcome.SUPERSEDED,
    Outcome.REJECTED,
    Outcome.APPROVAL_TIMED_OUT,
)

BATCH_OUTCOMES = (Outcome.SCORED, Outcome.INVALID_DATA, Outcome.NO_CHAMPION, Outcome.MODEL_DISABLED, Outcome.SUPERSEDED)


class Decision(StrEnum):
    """What an approver decides about a release waiting at its approval step."""

    APPROVE = "approve"
    REJECT = "reject"


class NoticeKind(StrEnum):
    """What a notification is about: a release waiting for approval, or a release that ended."""

    APPROVAL_PENDING = "approval_pending"
    OUTCOME = "outcome"


class WebhookFormat(StrEnum):
    """The body a notification webhook takes: CloudEvents 1.0 structured JSON, a Teams or a Slack incoming webhook."""

    JSON = "json"
    TEAMS = "teams"
    SLACK = "slack"


class Slot(StrEnum):
    """The two deployments of an endpoint (blue/green)."""

    BLUE = "blue"
    GREEN = "green"


class Environment(StrEnum):
    """The endpoints a release deploys to, in order."""

    QA = "qa"
    PRODUCTION = "production"


def endpoint_id(prefix: str, environment: Environment | str) -> str:
    """A model's endpoint: ``qa``/``production`` for the default model, ``<model>-qa``/``<model>-production`` for
    another (``prefix`` is ``""`` or ``"<model>-"``)."""
    return f"{prefix}{Environment(environment).value}"


def endpoint_parts(endpoint: str) -> tuple[str, Environment]:
    """(the model prefix, the environment) of an endpoint id; ``ValueError`` for one that is neither form."""
    for environment in Environment:
        if endpoint == environment.value:
            return "", environment
        suffix = "-" + environment.value
        if endpoint.endswith(suffix) and len(endpoint) > len(suffix):
            return endpoint[: -len(environment.value)], environment
    raise ValueError(f"unknown endpoint {endpoint!r}: expected qa, production, <model>-qa or <model>-production")


class ModelStage(StrEnum):
    """Where a registered version stands: a new version starts in ``qa``; ``production`` means deployed to production
    and under test; ``champion`` is the one version serving production after a successful release."""

    CHAMPION = "champion"
    QA = "qa"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    REJECTED = "rejected"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


JOB_FINISHED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED)


class SpecStatus(StrEnum):
    """A model's spec as the app loaded it: ``ok`` (the model runs) or ``error`` (the model is disabled)."""

    OK = "ok"
    ERROR = "error"


#: how the dashboard colours a value: good endings, bad endings, work under way (the rest is neutral)
GOOD = (
    Outcome.REGISTERED,
    Outcome.DEPLOYED,
    Outcome.SCORED,
    StageStatus.SUCCEEDED,
    RuntimeStatus.COMPLETED,
    ModelStage.CHAMPION,
    SpecStatus.OK,
)
BAD = (
    Outcome.INVALID_DATA,
    Outcome.NO_CHAMPION,
    Outcome.MODEL_DISABLED,
    Outcome.TRAINING_FAILED,
    Outcome.QA_FAILED,
    Outcome.ROLLED_BACK,
    Outcome.REJECTED,
    Outcome.APPROVAL_TIMED_OUT,
    Outcome.FAILED,
    StageStatus.FAILED,
    RuntimeStatus.FAILED,
    RuntimeStatus.TERMINATED,
    ModelStage.REJECTED,
    SpecStatus.ERROR,
)
BUSY = (StageStatus.RUNNING, RuntimeStatus.RUNNING, RuntimeStatus.PENDING, ModelStage.QA, ModelStage.PRODUCTION)


def for_page() -> dict[str, Any]:
    """The enums as the dashboard's script reads them (``ENUMS`` in the page)."""
    return {
        "kinds": [k.value for k in RunKind],
        "final": [s.value for s in FINAL_STATUSES],
        "good": sorted({v.value for v in GOOD}),
        "bad": sorted({v.value for v in BAD}),
        "busy": sorted({v.value for v in BUSY}),
        "stages": [s.value for s in Stage],
        "environments": [e.value for e in Environment],
    }
