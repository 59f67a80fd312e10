"""Wiring of the timer and blob listeners (devhost.timers / devhost.blobs), imported lazily.

Those modules are optional at import time: without them devhost still serves HTTP and durable work.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from devhost.invoke import Invoke, connection_string
from devhost.loader import FunctionInfo, resolve_setting_refs

log = logging.getLogger(__name__)

STORAGE_SETTING = "AzureWebJobsStorage"
#: a listener's ``run``: serves until cancelled
Runner = Callable[[], Coroutine[Any, Any, None]]


def host_id(script_root: Path) -> str:
    digest = hashlib.sha256(str(script_root.resolve()).encode()).hexdigest()[:12]
    return f"devhost-{digest}"


def _timer_runner(functions: list[FunctionInfo], invoke: Invoke, hid: str) -> Runner | None:
    if not functions:
        return None
    try:
        timers = importlib.import_module("devhost.timers")
    except ImportError:
        log.warning("devhost.timers is not available: %d timer function(s) will not fire", len(functions))
        return None
    specs = [timers.TimerFunction(
        name=f.name,
        schedule=resolve_setting_refs(str(f.trigger["schedule"]), f"function {f.name}: schedule"),
        run_on_startup=bool(f.trigger.get("runOnStartup", False)),
        use_monitor=bool(f.trigger.get("useMonitor", True))) for f in functions]
    return timers.TimerListener(specs, invoke, os.environ.get(STORAGE_SETTING, ""), hid).run


def _blob_runner(functions: list[FunctionInfo], invoke: Invoke, hid: str) -> Runner | None:
    if not functions:
        return None
    try:
        blobs = importlib.import_module("devhost.blobs")
    except ImportError:
        log.warning("devhost.blobs is not available: %d blob function(s) will not fire", len(functions))
        return None
    specs = [blobs.BlobFunction(
        name=f.name,
        path=resolve_setting_refs(str(f.trigger["path"]), f"function {f.name}: path"),
        connection_string=connection_string(f.trigger)) for f in functions]
    return blobs.BlobListener(specs, invoke, hid).run


def needs_storage(functions: dict[str, FunctionInfo]) -> bool:
    return any(f.trigger_type in ("timerTrigger", "blobTrigger") for f in functions.values())


def start_listeners(functions: dict[str, FunctionInfo], invoke: Invoke, script_root: Path) -> list[asyncio.Task[None]]:
    hid = host_id(script_root)
    runners = [
        _timer_runner([f for f in functions.values() if f.trigger_type == "timerTrigger"], invoke, hid),
        _blob_runner([f for f in functions.values() if f.trigger_type == "blobTrigger"], invoke, hid),
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


def maybe_start_azurite(functions: dict[str, FunctionInfo], script_root: Path) -> Any:
    """Start Azurite (via devhost.azurite) only when a listener needs storage; returns the handle or None."""
    conn = os.environ.get(STORAGE_SETTING, "")
    if not needs_storage(functions) or not conn:
        return None
    try:
        azurite = importlib.import_module("devhost.azurite")
    except ImportError:
        return None
    return azurite.ensure_azurite(conn, script_root / ".devhost" / "azurite", Path(__file__).resolve().parents[1])
