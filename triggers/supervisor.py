"""Local backend only: keep the scoring endpoints serving what they hold.

Offline, QA and production are scoring servers that stop with ``make run`` (or die with the machine); on Azure,
Azure ML runs and heals its endpoints, so this function is not registered there. It runs at start-up and every
30 seconds, and restarts a server whose persisted state holds deployments but that does not answer.
"""

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from triggers.names import SUPERVISE_ENDPOINTS
from triggers.services import backends

log = logging.getLogger(__name__)
bp = df.Blueprint()


def _supervise() -> list[str]:
    """In a worker thread: the first call builds the backends, which imports MLflow (seconds on the event loop)."""
    return backends().endpoints.supervise()


@bp.function_name(SUPERVISE_ENDPOINTS)
@bp.timer_trigger(arg_name="timer", schedule="*/30 * * * * *", run_on_startup=True, use_monitor=False)
async def supervise_endpoints(timer: func.TimerRequest) -> None:
    restarted = await asyncio.to_thread(_supervise)
    if restarted:
        log.info("endpoint supervisor restarted: %s", ", ".join(restarted))
