"""Orchestration inputs, built from Settings by the triggers (orchestrators never read the environment)."""

from __future__ import annotations

from typing import Any

from backends.settings import Settings
from messages.enums import Trigger
from messages.runs import (
    ApiTest,
    DeployPolicy,
    DriftLimits,
    Promotion,
    ReleaseConfig,
    ReleaseInput,
    RetrainConfig,
    RetrainInput,
)

#: what may start a retrain (a release is started by a registration event)
TRIGGERS = (Trigger.BLOB, Trigger.TIMER, Trigger.HTTP)


def retrain_input(settings: Settings, trigger: Trigger | str, data: str | None, etag: str | None) -> dict[str, Any]:
    """The retrain orchestration's input (``RetrainInput`` as JSON); ``data`` is ``"<incoming container>/<blob>"``
    or None."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown retrain trigger {trigger!r}: expected one of {', '.join(TRIGGERS)}")
    config = RetrainConfig(
        model_name=settings.MODEL_NAME,
        incoming=settings.INCOMING_CONTAINER,
        quarantine=settings.QUARANTINE_CONTAINER,
        datasets=settings.DATASETS_CONTAINER,
        promotion=Promotion(
            settings.PROMOTION_METRIC,
            settings.PROMOTION_CONFIDENCE,
            settings.PROMOTION_MIN_IMPROVEMENT,
            settings.PROMOTION_R2_FLOOR,
        ),
        drift=DriftLimits(settings.DRIFT_PSI_THRESHOLD, settings.DRIFT_KS_PVALUE),
        poll_seconds=settings.training_poll_seconds,
        timeout_minutes=settings.TRAINING_TIMEOUT_MINUTES,
    )
    return RetrainInput(config, Trigger(trigger), data, etag).to_dict()


def release_input(settings: Settings, version: str, event_id: str) -> dict[str, Any]:
    """The release orchestration's input (``ReleaseInput`` as JSON) for one registered model version."""
    qa = ApiTest(requests=50, max_p99_ms=settings.API_TEST_MAX_P99_MS, max_error_rate=settings.API_TEST_MAX_ERROR_RATE)
    production = ApiTest(
        qa.requests, float(settings.PROD_API_TEST_MAX_P99_MS or settings.API_TEST_MAX_P99_MS), qa.max_error_rate
    )
    config = ReleaseConfig(
        api_test=qa,
        api_test_production=production,
        poll_seconds=max(0.5, settings.training_poll_seconds / 10),  # the release slot's poll
        deploy=DeployPolicy(settings.deploy_poll_seconds, settings.DEPLOY_TIMEOUT_MINUTES),
    )
    return ReleaseInput(settings.MODEL_NAME, version, Trigger.EVENT, event_id, config).to_dict()
