"""The host process: load the app, open the store, serve HTTP, run the engine and listeners, shut down cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from devhost.auth import KeyRing, resolve_master_key, resolve_system_keys
from devhost.blobevents import BlobWebhook
from devhost.clientjson import client_binding_json
from devhost.engine import Engine
from devhost.eventstore import EventStore
from devhost.httptriggers import build_routes
from devhost.invoke import Invoker, decode_trigger
from devhost.limits import PAYLOAD_LIMIT
from devhost.listeners import Wiring, create_subscriptions, host_id, maybe_start_azurite, start_listeners
from devhost.loader import (
    FunctionInfo,
    HostConfig,
    disabled_functions,
    import_function_app,
    index_functions,
    load_host_config,
    load_local_settings,
)
from devhost.mgmt import MgmtApi
from devhost.rpc import RpcChannel
from devhost.server import SHUTDOWN_GRACE, Server, runner
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


@dataclass
class Running:
    """A started host: what ``stop`` takes down, in order (public port first, the worker channel last)."""

    site: web.TCPSite
    runners: list[web.AppRunner]
    stopping: asyncio.Event
    engine: Engine
    tasks: list[asyncio.Task[None]]
    azurite: Any
    pool: ThreadPoolExecutor
    store: Store

    async def stop(self) -> None:
        """Stop in seconds whatever is in flight: in-flight requests and durable steps get one shared grace period
        (``SHUTDOWN_GRACE``) side by side; what does not finish in it is cancelled (durable work runs again after a
        restart, as on Azure)."""
        log.info("shutting down")
        started = time.monotonic()
        self.stopping.set()
        await self.site.stop()
        engine_task, *listeners = self.tasks
        for task in listeners:
            task.cancel()
        public, rpc = self.runners
        await _bounded(
            "the listeners, the engine and in-flight requests",
            asyncio.gather(*listeners, self.engine.stop(SHUTDOWN_GRACE), public.cleanup(), return_exceptions=True),
        )
        engine_task.cancel()
        await _bounded("the engine loop", asyncio.gather(engine_task, return_exceptions=True))
        await _bounded("the worker channel", rpc.cleanup())
        if self.azurite is not None:
            self.azurite.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()
        log.info("stopped in %.1f s", time.monotonic() - started)


async def _bounded(what: str, step: Any) -> None:
    """Await one stop step for at most twice the grace period; a step still running then is left behind (the
    process ends right after, and everything durable was committed when it was)."""
    started = time.monotonic()
    try:
        await asyncio.wait_for(step, SHUTDOWN_GRACE * 2)
    except TimeoutError:
        log.warning("stop: %s did not finish within %.0f s; leaving it", what, SHUTDOWN_GRACE * 2)
    else:
        log.debug("stop: %s done in %.1f s", what, time.monotonic() - started)


async def warm_up(invoker: Invoker) -> None:
    """Run the warmup-trigger functions once as the host comes up, as the platform does for a new instance; a
    failure is logged and changes nothing else (the platform does not retry it either)."""
    for info in [f for f in invoker.functions.values() if f.trigger_type == "warmupTrigger"]:
        try:
            await invoker.call(info, decode_trigger("warmupTrigger", "{}", "json"))
        except Exception:
            log.exception("warmup function %s failed", info.name)


async def start(opts: Options) -> Running:
    started_at = time.time()  # before anything listens: a blob written once devhost answers is always new
    root = opts.script_root.resolve()
    load_local_settings(root)
    config: HostConfig = load_host_config(root)
    key, key_source = resolve_master_key(root)
    system_keys = resolve_system_keys(root)
    durable_key = system_keys["durabletask_extension"][0]
    functions = index_functions(import_function_app(root))
    public_host = "127.0.0.1" if opts.host in ("0.0.0.0", "::", "") else opts.host
    base = f"http://{public_host}:{opts.port}"
    pool = ThreadPoolExecutor(max_workers=opts.threads, thread_name_prefix="devhost")
    store = Store(root / ".devhost" / "durable.db")
    channel = RpcChannel()
    client_json = client_binding_json(base, config.hub_name, durable_key, channel.base_url)
    invoker = Invoker(functions, root, pool, lambda: client_json)
    engine = Engine(store, functions, invoker, config)
    stopping = asyncio.Event()
    public_mgmt = MgmtApi(store, engine, config.hub_name, durable_key, stopping=stopping)
    rpc_mgmt = MgmtApi(store, engine, config.hub_name, durable_key, public_base=base, stopping=stopping)
    events = EventStore(store.db)
    webhook = BlobWebhook(functions, events)
    keys = KeyRing({"master": key, **{name: value for name, (value, _) in system_keys.items()}})
    disabled = disabled_functions(functions)
    server = Server(
        invoker, public_mgmt, build_routes(functions, disabled), config.route_prefix, keys, webhook, host_id(root)
    )
    azurite: Any = maybe_start_azurite(functions, root)
    public_runner = runner(server.app())
    rpc_runner = runner(channel.app(rpc_mgmt.routes(channel.prefix), PAYLOAD_LIMIT + 64 * 1024))
    await public_runner.setup()
    await rpc_runner.setup()
    triggered = {name: f for name, f in functions.items() if name not in disabled}  # their listeners do not start
    wiring = Wiring(
        triggered, invoker.invoke, root, events, webhook, base, system_keys["blobs_extension"][0], config, started_at
    )
    await create_subscriptions(wiring)  # before anything is served: a deployment makes them before the app runs
    site = web.TCPSite(public_runner, opts.host, opts.port)
    await site.start()
    await web.SockSite(rpc_runner, channel.sock).start()
    print(f"devhost: {len(functions)} function(s) from {root} (task hub {config.hub_name})", flush=True)
    for name in sorted(disabled):
        print(
            f"devhost: function {name} is disabled (AzureWebJobs.{name}.Disabled): its trigger does not fire",
            flush=True,
        )
    print("\n".join(describe(functions, base, config.route_prefix)), flush=True)
    print(f"devhost: master key ({key_source}): {key}", flush=True)
    for name, (value, source) in system_keys.items():
        print(f"devhost: system key {name} ({source}): {value}", flush=True)
    print(f"devhost: listening on {base}", flush=True)
    tasks = [asyncio.create_task(engine.run()), *start_listeners(wiring), asyncio.create_task(warm_up(invoker))]
    return Running(site, [public_runner, rpc_runner], stopping, engine, tasks, azurite, pool, store)


async def serve(opts: Options, stop: asyncio.Event | None = None) -> None:
    running = await start(opts)
    stop = stop or _signal_event()
    await stop.wait()
    await running.stop()
    print("devhost: stopped", flush=True)


def _signal_event() -> asyncio.Event:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event
