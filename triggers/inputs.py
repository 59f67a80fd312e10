"""Orchestration inputs, built from Settings by the triggers (orchestrators never read the environment)."""

from __future__ import annotations

from typing import Any

from backends.settings import Settings

TRIGGERS = ("blob", "timer", "http")


def retrain_input(settings: Settings, trigger: str, data: str | None, etag: str | None) -> dict[str, Any]:
    """The retrain orchestration's input; ``data`` is ``"<incoming container>/<blob>"`` or None."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown retrain trigger {trigger!r}: expected one of {', '.join(TRIGGERS)}")
    return {
        "trigger": trigger,
        "data": data,
        "etag": etag,
        "config": {
            "model_name": settings.MODEL_NAME,
            "incoming": settings.INCOMING_CONTAINER,
            "quarantine": settings.QUARANTINE_CONTAINER,
            "datasets": settings.DATASETS_CONTAINER,
            "promotion": {
                "metric": settings.PROMOTION_METRIC,
                "confidence": settings.PROMOTION_CONFIDENCE,
                "min_improvement": settings.PROMOTION_MIN_IMPROVEMENT,
                "r2_floor": settings.PROMOTION_R2_FLOOR,
            },
            "drift": {"psi": settings.DRIFT_PSI_THRESHOLD, "ks_pvalue": settings.DRIFT_KS_PVALUE},
            "poll_seconds": settings.training_poll_seconds,
            "timeout_minutes": settings.TRAINING_TIMEOUT_MINUTES,
        },
    }


def release_input(settings: Settings, version: str, event_id: str) -> dict[str, Any]:
    """The release orchestration's input for one registered model version."""
    qa = {"max_p99_ms": settings.API_TEST_MAX_P99_MS, "max_error_rate": settings.API_TEST_MAX_ERROR_RATE,
          "requests": 50}
    production = {**qa, "max_p99_ms": settings.PROD_API_TEST_MAX_P99_MS or settings.API_TEST_MAX_P99_MS}
    return {
        "model_name": settings.MODEL_NAME,
        "version": version,
        "trigger": "event",
        "event_id": event_id,
        "config": {
            "api_test": qa,
            "api_test_production": production,
            "poll_seconds": max(0.5, settings.training_poll_seconds / 10),  # the release slot's poll
            "deploy": {"poll_seconds": settings.deploy_poll_seconds,
                       "timeout_minutes": settings.DEPLOY_TIMEOUT_MINUTES},
        },
    }
