"""Scheduled retrains: every model on its own NCRONTAB schedule, on the accumulated dataset (a run skips itself when
nothing is new).

A timer trigger's schedule is fixed when the app starts, and the models' schedules live in their specs, so one timer
ticks every minute (``TICK_SCHEDULE``) and starts the retrain of each model whose schedule had an occurrence since
the tick before (``services/schedules.py``). A minute: a model's run starts within a minute of its time, and a
tick costs one schedule evaluation per model (microseconds) plus one Durable start per due model, 1440 invocations
a day, nothing on any plan. Every tick looks back ``LOOKBACK`` (two ticks), so a late tick misses nothing; the
instance id is the model's and the occurrence's (``retrain_id_scheduled``), so an occurrence seen by two ticks, or by
a repeated or past-due one, starts one run. After downtime the host's schedule monitor reports the last tick
(``ScheduleStatus.Last``) and the window reaches back to it: each model starts one run, for the latest occurrence
it missed. A schedule more frequent than the tick runs at most once a tick.

The default model (``MODEL_NAME``) retrains on ``RETRAIN_SCHEDULE``; every other model on its spec's ``schedule``
(default ``RETRAIN_SCHEDULE``). A model whose spec is disabled is skipped, logged once per process.
"""

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from backends.settings import current
from orchestrators.ids import retrain_id_scheduled
from orchestrators.names import RETRAIN
from services.catalog import catalog
from services.schedules import due_retrains
from triggers.durable import DurableClient, StartFailed, start_once
from triggers.inputs import retrain_input
from triggers.names import SCHEDULED_RETRAINS
from triggers.services import ensure_containers

log = logging.getLogger(__name__)
bp = df.Blueprint()

#: the timer's own schedule: at second 0 of every minute
TICK_SCHEDULE = "0 * * * * *"
TICK = timedelta(minutes=1)
#: how far back every tick looks (at least): two ticks, so a tick that fires late misses no occurrence
LOOKBACK = 2 * TICK

#: disabled models already reported by this process (bounded by the number of models)
_reported: set[str] = set()


def window_start(schedule_status: dict[str, Any], now: datetime) -> datetime:
    """Where this tick's window begins: ``LOOKBACK`` ago, or the last tick the host recorded when that is earlier
    (the app was down, or the tick is past due)."""
    start = now - LOOKBACK
    try:
        last = datetime.fromisoformat(str(schedule_status.get("Last")))
    except ValueError:
        return start
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    return min(start, last)


async def start_scheduled(client: DurableClient, after: datetime, until: datetime) -> list[str]:
    """Start (once each) the retrain of every model with an occurrence in ``(after, until]``; their instance ids."""
    settings = current()
    plan = due_retrains(catalog(), settings.RETRAIN_SCHEDULE, after, until)
    for entry in plan.disabled:
        if entry.name not in _reported:
            _reported.add(entry.name)
            log.warning(
                "scheduled retrains skip model %s: its spec is disabled: %s", entry.name, "; ".join(entry.problems)
            )
    if not plan.due:
        return []
    await ensure_containers()
    started_ids: list[str] = []
    failures: list[str] = []
    for due in plan.due:
        instance_id = retrain_id_scheduled(due.model, due.occurrence)
        payload = retrain_input(settings, "timer", None, None, due.spec)
        try:
            started = await start_once(client, RETRAIN, instance_id, payload)
        except StartFailed as exc:  # the other models still start; the next tick tries this one again
            log.error("scheduled retrain %s of %s did not start: %s", instance_id, due.model, exc)
            failures.append(str(exc))
            continue
        started_ids.append(instance_id)
        log.info(
            "scheduled retrain %s of %s (%s) %s",
            instance_id,
            due.model,
            due.occurrence.isoformat(),
            "started" if started else "already exists",
        )
    if failures:
        raise StartFailed("; ".join(failures))
    return started_ids


@bp.function_name(SCHEDULED_RETRAINS)
@bp.timer_trigger(arg_name="timer", schedule=TICK_SCHEDULE, run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def scheduled_retrains(timer: func.TimerRequest, client: DurableClient) -> None:
    now = datetime.now(UTC)
    after = window_start(getattr(timer, "schedule_status", None) or {}, now)  # the abstract type lacks it
    if timer.past_due:
        log.warning("scheduled retrains: the timer is past due; looking back to %s", after.isoformat())
    await start_scheduled(client, after, now)
