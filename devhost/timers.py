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

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter
from azure.storage.blob import BlobServiceClient

from devhost.backoff import Outage
from devhost.connections import StorageConnection
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
    body = {
        "Schedule": {"AdjustForDST": True},
        "IsPastDue": past_due,
        "ScheduleStatus": {"Last": (last or now).isoformat(), "Next": nxt.isoformat(), "LastUpdated": now.isoformat()},
    }
    return TimerRequestConverter.decode(meta.Datum(json.dumps(body), "json"), trigger_metadata={})


class _Monitor:
    """Schedule status per function in blob storage; without usable storage it keeps nothing (logged once)."""

    def __init__(self, connection: StorageConnection | None, host_id: str) -> None:
        self.host_id = host_id
        self.outage = Outage("timer schedule monitor", log)
        self.service: BlobServiceClient | None = None
        if connection is not None:
            try:
                self.service = connection.blob_service(
                    api_version=API_VERSION, retry_total=1, connection_timeout=3, read_timeout=10
                )
            except ValueError as exc:
                log.warning("timer monitor disabled: %s", exc)

    def _blob(self, function: str) -> Any:
        assert self.service is not None
        return self.service.get_blob_client(HOSTS_CONTAINER, f"timers/{self.host_id}/{function}/status")

    def read(self, function: str) -> dict[str, Any] | None:
        if self.service is None:
            return None
        try:
            doc = json.loads(self._blob(function).download_blob().readall())
        except ResourceNotFoundError:
            self.outage.recovered()
            return None
        except ValueError:
            log.warning("timer %s: its schedule status is not JSON; starting afresh", function)
            return None
        except Exception as exc:
            # storage down or answering badly: the timer fires on its schedule all the same, without the status
            self.outage.failed(exc)
            return None
        self.outage.recovered()
        return dict(doc) if isinstance(doc, dict) else None

    def write(self, function: str, last: datetime, nxt: datetime) -> float | None:
        """Save the status; None when saved (or nothing to save to), else the seconds to wait before retrying."""
        if self.service is None:
            return None
        body = json.dumps(
            {"Last": last.isoformat(), "Next": nxt.isoformat(), "LastUpdated": datetime.now(UTC).isoformat()}
        )
        try:
            with contextlib.suppress(ResourceExistsError):
                self.service.create_container(HOSTS_CONTAINER)
            self._blob(function).upload_blob(body.encode(), overwrite=True)
        except Exception as exc:
            return self.outage.failed(exc)
        self.outage.recovered()
        return None


class TimerListener:
    def __init__(
        self, functions: list[TimerFunction], invoke: Invoke, connection: StorageConnection | None, host_id: str
    ) -> None:
        self.functions = functions
        self.schedules = {f.name: Schedule.parse(f.schedule) for f in functions}
        self.invoke = invoke
        self.monitor = _Monitor(connection, host_id)
        self._latest: dict[str, tuple[datetime, datetime]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}

    def _save(self, name: str, last: datetime, nxt: datetime) -> None:
        """Save the schedule status in the background: storage being slow or down never delays a firing. Only
        the newest status of each function is kept for the writer (bounded)."""
        self._latest[name] = (last, nxt)
        writer = self._writers.get(name)
        if writer is None or writer.done():
            self._writers[name] = asyncio.create_task(self._writer(name))

    async def _writer(self, name: str) -> None:
        while name in self._latest:
            last, nxt = self._latest.pop(name)
            retry_in = await asyncio.to_thread(self.monitor.write, name, last, nxt)
            if retry_in is not None:
                self._latest.setdefault(name, (last, nxt))
                await asyncio.sleep(retry_in)

    async def run(self) -> None:
        """Fire every function at its schedule until cancelled; a failing function never stops the others."""
        try:
            await self._run()
        finally:
            for writer in self._writers.values():
                writer.cancel()

    async def _run(self) -> None:
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
                self._save(function.name, last[function.name] or now, due[function.name])
        while self.functions:
            name = min(due, key=due.__getitem__)
            await asyncio.sleep(max(0.0, (due[name] - datetime.now(UTC)).total_seconds()))
            function = next(f for f in self.functions if f.name == name)
            fired_at = datetime.now(UTC)
            await self._fire(function, False, last[name], due[name])
            last[name] = fired_at
            due[name] = self.schedules[name].next_after(max(fired_at, due[name]))
            if function.use_monitor:
                self._save(name, fired_at, due[name])

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
