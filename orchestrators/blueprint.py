"""The orchestrations' blueprint: registers each recipe under its name from ``orchestrators.names``."""

from __future__ import annotations

import azure.durable_functions as df

from orchestrators import names
from orchestrators.release import release
from orchestrators.retrain import retrain
from orchestrators.steps import Orchestration

bp = df.Blueprint()


@bp.function_name(names.RETRAIN)
@bp.orchestration_trigger(context_name="context")
def retrain_orchestrator(context: df.DurableOrchestrationContext) -> Orchestration:
    return (yield from retrain(context))


@bp.function_name(names.RELEASE)
@bp.orchestration_trigger(context_name="context")
def release_orchestrator(context: df.DurableOrchestrationContext) -> Orchestration:
    return (yield from release(context))


