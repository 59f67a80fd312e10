"""Every activity registered under its name from ``activities.names`` (input binding ``payload``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import azure.durable_functions as df
from azure.core.exceptions import ServiceRequestError, ServiceResponseError

from activities import batch, data, models, names, notify, outcomes, release, training
from backends.errors import TransientBackendError

log = logging.getLogger(__name__)

Activity = Callable[[dict[str, Any]], dict[str, Any]]

ACTIVITIES: dict[str, Activity] = {
    names.VALIDATE_DROP: data.validate_drop,
    names.QUARANTINE_DROP: data.quarantine_drop,
    names.ACCEPT_DROP: data.accept_drop,
    names.SNAPSHOT_DATASET: data.snapshot_dataset,
    names.SUBMIT_TRAINING: training.submit_training,
    names.TRAINING_STATUS: training.training_status,
    names.CANCEL_TRAINING: training.cancel_training,
    names.EVALUATE_CHALLENGER: models.evaluate_challenger,
    names.REGISTER_MODEL: models.register_model,
    names.DESCRIBE_MODEL: models.describe_model,
    names.SET_MODEL_STAGE: models.set_model_stage,
    names.CLAIM_RELEASE: release.claim_release,
    names.FREE_RELEASE: release.free_release,
    names.DEPLOY_MODEL: release.deploy_model,
    names.SET_TRAFFIC: release.set_traffic,
    names.REMOVE_DEPLOYMENT: release.remove_deployment,
    names.ENDPOINT_OPERATION_STATUS: release.endpoint_operation_status,
    names.API_TEST: release.api_test,
    names.RECORD_OUTCOME: outcomes.record_outcome,
    names.PLAN_BATCH: batch.plan_batch,
    names.SCORE_CHUNK: batch.score_chunk,
    names.BATCH_JOB_STATUS: batch.batch_job_status,
    names.FINISH_BATCH: batch.finish_batch,
    names.REFUSE_BATCH: batch.refuse_batch,
    names.NOTIFY: notify.notify,
    names.TAG_MODEL: notify.tag_model,
}

bp = df.Blueprint()


class ActivityFailed(RuntimeError):
    """What an activity raises to the host: the cause's type and message, marked when a retry can help."""


def retryable(exc: BaseException) -> bool:
    """A failure a later attempt can get past: storage or a service unreachable or busy, a lost race."""
    return isinstance(
        exc,
        TransientBackendError | ConnectionError | TimeoutError | OSError | ServiceRequestError | ServiceResponseError,
    ) or bool(getattr(exc, "retryable", False))


def _logged(name: str, activity: Activity) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The activity as the worker calls it (a function of ``payload``), logging its name and outcome; a failure
    reaches the orchestrator as ``ActivityFailed`` saying whether a retry can help."""

    def run(payload: dict[str, Any]) -> dict[str, Any]:
        log.info("activity %s started", name)
        try:
            result = activity(payload)
        except Exception as exc:
            log.exception("activity %s failed", name)
            mark = f"{names.RETRYABLE} " if retryable(exc) else ""
            raise ActivityFailed(f"{mark}{type(exc).__name__}: {exc}") from exc
        log.info("activity %s done", name)
        return result

    run.__name__ = run.__qualname__ = name
    return run


for _name, _activity in ACTIVITIES.items():
    bp.function_name(_name)(bp.activity_trigger(input_name="payload")(_logged(_name, _activity)))
