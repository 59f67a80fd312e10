"""A local stand-in for the storage account's Event Grid system topic: new and overwritten blobs become
``Microsoft.Storage.BlobCreated`` deliveries to subscriptions, as Event Grid makes them.

One subscription per Event Grid-source blob trigger, as the deployment creates it on Azure: endpoint
``/runtime/webhooks/blobs?functionName=Host.Functions.<name>&code=<blobs_extension key>``, ``includedEventTypes:
[Microsoft.Storage.BlobCreated]``, ``subjectBeginsWith`` = ``devhost.blobevents.subject_filter(path)``. The stand-in
lists the container under that prefix; a blob name whose ETag it has not seen for that subscription is an event.
What it has seen is kept in the SQLite store: blobs created while devhost was down are delivered when it starts;
blobs that existed when a subscription was first created are not (Event Grid delivers only what happens after).

Events follow the BlobCreated schema of the Event Grid schema (Microsoft Learn, "Azure Blob Storage as an Event Grid
source"): ``topic`` (the account's resource id), ``subject`` ``/blobServices/default/containers/<c>/blobs/<name>``,
``eventType``, ``id``, ``eventTime``, ``data`` {``api``, ``clientRequestId``, ``requestId``, ``eTag``,
``contentType``, ``contentLength``, ``blobType``, ``url``, ``sequencer``, ``storageDiagnostics``}, ``dataVersion``,
``metadataVersion`` "1".

Delivery follows Event Grid's rules (Microsoft Learn, "Event Grid message delivery and retry"): at least once, one
event per request here, ``aeg-event-type: Notification``; 200 to 204 is success; 400 and 413 are not retried
(dead-lettered at once); others are retried on the schedule 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h,
then every 12 h, with at least 5 min after 401/403/404, 2 min after 408 and 30 s after 503; after
``max_attempts`` (30) or the event's time to live (1,440 min) it is dead-lettered: one JSON line in
``.devhost/eventgrid-deadletter.jsonl`` (rotated at 10 MB, one previous file kept). At most ``max_pending`` events
wait per subscription; beyond that the oldest are dropped with a warning, so nothing grows without a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from devhost.backoff import Outage
from devhost.blobevents import BLOB_CREATED
from devhost.blobs import API_VERSION
from devhost.connections import StorageConnection
from devhost.eventstore import EventStore, OutboxEvent
from devhost.limits import clip

log = logging.getLogger(__name__)

SCHEDULE = (10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 10800.0, 21600.0, 43200.0)
MIN_DELAY = {401: 300.0, 403: 300.0, 404: 300.0, 408: 120.0, 503: 30.0}
NOT_RETRIED = (400, 413)
DEADLETTER_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class TopicSubscription:
    name: str
    container: str
    prefix: str
    endpoint: str
    connection: StorageConnection

    @property
    def subject_begins_with(self) -> str:
        return f"/blobServices/default/containers/{self.container}/blobs/{self.prefix}"


@dataclass(frozen=True)
class Retry:
    """The delivery policy; the defaults are Event Grid's."""

    schedule: Sequence[float] = SCHEDULE
    min_delay: tuple[tuple[int, float], ...] = tuple(MIN_DELAY.items())
    max_attempts: int = 30
    ttl: float = 1440 * 60.0

    def delay(self, attempt: int, status: int | None) -> float:
        base = self.schedule[min(attempt - 1, len(self.schedule) - 1)]
        return max(base, dict(self.min_delay).get(status or 0, 0.0))


