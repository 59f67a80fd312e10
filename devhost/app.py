"""The host process: load the app, open the store, serve HTTP, run the engine and listeners, shut down cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from devhost.auth import resolve_master_key
from devhost.clientjson import client_binding_json
from devhost.engine import Engine
from devhost.httptriggers import build_routes
from devhost.invoke import Invoker
from devhost.listeners import maybe_start_azurite, start_listeners
from devhost.loader import (
    FunctionInfo,
    HostConfig,
    import_function_app,
    index_functions,
    load_host_config,
    load_local_settings,
)
from devhost.mgmt import MgmtApi
from devhost.server import Server
from devhost.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    script_root: Path
    host: str = "127.0.0.1"
    port: int = 7071
    threads: int = 8


def describe(functions: dict[str, FunctionInfo], base: str, prefix: str) -> list[str]:
    lines = []
    for info in functions.values():
        line = f"  {info.name}: [{info.trigger_type}]"
        if info.trigger_type == "httpTrigger":
            methods = ",".join(info.trigger.get("methods") or ["ALL"])
            route = info.trigger.get("route") or info.name
            line += f" {methods} {base}/{prefix + '/' if prefix else ''}{route}"
        lines.append(line)
    return lines


async def serve(opts: Options, stop: asyncio.Event | None = None) -> None:
    root = opts.script_root.resolve()
    load_local_settings(root)
    config: HostConfig = load_host_config(root)
    key, key_source = resolve_master_key(root)
    functions = index_functions(import_function_app(root))
    public_host = "127.0.0.1" if opts.host in ("0.0.0.0", "::", "") else opts.host
    base = f"http://{public_host}:{opts.port}"
    pool = ThreadPoolExecutor(max_workers=opts.threads, thread_name_prefix="devhost")
    store = Store(root / ".devhost" / "durable.db")
    invoker = Invoker(functions, root, pool, lambda: client_binding_json(base, config.hub_name, key))
    engine = Engine(store, functions, invoker, config)
    server = Server(invoker, MgmtApi(store, engine, config.hub_name, key), build_routes(functions),
                    config.route_prefix, key)
    azurite: Any = maybe_start_azurite(functions, root)
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, opts.host, opts.port)
    await site.start()
    print(f"devhost: {len(functions)} function(s) from {root} (task hub {config.hub_name})", flush=True)
    print("\n".join(describe(functions, base, config.route_prefix)), flush=True)
    print(f"devhost: master key ({key_source}): {key}", flush=True)
    print(f"devhost: listening on {base}", flush=True)
    engine_task = asyncio.create_task(engine.run())
    listeners = start_listeners(functions, invoker.invoke, root)
    stop = stop or _signal_event()
    await stop.wait()
    log.info("shutting down")
    await site.stop()
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    await engine.stop()
    engine_task.cancel()
    await asyncio.gather(engine_task, return_exceptions=True)
    await runner.cleanup()
    if azurite is not None:
        azurite.stop()
    pool.shutdown(wait=False, cancel_futures=True)
    store.close()
    print("devhost: stopped", flush=True)


def _signal_event() -> asyncio.Event:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event
