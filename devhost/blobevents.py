"""The Event Grid blob trigger (``source: EventGrid``), as the blobs extension runs it.

Read from the extension's source (Azure/azure-sdk-for-net, ``sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.
Blobs``): ``BlobsExtensionConfigProvider.ConvertAsync`` serves ``/runtime/webhooks/blobs?functionName=Host.Functions.
<name>`` (authorised by the ``blobs_extension`` system key); the shared Event Grid ``HttpRequestProcessor`` answers
the ``SubscriptionValidation`` handshake with ``{"validationResponse": code}``; for notifications
``ProcessEventsAsync`` turns each event into a ``BlobTriggerMessage`` (``data.url`` → container and blob name,
``data.eTag``, ``data.blobType``, the function id), writes it to the host's blob-trigger queue
(``BlobTriggerQueueWriter``) and answers **202 Accepted** without running the function. The queue's listener
(``BlobQueueTriggerExecutor``) then looks the blob up: a function no longer registered or a blob that no longer
exists completes the message without an invocation; otherwise the function runs with the blob. A failing run leaves
the message to be dequeued again (visibility timeout), and after ``maxDequeueCount`` (5) it goes to the poison
queue (``webjobs-blobtrigger-poison``). Receipts (``azure-webjobs-hosts/blobreceipts/...``, as the polling trigger
keeps them) make a duplicate delivery of the same blob version run nothing.

devhost keeps that queue in its SQLite store (``devhost.eventstore``: visibility, dequeue count, a bounded poison
table), so it survives restarts, and refuses new messages with 503 beyond ``MAX_QUEUED`` (Event Grid retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from devhost import jsonio
from devhost.backoff import Outage
from devhost.blobs import API_VERSION, HOSTS_CONTAINER, input_stream, receipt_name
from devhost.connections import StorageConnection
from devhost.eventstore import EventStore, QueuedBlob
from devhost.limits import EVENTGRID_BODY_LIMIT, clip
from devhost.listener_types import Invoke
from devhost.loader import FunctionInfo
from devhost.params import RequestError, read_body

log = logging.getLogger(__name__)

WEBHOOK = "runtime/webhooks/blobs"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
FUNCTION_PREFIX = "Host.Functions."
MAX_QUEUED = 10_000
MAX_DEQUEUE = 5
CONCURRENCY = 8


def is_eventgrid_source(info: FunctionInfo) -> bool:
    return info.trigger_type == "blobTrigger" and str(info.trigger.get("source") or "").lower() == "eventgrid"


def subject_filter(path: str) -> str:
    """The ``subjectBeginsWith`` of the subscription for a blob trigger on ``path`` (``container/prefix{name}…``):
    the container, then the literal part of the blob pattern before its first ``{``."""
    container, _, rest = path.partition("/")
    return f"/blobServices/default/containers/{container}/blobs/{rest.split('{', 1)[0]}"


def blob_of_url(url: str) -> tuple[str, str]:
    """(container, blob name) of a blob URL, path-style for IP hosts and the emulator (as ``BlobUriBuilder``)."""
    parts = urlsplit(url)
    segments = parts.path.lstrip("/").split("/")
    host = parts.hostname or ""
    path_style = host == "localhost"
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        path_style = True
    if path_style:
        segments = segments[1:]
    if len(segments) < 2 or not segments[0] or not "/".join(segments[1:]):
        raise RequestError(f"data.url {clip(url, 100)!r} is not the URL of a blob")
    return unquote(segments[0]), unquote("/".join(segments[1:]))


@dataclass
class BlobWebhook:
    """``POST /runtime/webhooks/blobs?functionName=Host.Functions.<name>``."""

    functions: dict[str, FunctionInfo]
    events: EventStore
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def _function(self, request: web.Request) -> FunctionInfo:
        raw = request.query.get("functionName", "")
        name = raw[len(FUNCTION_PREFIX) :] if raw.lower().startswith(FUNCTION_PREFIX.lower()) else ""
        found = next(
            (f for n, f in self.functions.items() if n.lower() == name.lower() and is_eventgrid_source(f)), None
        )
        if found is None:
            raise RequestError(
                f"No Event Grid blob trigger function '{clip(raw, 100)}' (functionName must be "
                f"{FUNCTION_PREFIX}<name> of a blob trigger with source EventGrid)",
                404,
            )
        return found

    async def handle(self, request: web.Request) -> web.Response:
        info = self._function(request)
        payload = jsonio.parse(await read_body(request, EVENTGRID_BODY_LIMIT), "The delivery")
        kind = request.headers.get("aeg-event-type", "")
        events = payload if isinstance(payload, list) else [payload]
        if kind == "SubscriptionValidation":
            first = events[0] if events and isinstance(events[0], dict) else {}
            code = first.get("data", {}).get("validationCode") if isinstance(first.get("data"), dict) else None
            if not isinstance(code, str) or not code:
                raise RequestError("A SubscriptionValidation event needs data.validationCode")
            return web.json_response({"validationResponse": code})
        if kind != "Notification":
            raise RequestError("The aeg-event-type header must be SubscriptionValidation or Notification")
        rows = [r for r in (self._message(info, ev, i) for i, ev in enumerate(events)) if r is not None]
        if self.events.queue_depth() + len(rows) > MAX_QUEUED:
            return web.Response(
                status=503,
                headers={"Retry-After": "30"},
                text=f"The blob trigger queue holds {MAX_QUEUED:,} messages; retry later",
            )
        self.events.enqueue_blobs(rows)
        self.wake.set()
        return web.Response(status=202)

    @staticmethod
    def _message(info: FunctionInfo, event: Any, index: int) -> tuple[str, str, str, str] | None:
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            raise RequestError(f"event {index} is not an Event Grid event with a data object")
        kind = event.get("eventType") or event.get("type")
        if kind != BLOB_CREATED:
            log.info(
                "blob webhook of %s: event %d is %s, not %s; ignored", info.name, index, clip(kind, 80), BLOB_CREATED
            )
            return None
        data = event["data"]
        if not isinstance(data.get("url"), str) or not isinstance(data.get("eTag"), str):
            raise RequestError(f"event {index} lacks data.url or data.eTag")
        container, blob = blob_of_url(data["url"])
        return info.name, container, blob, data["eTag"].strip('"')


class BlobQueueProcessor:
    """Runs the functions for the queued messages: blob read, receipt checked, function invoked; retries by
    visibility timeout and poisons after ``max_dequeue`` failed runs."""

    def __init__(
        self,
        functions: dict[str, StorageConnection],
        invoke: Invoke,
        events: EventStore,
        host_id: str,
        wake: asyncio.Event,
        *,
        max_dequeue: int = MAX_DEQUEUE,
        visibility: float = 0.0,
    ) -> None:
        self.connections, self.invoke, self.events, self.host_id = functions, invoke, events, host_id
        self.wake, self.max_dequeue, self.visibility = wake, max_dequeue, visibility
        self.outage = Outage("Event Grid blob trigger", log)
        self._clients: dict[str, Any] = {}
        self._busy: dict[int, asyncio.Task[None]] = {}

    def _client(self, function: str) -> Any:
        if function not in self._clients:
            self._clients[function] = self.connections[function].blob_service(
                api_version=API_VERSION, retry_total=1, connection_timeout=3, read_timeout=10
            )
        return self._clients[function]

    async def run(self) -> None:
        try:
            while True:
                self.wake.clear()
                free = CONCURRENCY - len(self._busy)
                for message in self.events.visible_blobs(set(self._busy), free) if free > 0 else []:
                    task = asyncio.create_task(self._process(message))
                    self._busy[message.id] = task
                    task.add_done_callback(self._done(message.id))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), 0.25)
        finally:
            for task in self._busy.values():
                task.cancel()

    def _done(self, message_id: int) -> Any:
        def done(_task: asyncio.Task[None]) -> None:
            self._busy.pop(message_id, None)
            self.wake.set()

        return done

    async def _process(self, message: QueuedBlob) -> None:
        if message.function not in self.connections:
            log.warning("blob trigger message for %s: no such function any more; ignored", message.function)
            self.events.complete_blob(message.id)
            return
        try:
            blob = await asyncio.to_thread(self._read, message)
        except Exception as exc:
            # storage unreachable: the message stays, retried with backoff; no dequeue is counted against it
            self.events.delay_blob(message.id, self.outage.failed(exc))
            return
        self.outage.recovered()
        if blob is None:
            log.info(
                "fn=%s blob %s/%s does not exist (or was already processed); message completed",
                message.function,
                message.container,
                clip(message.blob),
            )
            self.events.complete_blob(message.id)
            return
        receipt, stream = blob
        try:
            await self.invoke(message.function, stream)
        except Exception as exc:
            attempt = message.dequeue_count + 1
            if attempt >= self.max_dequeue:
                log.error(
                    "fn=%s blob %s/%s failed %d times: moved to the poison queue (%s)",
                    message.function,
                    message.container,
                    clip(message.blob),
                    attempt,
                    clip(exc),
                )
                self.events.poison_blob(message, f"{type(exc).__name__}: {clip(exc)}")
                await asyncio.to_thread(_mark, self._client(message.function), receipt, "Poison", attempt)
            else:
                log.warning(
                    "fn=%s blob %s/%s failed (attempt %d of %d); it will be retried",
                    message.function,
                    message.container,
                    clip(message.blob),
                    attempt,
                    self.max_dequeue,
                )
                self.events.retry_blob(message, self.visibility)
            return
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                _mark, self._client(message.function), receipt, "Complete", message.dequeue_count + 1
            )
        self.events.complete_blob(message.id)
        log.info(
            "fn=%s blob %s/%s processed (etag %s)",
            message.function,
            message.container,
            clip(message.blob),
            message.etag,
        )

    def _read(self, message: QueuedBlob) -> tuple[Any, object] | None:
        """(receipt client, the function's InputStream), or None when the blob is gone or this version is done."""
        client = self._client(message.function)
        receipt = client.get_blob_client(
            HOSTS_CONTAINER, receipt_name(self.host_id, message.function, message.etag, message.container, message.blob)
        )
        try:
            if receipt.get_blob_properties().metadata.get("status") in ("Complete", "Poison"):
                return None
        except ResourceNotFoundError:
            pass
        blob = client.get_blob_client(message.container, message.blob)
        try:
            props = blob.get_blob_properties()
            data = blob.download_blob().readall()
        except ResourceNotFoundError:
            return None
        info = {
            "name": message.blob,
            "etag": str(props.etag).strip('"'),
            "size": int(props.size or 0),
            "last_modified": props.last_modified.isoformat() if props.last_modified else None,
            "content_type": props.content_settings.content_type if props.content_settings else None,
            "metadata": dict(props.metadata or {}),
        }
        return receipt, input_stream(client, message.container, info, data)


def _mark(client: Any, receipt: Any, status: str, attempts: int) -> None:
    with contextlib.suppress(ResourceExistsError):
        client.create_container(HOSTS_CONTAINER)
    receipt.upload_blob(b"", overwrite=True, metadata={"status": status, "attempts": str(attempts)})
