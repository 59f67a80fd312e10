"""The orchestrations' blueprint: registers each recipe under its name from ``orchestrators.names``.

Every run ends with the ``record_outcome`` activity (the ``RunFinished`` telemetry the alerts read): after the
recipe returns, with its outcome, and after it raises, with outcome ``failed`` before the failure propagates.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

import azure.durable_functions as df

from activities import names as act
from messages.enums import Outcome, RunKind, Trigger
from orchestrators import names
from orchestrators.batch import batch
from orchestrators.release import release
from orchestrators.retrain import retrain
from orchestrators.steps import Orchestration, call, short_error

bp = df.Blueprint()

#: the outcome of a run whose orchestration failed (kept equal to ``backends.telemetry.FAILED_OUTCOME``)
FAILED = Outcome.FAILED.value
_DEFAULT_TRIGGER = {
    RunKind.RETRAIN: Trigger.HTTP.value,
    RunKind.RELEASE: Trigger.EVENT.value,
    RunKind.BATCH: Trigger.BLOB.value,
}


@bp.function_name(names.RETRAIN)
@bp.orchestration_trigger(context_name="context")
def retrain_orchestrator(context: df.DurableOrchestrationContext) -> Orchestration:
    return (yield from recorded(context, RunKind.RETRAIN, retrain(context)))


@bp.function_name(names.RELEASE)
@bp.orchestration_trigger(context_name="context")
def release_orchestrator(context: df.DurableOrchestrationContext) -> Orchestration:
    return (yield from recorded(context, RunKind.RELEASE, release(context)))


@bp.function_name(names.BATCH)
@bp.orchestration_trigger(context_name="context")
def batch_orchestrator(context: df.DurableOrchestrationContext) -> Orchestration:
    return (yield from recorded(context, RunKind.BATCH, batch(context)))


def recorded(context: df.DurableOrchestrationContext, kind: RunKind, recipe: Orchestration) -> Orchestration:
    """Run ``recipe`` to its end, record how it ended, then return its output or re-raise its failure."""
    started = context.current_utc_datetime
    run: dict[str, Any] = context.get_input() or {}
    try:
        result = yield from recipe
    except Exception as exc:
        yield from _record(
            context, outcome(context, kind, run, started, {"outcome": FAILED, "reason": short_error(exc)})
        )
        raise
    yield from _record(context, outcome(context, kind, run, started, result))
    return result


def outcome(
    context: df.DurableOrchestrationContext,
    kind: RunKind,
    run: dict[str, Any],
    started: datetime,
    result: dict[str, Any],
) -> dict[str, Any]:
    """The ``record_outcome`` payload: the run's headline fields from its output, its input where they are absent."""
    config = run.get("config") or {}
    model = run.get("model_name") or config.get("model_name") or run.get("model") or ""
    version = result.get("model_version") or run.get("version") or ""
    return {
        "run_id": context.instance_id,
        "kind": RunKind(kind).value,
        "outcome": str(result.get("outcome") or "unrecorded"),
        "model": str(model),
        "version": str(version),
        "trigger": str(result.get("trigger") or run.get("trigger") or _DEFAULT_TRIGGER[kind]),
        "duration_s": round((context.current_utc_datetime - started).total_seconds(), 3),
        "reason": str(result.get("reason") or ""),
    }


def _record(context: df.DurableOrchestrationContext, payload: dict[str, Any]) -> Generator[Any, Any, None]:
    """Telemetry never changes a run's result: a recording that still fails after its retries is dropped here
    (the activity wrapper has logged the failure, and the history keeps it)."""
    try:
        yield from call(context, act.RECORD_OUTCOME, payload)
    except Exception:  # any activity failure: see the docstring
        return
