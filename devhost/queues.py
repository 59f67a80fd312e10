"""Queue triggers and queue output bindings on Azure Queue storage (Azurite offline), with the host's semantics.

From the host's queue listener (``extensions.queues`` in host.json): messages are fetched in batches of
``batchSize`` (16) with a visibility timeout while they run; an empty queue is polled with a backoff that doubles
from 100 ms up to ``maxPollingInterval`` (1 min), a message resets it; a message whose function fails becomes
visible again after ``visibilityTimeout`` (0); one dequeued ``maxDequeueCount`` (5) times without success goes to
the poison queue ``<queue>-poison`` and is deleted. The trigger value is the worker's ``func.QueueMessage`` with the
host's metadata (``Id``, ``DequeueCount``, ``InsertionTime``, ``ExpirationTime``, ``NextVisibleTime``,
``PopReceipt``). Message bodies are base64 (the host's default ``messageEncoding``); a body that is not base64 is
taken as text. A message added by an output binding of this host wakes the listener of that queue at once (the
WebJobs SDK's shared queue watcher), instead of waiting out the polling backoff. Output bindings add each value
(``str``, ``bytes``, ``func.QueueMessage`` or a list of them) as one base64 message, creating the queue when
missing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions import meta

from devhost.backoff import Outage
from devhost.connections import StorageConnection
from devhost.limits import clip
from devhost.listener_types import Invoke

log = logging.getLogger(__name__)

MIN_POLL = 0.1
#: queue name → (loop, event) of the listeners in this process, set when an output binding here adds a message
_WATCHERS: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}


def notify(queue_name: str) -> None:
    """Wake this process's listeners of ``queue_name`` (callable from any thread)."""
    for loop, event in _WATCHERS.get(queue_name.lower(), []):
        loop.call_soon_threadsafe(event.set)


#: how long a fetched message stays invisible while its function runs
PROCESSING_VISIBILITY = 600


@dataclass(frozen=True)
class QueueFunction:
    name: str
    queue: str
    connection: StorageConnection


@dataclass(frozen=True)
class QueueSettings:
    batch_size: int = 16
    max_polling: float = 60.0
    visibility: float = 0.0
    max_dequeue: int = 5


def decode_body(content: str) -> str | bytes:
    try:
        raw = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        return content
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def encode_body(value: str | bytes) -> str:
    return base64.b64encode(value.encode("utf-8") if isinstance(value, str) else value).decode("ascii")


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def trigger_value(message: Any) -> object:
    body = decode_body(str(message.content))
    metadata = {
        "Id": meta.Datum(message.id, "string"),
        "DequeueCount": meta.Datum(message.dequeue_count, "int"),
        "PopReceipt": meta.Datum(message.pop_receipt, "string"),
    }
    for key, attr in (
        ("InsertionTime", "inserted_on"),
        ("ExpirationTime", "expires_on"),
        ("NextVisibleTime", "next_visible_on"),
    ):
        stamp = _time(getattr(message, attr, None))
        if stamp is not None:
            metadata[key] = meta.Datum(stamp, "string")
    kind = "bytes" if isinstance(body, bytes) else "string"
    converter = meta.get_binding_registry().get("queueTrigger")
    return converter.decode(meta.Datum(body, kind), trigger_metadata=metadata)


class QueueListener:
    def __init__(self, function: QueueFunction, invoke: Invoke, settings: QueueSettings) -> None:
        self.function, self.invoke, self.settings = function, invoke, settings
        self.outage = Outage(f"queue trigger {function.name}", log)
        service = function.connection.queue_service(retry_total=1, connection_timeout=3, read_timeout=10)
        self.queue = service.get_queue_client(function.queue)
        self.poison = service.get_queue_client(f"{function.queue}-poison")

    def _receive(self) -> list[Any]:
        with contextlib.suppress(ResourceExistsError):
            self.queue.create_queue()
        return list(
            self.queue.receive_messages(
                messages_per_page=self.settings.batch_size,
                max_messages=self.settings.batch_size,
                visibility_timeout=PROCESSING_VISIBILITY,
            )
        )

    async def run(self) -> None:
        delay = MIN_POLL
        wake = asyncio.Event()
        watcher = (asyncio.get_running_loop(), wake)
        _WATCHERS.setdefault(self.function.queue.lower(), []).append(watcher)
        try:
            await self._poll(wake, delay)
        finally:
            _WATCHERS[self.function.queue.lower()].remove(watcher)

    async def _poll(self, wake: asyncio.Event, delay: float) -> None:
        while True:
            try:
                batch = await asyncio.to_thread(self._receive)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await asyncio.sleep(self.outage.failed(exc))
                continue
            self.outage.recovered()
            if not batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
                if wake.is_set():
                    wake.clear()
                    delay = MIN_POLL
                    continue
                delay = min(self.settings.max_polling, delay * 2)
                continue
            delay = MIN_POLL
            await asyncio.gather(*(self._process(m) for m in batch))

    async def _process(self, message: Any) -> None:
        if message.dequeue_count > self.settings.max_dequeue:
            await asyncio.to_thread(self._to_poison, message)
            return
        try:
            value = trigger_value(message)
            await self.invoke(self.function.name, value)
        except Exception as exc:
            if message.dequeue_count >= self.settings.max_dequeue:
                log.error(
                    "fn=%s queue message %s failed %d times: moved to %s-poison (%s)",
                    self.function.name,
                    message.id,
                    message.dequeue_count,
                    self.function.queue,
                    clip(exc),
                )
                await self._safely(self._to_poison, message)
            else:
                await self._safely(self._release, message)
            return
        await self._safely(self.queue.delete_message, message)

    async def _safely(self, action: Any, message: Any) -> None:
        try:
            await asyncio.to_thread(action, message)
        except Exception as exc:
            # storage went away: the message reappears after its visibility timeout, as on Azure
            self.outage.failed(exc)

    def _release(self, message: Any) -> None:
        self.queue.update_message(message, visibility_timeout=int(self.settings.visibility))

    def _to_poison(self, message: Any) -> None:
        with contextlib.suppress(ResourceExistsError):
            self.poison.create_queue()
        self.poison.send_message(message.content)
        self.queue.delete_message(message)


def output_messages(value: Any) -> list[str]:
    """The base64 bodies a queue output value stands for."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        if isinstance(item, func.QueueMessage):
            out.append(encode_body(item.get_body()))
        elif isinstance(item, str | bytes):
            out.append(encode_body(item))
        elif isinstance(item, dict | int | float | bool):
            out.append(encode_body(json.dumps(item)))
        else:
            raise ValueError(f"cannot send a {type(item).__name__} to a queue; set str, bytes or func.QueueMessage")
    return out


def send_output(connection: StorageConnection, queue_name: str, value: Any) -> int:
    bodies = output_messages(value)
    if not bodies:
        return 0
    with connection.queue_service() as service:
        queue = service.get_queue_client(queue_name)
        with contextlib.suppress(ResourceExistsError):
            queue.create_queue()
        for body in bodies:
            queue.send_message(body)
    notify(queue_name)
    return len(bodies)
