"""Wiring of the trigger listeners: timers, polling blob triggers, and the Event Grid blob trigger (its system-topic
stand-in and the blob-trigger queue), plus Azurite when a setting names the local emulator.

Storage connections are resolved at start (``devhost.connections``): a trigger whose connection is missing or
malformed stops start-up with a message naming the setting.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from devhost import azurite, blobs, queues, timers
from devhost.blobevents import WEBHOOK, BlobQueueProcessor, BlobWebhook, is_eventgrid_source
from devhost.connections import DEFAULT_CONNECTION, binding_connection, resolve
from devhost.errors import ConfigError
from devhost.eventstore import EventStore
from devhost.limits import clip
from devhost.listener_types import Invoke
from devhost.loader import FunctionInfo, HostConfig, resolve_setting_refs
from devhost.systemtopic import SystemTopic, TopicSubscription

log = logging.getLogger(__name__)

STORAGE_SETTING = DEFAULT_CONNECTION
#: a listener's ``run``: serves until cancelled
Runner = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Wiring:
    functions: dict[str, FunctionInfo]
    invoke: Invoke
    script_root: Path
    events: EventStore
    webhook: BlobWebhook
    public_base: str
    blobs_key: str
    config: HostConfig
    #: when this host started (epoch seconds): a subscription made now counts blobs written from then on as new
    started_at: float = 0.0


def host_id(script_root: Path) -> str:
    digest = hashlib.sha256(str(script_root.resolve()).encode()).hexdigest()[:12]
    return f"devhost-{digest}"


def _path(f: FunctionInfo) -> str:
    return resolve_setting_refs(str(f.trigger["path"]), f"function {f.name}: path")


def _timer_runner(functions: list[FunctionInfo], invoke: Invoke, hid: str) -> Runner | None:
    if not functions:
        return None
    specs = [
        timers.TimerFunction(
            name=f.name,
            schedule=resolve_setting_refs(str(f.trigger["schedule"]), f"function {f.name}: schedule"),
            run_on_startup=bool(f.trigger.get("runOnStartup", False)),
            use_monitor=bool(f.trigger.get("useMonitor", True)),
        )
        for f in functions
    ]
    try:
        monitor = resolve(STORAGE_SETTING)
    except ConfigError as exc:
        log.warning("timer schedule monitor off (%s)", exc)
        monitor = None
    return timers.TimerListener(specs, invoke, monitor, hid).run


def _blob_runner(functions: list[FunctionInfo], invoke: Invoke, hid: str) -> Runner | None:
    if not functions:
        return None
    specs = [
        blobs.BlobFunction(name=f.name, path=_path(f), connection=binding_connection(f.trigger)) for f in functions
    ]
    return blobs.BlobListener(specs, invoke, hid).run


def _queue_runners(functions: list[FunctionInfo], invoke: Invoke, config: HostConfig) -> list[Runner]:
    settings = queues.QueueSettings(
        config.queue_batch_size, config.queue_max_polling, config.visibility_timeout, config.max_dequeue
    )
    return [
        queues.QueueListener(
            queues.QueueFunction(
                f.name,
                resolve_setting_refs(str(f.trigger.get("queueName", "")), f"function {f.name}: queueName"),
                binding_connection(f.trigger),
            ),
            invoke,
            settings,
        ).run
        for f in functions
    ]


def subscriptions(functions: list[FunctionInfo], public_base: str, blobs_key: str) -> list[TopicSubscription]:
    """One Event Grid subscription per Event Grid-source blob trigger, as the deployment creates them."""
    out = []
    for f in functions:
        container, _ = blobs.compile_path(_path(f))
        literal = _path(f).partition("/")[2].split("{", 1)[0]
        endpoint = f"{public_base}/{WEBHOOK}?functionName=Host.Functions.{quote(f.name)}&code={quote(blobs_key)}"
        out.append(
            TopicSubscription(
                f"{f.name}-blobcreated".lower(), container, literal, endpoint, binding_connection(f.trigger)
            )
        )
    return out


async def create_subscriptions(w: Wiring, timeout_s: float = 10.0) -> None:
    """Make the system topic's subscriptions before devhost serves, so a blob written once it answers is always
    delivered and one written before never is. If storage cannot be reached now, the topic makes them later."""
    functions = [f for f in w.functions.values() if f.trigger_type == "blobTrigger" and is_eventgrid_source(f)]
    if not functions:
        return
    topic = SystemTopic(
        subscriptions(functions, w.public_base, w.blobs_key),
        w.events,
        w.script_root / ".devhost" / "eventgrid-deadletter.jsonl",
        created_at=w.started_at,
    )
    for sub in topic.subscriptions.values():
        try:
            await asyncio.wait_for(topic.create(sub), timeout_s)
        except Exception as exc:  # storage down or slow: poll() makes the subscription once it answers
            log.warning(
                "system topic: subscription %s not made at start (%s); it will be made when storage answers",
                sub.name,
                clip(str(exc)),
            )


def _eventgrid_runners(functions: list[FunctionInfo], w: Wiring, hid: str) -> list[Runner]:
    if not functions:
        return []
    topic = SystemTopic(
        subscriptions(functions, w.public_base, w.blobs_key),
        w.events,
        w.script_root / ".devhost" / "eventgrid-deadletter.jsonl",
        created_at=w.started_at,
    )
    processor = BlobQueueProcessor(
        {f.name: binding_connection(f.trigger) for f in functions},
        w.invoke,
        w.events,
        hid,
        w.webhook.wake,
        max_dequeue=w.config.max_dequeue,
        visibility=w.config.visibility_timeout,
    )
    return [topic.run, processor.run]


def start_listeners(w: Wiring) -> list[asyncio.Task[None]]:
    hid = host_id(w.script_root)
    fns = list(w.functions.values())
    blob_fns = [f for f in fns if f.trigger_type == "blobTrigger"]
    runners = [
        _timer_runner([f for f in fns if f.trigger_type == "timerTrigger"], w.invoke, hid),
        _blob_runner([f for f in blob_fns if not is_eventgrid_source(f)], w.invoke, hid),
        *_eventgrid_runners([f for f in blob_fns if is_eventgrid_source(f)], w, hid),
        *_queue_runners([f for f in fns if f.trigger_type == "queueTrigger"], w.invoke, w.config),
    ]
    return [asyncio.create_task(_guard(r)) for r in runners if r is not None]


async def _guard(run: Runner) -> None:
    """Run a listener; one that stops with an error (it should not) is restarted after a capped backoff."""
    delay = 1.0
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a listener stopped with an error; restarting it in %.0f s (the host keeps serving)", delay)
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 2)


def emulator_settings(env: Mapping[str, str]) -> list[str]:
    """The settings that point at the local storage emulator (any of them, not only a trigger's connection: an
    app's activities may use the storage SDK with ``AzureWebJobsStorage`` directly)."""
    return sorted(k for k, v in env.items() if azurite.wants_local_emulator(v))


def maybe_start_azurite(functions: dict[str, FunctionInfo], script_root: Path) -> Any:
    """Start Azurite (blob, queue and table) when any app setting is the local emulator and nothing answers on
    its ports; returns the handle or None."""
    if not functions:
        return None
    emulated = emulator_settings(os.environ)
    if not emulated:
        return None
    return azurite.ensure_azurite(emulated, script_root / ".devhost" / "azurite", Path(__file__).resolve().parents[1])
