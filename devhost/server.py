"""The public HTTP surface: host routes (Durable management API, admin API, webhooks) and the HTTP triggers,
declared as route tables on aiohttp's router (``devhost.routing``).

Host routes come first, as in the Functions host, so no trigger route can shadow them; then the triggers, literal
routes before parameterised ones. The worker-only Durable rpc base is not here: it has its own listener
(``devhost.rpc``), so this port answers nothing under ``/durabletask/``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from aiohttp import web
from azure.core.exceptions import AzureError

from devhost import jsonio
from devhost.auth import KeyRing
from devhost.blobevents import WEBHOOK as BLOBS_WEBHOOK
from devhost.blobevents import BlobWebhook
from devhost.clientjson import WEBHOOK_PATH
from devhost.errors import FunctionNotFound
from devhost.eventgrid import handle_delivery
from devhost.httptriggers import HttpRoute, http_output, to_http_request, to_web_response
from devhost.invoke import Invoker, decode_trigger
from devhost.limits import ADMIN_BODY_LIMIT, EVENTGRID_BODY_LIMIT, HTTP_BODY_LIMIT, clip
from devhost.loader import FunctionInfo
from devhost.mgmt import MgmtApi
from devhost.params import RequestError, read_body
from devhost.routing import Route, add_routes

log = logging.getLogger(__name__)

EVENTGRID_PATH = "/runtime/webhooks/eventgrid"
#: seconds a connection may take to send a request's headers (and stay idle between requests) before it is closed;
#: Kestrel, under the Functions host, allows 30 s for headers; devhost serves one machine and is stricter
HEADER_TIMEOUT = 10.0
HOST_VERSION = "4.1000.0"
HOME_PAGE = (
    "<!DOCTYPE html><html><head><title>Your Functions app is up and running</title></head><body>"
    "<h1>Your Functions 4.0 app is up and running</h1><p>Served by devhost, a local Azure Functions host."
    "</p></body></html>"
)
#: seconds in-flight requests get to finish when devhost stops
SHUTDOWN_GRACE = 5.0


@dataclass
class Server:
    invoker: Invoker
    mgmt: MgmtApi
    routes: list[HttpRoute]
    route_prefix: str
    keys: KeyRing
    blob_webhook: BlobWebhook
    host_id: str = "devhost"
    started: float = field(default_factory=time.monotonic)

    def route_table(self) -> list[Route]:
        host = [
            *self.mgmt.routes(WEBHOOK_PATH.strip("/")),
            Route(("POST",), "admin/functions/{name}", self.admin),
            Route(("POST",), EVENTGRID_PATH.strip("/"), self.eventgrid, ("eventgrid_extension", "master")),
            Route(("POST",), BLOBS_WEBHOOK, self.blob_webhook.handle, ("blobs_extension", "master")),
        ]
        admin = [
            Route(("POST", "GET"), "admin/host/ping", self.ping, ()),
            Route(("GET",), "admin/host/status", self.status),
            Route(("POST", "GET"), "admin/warmup", self.warmup),
        ]
        # the host's default page comes last: an HTTP trigger on the root route takes it over
        home = [Route(("GET",), "", self.home, ())]
        return host + admin + [self._trigger_route(r) for r in self.routes] + home

    def _trigger_route(self, route: HttpRoute) -> Route:
        async def handle(request: web.Request) -> web.StreamResponse:
            if route.disabled and not self.keys.authorizes(request.headers, request.query, ("master",)):
                return web.Response(status=404)  # a disabled function runs for the master key only
            return await self.http_trigger(route, request)

        template = "/".join(p for p in (self.route_prefix.strip("/"), route.template.template.strip("/")) if p)
        methods = tuple(sorted(route.methods)) if route.methods else ("*",)
        keys = () if route.auth_level == "ANONYMOUS" or route.disabled else ("master",)
        return Route(methods, template, handle, keys, report_methods=False)

    def app(self) -> web.Application:
        application = web.Application(client_max_size=HTTP_BODY_LIMIT)
        add_routes(application.router, self.route_table(), self.keys)
        return application

    async def home(self, request: web.Request) -> web.Response:
        """The host's default page (``GET /``)."""
        return web.Response(text=HOME_PAGE, content_type="text/html")

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def status(self, request: web.Request) -> web.Response:
        """``GET /admin/host/status`` (master key), shaped as the host's answer."""
        return web.json_response(
            {
                "id": self.host_id,
                "state": "Running",
                "version": HOST_VERSION,
                "versionDetails": f"{HOST_VERSION} (devhost)",
                "processUptime": int((time.monotonic() - self.started) * 1000),
                "functions": sorted(self.invoker.functions),
            }
        )

    async def warmup(self, request: web.Request) -> web.Response:
        """``/admin/warmup``: run every warmup-trigger function, as the platform's warmup request does."""
        for info in [f for f in self.invoker.functions.values() if f.trigger_type == "warmupTrigger"]:
            try:
                await self.invoker.call(info, decode_trigger("warmupTrigger", "{}", "json"))
            except Exception as exc:
                return web.Response(status=500, text=f"Function '{info.name}' failed: {type(exc).__name__}")
        return web.Response(status=200)

    async def http_trigger(self, route: HttpRoute, request: web.Request) -> web.StreamResponse:
        body = await read_body(request, HTTP_BODY_LIMIT)
        req = to_http_request(request, body, dict(request.match_info))
        try:
            result = await self.invoker.call(route.info, req)
        except Exception as exc:
            return web.Response(status=500, text=f"Function '{route.info.name}' failed: {type(exc).__name__}")
        value = http_output(route.info, result.value, result.outputs)
        if value is None and _named_http_output(route.info):
            # a named http output the function left unset: the host answers 200 with no body
            return web.Response(status=200)
        return to_web_response(value)

    async def admin(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            info = self.invoker.get(name)
        except FunctionNotFound:
            return web.Response(status=404, text=f"No function named '{clip(name, 100)}'")
        if info.trigger_type == "httpTrigger":
            return web.Response(status=400, text=f"'{info.name}' is an HTTP function; call its route instead")
        raw = await read_body(request, ADMIN_BODY_LIMIT)
        doc = jsonio.parse(raw, "The admin request body") if raw.strip() else {}
        text = doc.get("input", "") if isinstance(doc, dict) else None
        if not isinstance(text, str):
            raise RequestError("The admin request body must be a JSON object whose 'input' is a string")
        try:
            trigger = await self.invoker.admin_trigger(info, text)
        except ValueError as exc:
            raise RequestError(f"Bad admin request: {clip(exc)}") from None
        except (AzureError, OSError) as exc:
            log.warning("admin call of %s: cannot read its trigger input %s: %s", info.name, clip(text), clip(exc))
            return web.Response(
                status=502, text=f"Cannot read the trigger input of '{info.name}': {type(exc).__name__}: {clip(exc)}"
            )
        try:
            await self.invoker.call(info, trigger)
        except Exception as exc:
            return web.Response(status=500, text=f"Function '{info.name}' failed: {type(exc).__name__}: {clip(exc)}")
        return web.Response(status=202)

    async def eventgrid(self, request: web.Request) -> web.Response:
        name = request.query.get("functionName", "")
        info = self.invoker.find(name)
        if info is None or info.trigger_type != "eventGridTrigger":
            return web.Response(status=404, text=f"No Event Grid function named '{clip(name, 100)}'")
        delivery = handle_delivery(request.headers, await read_body(request, EVENTGRID_BODY_LIMIT))
        if delivery.error:
            return web.Response(status=400, text=delivery.error)
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
        # the Event Grid extension answers a processed notification with 202 Accepted
        return web.Response(status=202)


def _named_http_output(info: FunctionInfo) -> bool:
    return any(b.get("type") == "http" and b.get("name") not in (None, "$return") for b in info.bindings)


def runner(application: web.Application) -> web.AppRunner:
    """An AppRunner whose connections must send their headers within ``HEADER_TIMEOUT`` (aiohttp's keep-alive
    timer is armed at connect and closes a connection still waiting for a request's headers) and whose stop
    waits at most ``SHUTDOWN_GRACE`` for in-flight requests (aiohttp waits its shutdown timeout twice: for the
    handler to finish, then again after cancelling it)."""
    return web.AppRunner(
        application, access_log=None, keepalive_timeout=HEADER_TIMEOUT, shutdown_timeout=SHUTDOWN_GRACE / 2
    )
