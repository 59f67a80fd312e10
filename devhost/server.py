"""The aiohttp application: HTTP triggers, Durable management API, admin API and the Event Grid webhook."""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from azure.core.exceptions import AzureError

from devhost.auth import is_loopback, key_ok
from devhost.clientjson import RPC_PATH, WEBHOOK_PATH
from devhost.errors import FunctionNotFound
from devhost.httptriggers import HttpRoute, http_output, match_route, to_http_request, to_web_response
from devhost.invoke import Invoker
from devhost.mgmt import MgmtApi

log = logging.getLogger(__name__)

EVENTGRID_PATH = "/runtime/webhooks/eventgrid"
ADMIN_PATH = "/admin/functions/"


@dataclass
class Server:
    invoker: Invoker
    mgmt: MgmtApi
    routes: list[HttpRoute]
    route_prefix: str
    key: str

    def app(self) -> web.Application:
        application = web.Application(client_max_size=256 * 1024 * 1024)
        application.router.add_route("*", "/{tail:.*}", self.dispatch)
        return application

    def _authorized(self, request: web.Request) -> bool:
        return key_ok(self.key, request.headers, request.query)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        low = path.lower()
        try:
            if low.startswith(WEBHOOK_PATH + "/"):
                if not self._authorized(request):
                    return _unauthorized()
                return await self.mgmt.handle(request, path[len(WEBHOOK_PATH) + 1:])
            if low.startswith(RPC_PATH):
                # The SDK client cannot send a key (it appends paths to rpcBaseUrl), so the rpc base is open to
                # loopback callers only, exactly as the extension's local rpc listener; others need the key.
                if not (is_loopback(request.remote) or self._authorized(request)):
                    return _unauthorized()
                return await self.mgmt.handle(request, path[len(RPC_PATH):])
            if low.rstrip("/") == EVENTGRID_PATH:
                return await self.eventgrid(request)
            if low.startswith(ADMIN_PATH):
                return await self.admin(request, path[len(ADMIN_PATH):].strip("/"))
            return await self.http_trigger(request)
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, path)
            return web.Response(status=500, text="Internal Server Error")

    async def http_trigger(self, request: web.Request) -> web.StreamResponse:
        path = request.path.strip("/")
        prefix = self.route_prefix.lower()
        if prefix:
            if path.lower() != prefix and not path.lower().startswith(prefix + "/"):
                return web.Response(status=404)
            path = path[len(prefix):].strip("/")
        found = match_route(self.routes, path, request.method)
        if found is None:
            return web.Response(status=404)
        route, params = found
        if route.auth_level != "ANONYMOUS" and not self._authorized(request):
            return _unauthorized()
        req = to_http_request(request, await request.read(), params)
        try:
            result = await self.invoker.call(route.info, req)
        except Exception as exc:
            return web.Response(status=500, text=f"Function '{route.info.name}' failed: {type(exc).__name__}")
        return to_web_response(http_output(route.info, result.value, result.outputs))

    async def admin(self, request: web.Request, name: str) -> web.Response:
        if not self._authorized(request):
            return _unauthorized()
        if request.method != "POST":
            return web.Response(status=405)
        try:
            info = self.invoker.get(name)
        except FunctionNotFound:
            return web.Response(status=404, text=f"No function named '{name}'")
        if info.trigger_type == "httpTrigger":
            return web.Response(status=400, text=f"'{name}' is an HTTP function; call its route instead")
        raw = await request.read()
        try:
            doc = json.loads(raw) if raw.strip() else {}
            text = doc.get("input", "") if isinstance(doc, dict) else None
            if not isinstance(text, str):
                raise ValueError("'input' must be a string")
            trigger = await self.invoker.admin_trigger(info, text)
        except (ValueError, json.JSONDecodeError) as exc:
            return web.Response(status=400, text=f"Bad admin request body: {exc}")
        except (AzureError, OSError) as exc:
            log.exception("admin call of %s: cannot read its trigger input %r", name, text)
            return web.Response(status=502, text=f"Cannot read the trigger input of '{name}': "
                                                 f"{type(exc).__name__}: {exc}")
        try:
            await self.invoker.call(info, trigger)
        except Exception as exc:
            return web.Response(status=500, text=f"Function '{name}' failed: {type(exc).__name__}: {exc}")
        return web.Response(status=202)

    async def eventgrid(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _unauthorized()
        if request.method != "POST":
            return web.Response(status=405)
        name = request.query.get("functionName", "")
        info = self.invoker.functions.get(name)
        if info is None or info.trigger_type != "eventGridTrigger":
            return web.Response(status=404, text=f"No Event Grid function named '{name}'")
        try:
            eventgrid = importlib.import_module("devhost.eventgrid")
        except ImportError:
            return web.Response(status=501, text="devhost.eventgrid is not installed")
        delivery: Any = eventgrid.handle_delivery(dict(request.headers), await request.read())
        if delivery.error:
            return web.Response(status=400, text=str(delivery.error))
        if delivery.validation_response is not None:
            return web.json_response(delivery.validation_response)
        failures = 0
        for ev in delivery.events:
            try:
                await self.invoker.call(info, ev)
            except Exception:
                failures += 1
        if failures:
            return web.Response(status=500, text=f"{failures} of {len(delivery.events)} events failed")
        return web.Response(status=200)


def _unauthorized() -> web.Response:
    return web.Response(status=401, text="Unauthorized: a valid key is required in x-functions-key or ?code=")
