"""The nightly retrain: one run per day on the accumulated dataset (it skips itself when nothing is new)."""

import logging
from datetime import UTC, date, datetime

import azure.durable_functions as df
import azure.functions as func

from backends.settings import current
from orchestrators.ids import retrain_id_nightly
from orchestrators.names import RETRAIN
from triggers.durable import DurableClient, start_once
from triggers.inputs import retrain_input
from triggers.names import NIGHTLY_RETRAIN
from triggers.services import ensure_containers

log = logging.getLogger(__name__)
bp = df.Blueprint()


async def start_nightly(client: DurableClient, day: date) -> str:
    """Start (once) the retrain of ``day``; returns the instance id."""
    instance_id = retrain_id_nightly(day)
    await ensure_containers()
    started = await start_once(client, RETRAIN, instance_id, retrain_input(current(), "timer", None, None))
    log.info("nightly retrain %s %s", instance_id, "started" if started else "already exists")
    return instance_id


@bp.function_name(NIGHTLY_RETRAIN)
@bp.timer_trigger(arg_name="timer", schedule="%RETRAIN_SCHEDULE%", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def nightly_retrain(timer: func.TimerRequest, client: DurableClient) -> None:
    if timer.past_due:
        log.warning("nightly retrain timer is past due: running now")
    await start_nightly(client, datetime.now(UTC).date())
