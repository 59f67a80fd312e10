"""Timer triggers: fire on NCRONTAB schedules; ``run_on_startup``; ``use_monitor`` keeps the schedule status in storage.

The monitor's status lives where the real host keeps it (``azure-webjobs-hosts/timers/{host}/{function}/status``,
JSON ``{"Last", "Next", "LastUpdated"}``), so an occurrence missed while the host was down fires once at start
with ``past_due=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter
from azure.storage.blob import BlobServiceClient

from devhost.listener_types import Invoke
from devhost.ncrontab import Schedule

log = logging.getLogger(__name__)

HOSTS_CONTAINER = "azure-webjobs-hosts"
API_VERSION = "2025-11-05"


@dataclass(frozen=True)
class TimerFunction:
    name: str
    schedule: str
    run_on_startup: bool
    use_monitor: bool


def timer_request(past_due: bool, last: datetime | None, nxt: datetime) -> object:
    """The ``func.TimerRequest`` the worker builds from the host's JSON."""
    now = datetime.now(UTC)
    body = {"Schedule": {"AdjustForDST": True}, "IsPastDue": past_due,
            "ScheduleStatus": {"Last": (last or now).isoformat(), "Next": nxt.isoformat(),
                               "LastUpdated": now.isoformat()}}
    return TimerRequestConverter.decode(meta.Datum(json.dumps(body), "json"), trigger_metadata={})


class _Monitor:
    """Schedule status per function in blob storage; without usable storage it keeps nothing (logged once)."""

    def __init__(self, connection_string: str, host_id: str) -> None:
        self.host_id = host_id
        self.service: BlobServiceClient | None = None
        if connection_string:
            try:
                self.service = BlobServiceClient.from_connection_string(
                    connection_string, api_version=API_VERSION, retry_total=1)
            except ValueError as exc:
                log.warning("timer monitor disabled: %s", exc)

    def _blob(self, function: str) -> Any:
        assert self.service is not None
        return self.service.get_blob_client(HOSTS_CONTAINER, f"timers/{self.host_id}/{function}/status")

    def read(self, function: str) -> dict[str, Any] | None:
        if self.service is None:
            return None
        try:
            return dict(json.loads(self._blob(function).download_blob().readall()))
        except ResourceNotFoundError:
            return None
        except (HttpResponseError, OSError, ValueError) as exc:
            log.warning("timer %s: cannot read its schedule status (%s)", function, exc)
            return None

    def write(self, function: str, last: datetime, nxt: datetime) -> None:
        if self.service is None:
            return
        body = json.dumps({"Last": last.isoformat(), "Next": nxt.isoformat(),
                           "LastUpdated": datetime.now(UTC).isoformat()})
        try:
            with contextlib.suppress(ResourceExistsError):
                self.service.create_container(HOSTS_CONTAINER)
            self._blob(function).upload_blob(body.encode(), overwrite=True)
        except (HttpResponseError, OSError) as exc:
            log.warning("timer %s: cannot save its schedule status (%s)", function, exc)


class TimerListener:
    def __init__(self, functions: list[TimerFunction], invoke: Invoke, connection_string: str, host_id: str) -> None:
        self.functions = functions
        self.schedules = {f.name: Schedule.parse(f.schedule) for f in functions}
        self.invoke = invoke
        self.monitor = _Monitor(connection_string, host_id)

    async def run(self) -> None:
        """Fire every function at its schedule until cancelled; a failing function never stops the others."""
        now = datetime.now(UTC)
        due: dict[str, datetime] = {}
        last: dict[str, datetime | None] = {}
        for function in self.functions:
            status = await asyncio.to_thread(self.monitor.read, function.name) if function.use_monitor else None
            last[function.name] = _parse(status.get("Last")) if status else None
            missed = _parse(status.get("Next")) if status else None
            if missed is not None and missed <= now:
                await self._fire(function, True, last[function.name], now)
                last[function.name] = now
            elif function.run_on_startup:
                await self._fire(function, False, last[function.name], now)
            due[function.name] = self.schedules[function.name].next_after(now)
            if function.use_monitor:
                await asyncio.to_thread(self.monitor.write, function.name, last[function.name] or now,
                                        due[function.name])
        while self.functions:
            name = min(due, key=due.__getitem__)
            await asyncio.sleep(max(0.0, (due[name] - datetime.now(UTC)).total_seconds()))
            function = next(f for f in self.functions if f.name == name)
            fired_at = datetime.now(UTC)
            await self._fire(function, False, last[name], due[name])
            last[name] = fired_at
            due[name] = self.schedules[name].next_after(max(fired_at, due[name]))
            if function.use_monitor:
                await asyncio.to_thread(self.monitor.write, name, fired_at, due[name])

    async def _fire(self, function: TimerFunction, past_due: bool, last: datetime | None, nxt: datetime) -> None:
        log.info("timer %s fires%s", function.name, " (past due)" if past_due else "")
        try:
            await self.invoke(function.name, timer_request(past_due, last, nxt))
        except Exception:
            log.exception("timer function %s failed", function.name)


def _parse(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
