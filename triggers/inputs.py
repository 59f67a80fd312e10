"""Orchestration inputs, built from Settings and the models' specs by the triggers (orchestrators never read the
environment).

The default model (``MODEL_NAME``) takes its policies from the settings, as it always has; every other model from
its spec (``models/<name>/model.yaml``), with its own dataset folder and trained as the spec declares.
A drop's model is the first folder of its blob name when that folder is one of the app's models
(``incoming/<model>/<file>``); any other drop (``incoming/<file>``, ``incoming/2026/<file>``) is the default model's.
"""

from __future__ import annotations

from typing import Any

from backends.settings import Settings
from messages.enums import Trigger
from messages.runs import (
    ApiTest,
    ApprovalPolicy,
    DeployPolicy,
    DriftLimits,
    Promotion,
    ReleaseConfig,
    ReleaseInput,
    RetrainConfig,
    RetrainInput,
)
from ml.spec import ApiTest as SpecApiTest
from ml.spec import ModelSpec
from services.catalog import Catalog, ModelDisabled, spec_path

#: what may start a retrain (a release is started by a registration event)
TRIGGERS = (Trigger.BLOB, Trigger.TIMER, Trigger.HTTP)


def model_of_blob(name: str, models: Catalog) -> ModelSpec | None:
    """The model a drop at ``<incoming>/<name>`` is for: the spec of its first folder when that is one of the app's
    models (other than the default), else None (the default model). ``ModelDisabled`` when that model's spec has
    problems."""
    folder, slash, _ = name.partition("/")
    if not slash or folder == models.default or folder not in models.models:
        return None
    spec = models.spec(folder)
    if spec is None:
        raise ModelDisabled(models.why_not(folder))
    return spec


__all__ = ["ModelDisabled", "model_of_blob", "release_input", "retrain_input"]


def retrain_input(
    settings: Settings, trigger: Trigger | str, data: str | None, etag: str | None, spec: ModelSpec | None = None
) -> dict[str, Any]:
    """The retrain orchestration's input (``RetrainInput`` as JSON); ``data`` is ``"<incoming container>/<blob>"``
    or None; ``spec`` the model's spec, or None for the default model."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown retrain trigger {trigger!r}: expected one of {', '.join(TRIGGERS)}")
    if spec is not None:
        return RetrainInput(_spec_config(settings, spec), Trigger(trigger), data, etag).to_dict()
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


def _spec_config(settings: Settings, spec: ModelSpec) -> RetrainConfig:
    rule = spec.promotion
    return RetrainConfig(
        model_name=spec.name,
        incoming=settings.INCOMING_CONTAINER,
        quarantine=settings.QUARANTINE_CONTAINER,
        datasets=settings.DATASETS_CONTAINER,
        promotion=Promotion(rule.metric, rule.confidence, rule.min_improvement, rule.floor, rule.floor_metric),
        drift=DriftLimits(spec.drift.psi, spec.drift.ks_pvalue),
        poll_seconds=settings.training_poll_seconds,
        timeout_minutes=settings.TRAINING_TIMEOUT_MINUTES,
        spec=spec_path(spec),
        dataset_prefix=f"models/{spec.name}/",
    )


def release_input(settings: Settings, version: str, event_id: str, spec: ModelSpec | None = None) -> dict[str, Any]:
    """The release orchestration's input (``ReleaseInput`` as JSON) for one registered model version: of the default
    model (its endpoints ``qa`` and ``production``), or of the model of ``spec`` (``<model>-qa``, ...)."""
    qa = ApiTest(requests=50, max_p99_ms=settings.API_TEST_MAX_P99_MS, max_error_rate=settings.API_TEST_MAX_ERROR_RATE)
    production = ApiTest(
        qa.requests, float(settings.PROD_API_TEST_MAX_P99_MS or settings.API_TEST_MAX_P99_MS), qa.max_error_rate
    )
    approval = None
    if spec is not None:  # the spec's release steps: qa, then full (production), each with its API tests
        steps = {step.step: step.api_test for step in spec.release}
        qa, production = _api_test(steps.get("qa"), qa), _api_test(steps.get("full"), production)
        gate = next((step.approval for step in spec.release if step.approval is not None), None)
        approval = ApprovalPolicy(list(gate.approvers), gate.timeout_s) if gate is not None else None
    config = ReleaseConfig(
        api_test=qa,
        api_test_production=production,
        poll_seconds=max(0.5, settings.training_poll_seconds / 10),  # the release slot's poll
        deploy=DeployPolicy(settings.deploy_poll_seconds, settings.DEPLOY_TIMEOUT_MINUTES),
        endpoint_prefix=f"{spec.name}-" if spec is not None else "",
        approval=approval,
        notify=[target.format for target in settings.notify_webhooks],
        links=settings.APP_BASE_URL,
    )
    model = spec.name if spec is not None else settings.MODEL_NAME
    return ReleaseInput(model, version, Trigger.EVENT, event_id, config).to_dict()


def _api_test(declared: SpecApiTest | None, default: ApiTest) -> ApiTest:
    if declared is None:
        return default
    return ApiTest(declared.requests, declared.max_p99_ms, declared.max_error_rate)