def blob_created(account: str, container: str, props: Any, url: str, sequencer: int) -> dict[str, Any]:
    blob_type = str(getattr(props.blob_type, "value", props.blob_type) or "BlockBlob")
    settings = props.content_settings
    return {
        "topic": f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/devhost/providers/"
        f"Microsoft.Storage/storageAccounts/{account}",
        "subject": f"/blobServices/default/containers/{container}/blobs/{props.name}",
        "eventType": BLOB_CREATED,
        "id": str(uuid.uuid4()),
        "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "api": "PutBlob" if blob_type == "BlockBlob" else "PutBlockList",
            "clientRequestId": str(uuid.uuid4()),
            "requestId": str(uuid.uuid4()),
            "eTag": str(props.etag).strip('"'),
            "contentType": (settings.content_type if settings else None) or "application/octet-stream",
            "contentLength": int(props.size or 0),
            "blobType": blob_type,
            "url": url,
            "sequencer": f"{sequencer:032X}",
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


class SystemTopic:
    def __init__(
        self,
        subscriptions: list[TopicSubscription],
        events: EventStore,
        deadletter: Path,
        *,
        poll_interval: float = 0.5,
        retry: Retry | None = None,
        max_pending: int = 10_000,
        created_at: float | None = None,
    ) -> None:
        """``created_at``: when a subscription made by this host counts as created (default: its first listing).
        Event Grid delivers the events raised after a subscription exists, and devhost makes its subscriptions as it
        starts: a blob last modified before that second existed already, any later one is delivered."""
        self.subscriptions = {s.name: s for s in subscriptions}
        self.events, self.deadletter, self.poll_interval = events, deadletter, poll_interval
        self.retry = retry or Retry()
        self.max_pending = max_pending
        self.outage = Outage("Event Grid system topic", log)
        self._clients: dict[str, Any] = {}
        self._wake = asyncio.Event()
        self.created_at = created_at

    def _client(self, sub: TopicSubscription) -> Any:
        if sub.connection.name not in self._clients:
            self._clients[sub.connection.name] = sub.connection.blob_service(
                api_version=API_VERSION, retry_total=1, connection_timeout=3, read_timeout=10
            )
        return self._clients[sub.connection.name]

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await asyncio.gather(self._poll_forever(), self._deliver_forever(session))

    # publishing ----------------------------------------------------------------------------------------------
    async def _poll_forever(self) -> None:
        while True:
            try:
                published = 0
                for sub in self.subscriptions.values():
                    published += await self.poll(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await asyncio.sleep(self.outage.failed(exc))
                continue
            self.outage.recovered()
            if published:
                self._wake.set()
            await asyncio.sleep(self.poll_interval)

    def _list(self, sub: TopicSubscription) -> tuple[str, dict[str, Any]]:
        client = self._client(sub)
        box = client.get_container_client(sub.container)
        try:
            found = {str(p.name): p for p in box.list_blobs(name_starts_with=sub.prefix or None)}
        except Exception as exc:
            if type(exc).__name__ == "ResourceNotFoundError":
                return str(client.account_name), {}
            raise
        return str(client.account_name), found

    async def create(self, sub: TopicSubscription) -> None:
        """Make the subscription now (devhost does it before it serves, as a deployment makes it before the app runs):
        the blobs that exist now never raise an event. A no-op when it exists; storage errors propagate."""
        if self.events.subscription_created(sub.name) is None:
            _, listed = await asyncio.to_thread(self._list, sub)
            self._create(sub, {name: str(p.etag).strip('"') for name, p in listed.items()}, listed, late=False)

    def _create(
        self, sub: TopicSubscription, current: dict[str, str], listed: dict[str, Any], *, late: bool
    ) -> dict[str, str]:
        """Record the subscription with the blob versions that existed before it; returns them.

        Made on time (before devhost serves), every blob listed existed before it. Made late (storage was down at
        start), a blob existed only if last modified in a second before ``created_at``: storage times have whole
        seconds, so a blob of devhost's first second is delivered rather than lost."""
        cutoff = math.floor(self.created_at) if late and self.created_at is not None else math.inf
        existing = {
            n: e
            for n, e in current.items()
            if listed[n].last_modified is None or listed[n].last_modified.timestamp() < cutoff
        }
        self.events.create_subscription(sub.name, existing)
        log.info(
            "system topic: subscription %s created (%s, %d existing blob(s) not delivered)",
            sub.name,
            sub.subject_begins_with,
            len(existing),
        )
        return existing

    async def poll(self, sub: TopicSubscription) -> int:
        """Queue an event for each new blob version under the subscription's filter; returns how many.

        A subscription still to be made (storage was down when devhost started) is made here; then a blob counts as
        existing only if it was last modified in a second before devhost started (``created_at``)."""
        account, listed = await asyncio.to_thread(self._list, sub)
        current = {name: str(p.etag).strip('"') for name, p in listed.items()}
        late = self.events.subscription_created(sub.name) is None
        if late and len(self._create(sub, current, listed, late=True)) == len(current):
            return 0
        seen = self.events.seen(sub.name)
        changed = {n: e for n, e in current.items() if seen.get(n) != e}
        gone = [n for n in seen if n not in current]
        if not changed and not gone:
            return 0
        first = self.events.next_sequence(len(changed)) if changed else 0
        box = self._client(sub).get_container_client(sub.container)
        new = [
            blob_created(account, sub.container, listed[n], box.get_blob_client(n).url, first + i)
            for i, n in enumerate(sorted(changed))
        ]
        dropped = self.events.publish(sub.name, changed, gone, new, ttl=self.retry.ttl, max_pending=self.max_pending)
        if dropped:
            log.warning(
                "system topic: subscription %s has %d undelivered events; dropped the %d oldest",
                sub.name,
                self.max_pending,
                dropped,
            )
        return len(new)

    # delivery ------------------------------------------------------------------------------------------------
    async def _deliver_forever(self, session: aiohttp.ClientSession) -> None:
        while True:
            self._wake.clear()
            due = self.events.due_events(16, set())
            await asyncio.gather(*(self.deliver(session, e) for e in due))
            if not due:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.5)

    async def deliver(self, session: aiohttp.ClientSession, item: OutboxEvent) -> None:
        sub = self.subscriptions.get(item.subscription)
        if sub is None:
            self._dead(item, "the subscription no longer exists", None)
            return
        attempt = item.attempts + 1
        status: int | None = None
        try:
            async with session.post(
                sub.endpoint,
                json=[item.event],
                headers={
                    "aeg-event-type": "Notification",
                    "aeg-subscription-name": sub.name.upper(),
                    "aeg-delivery-count": str(item.attempts),
                    "aeg-data-version": "",
                    "aeg-metadata-version": "1",
                },
            ) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = f"{type(exc).__name__}: {clip(exc)}"
        else:
            if 200 <= status <= 204:
                self.events.delivered(item.id)
                return
            reason = f"HTTP {status}"
            if status in NOT_RETRIED:
                self._dead(item, f"{reason} (not retried)", status, attempt)
                return
        if attempt >= self.retry.max_attempts or time.time() >= item.expires_at:
            self._dead(item, f"{reason} after {attempt} attempts", status, attempt)
            return
        delay = self.retry.delay(attempt, status)
        log.warning(
            "system topic: delivery of %s to %s failed (%s); attempt %d, next in %.0f s",
            item.event.get("subject"),
            sub.name,
            reason,
            attempt,
            delay,
        )
        self.events.retry_event(item.id, attempt, time.time() + delay)

    def _dead(self, item: OutboxEvent, reason: str, status: int | None, attempts: int = 0) -> None:
        log.error(
            "system topic: event %s for %s dead-lettered: %s", item.event.get("subject"), item.subscription, reason
        )
        record = {
            "subscription": item.subscription,
            "deadLetterReason": reason,
            "deliveryAttempts": attempts,
            "lastHttpStatusCode": status,
            "deadLetteredAt": datetime.now(UTC).isoformat(),
            "event": item.event,
        }
        self.deadletter.parent.mkdir(parents=True, exist_ok=True)
        if self.deadletter.exists() and self.deadletter.stat().st_size > DEADLETTER_MAX_BYTES:
            self.deadletter.replace(self.deadletter.with_suffix(".jsonl.1"))
        with self.deadletter.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        self.events.delivered(item.id)
