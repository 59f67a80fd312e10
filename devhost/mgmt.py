"""The Durable HTTP management API (the extension's HttpApiHandler) as a route table.

The same table is served twice: under ``/runtime/webhooks/durabletask`` on the public port (master key), and under
the worker-only rpc base (``devhost.rpc``), which the durable client binding's ``rpcBaseUrl`` points at.
Values from requests are validated by ``devhost.params`` and bodies by ``devhost.jsonio``; payloads are held to
``devhost.limits``; the SQL behind each call is in ``devhost.store``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from devhost import jsonio, ops
from devhost.clientjson import management_urls
from devhost.engine import Engine
from devhost.errors import InstanceConflict
from devhost.limits import PAYLOAD_LIMIT, clip
from devhost.params import RequestError, query_float, query_int, query_time, read_body
from devhost.routing import Route
from devhost.status import RUNNING_LIKE, fmt_status_time, status_payload
from devhost.store import TERMINAL, Instance, InstanceFilter, Store, insert_entity_op

PAGE_SIZE = 100
#: keys of the public management API: the master key, or the extension's system key (what its URLs carry on Azure)
KEYS = ("master", "durabletask_extension")
MAX_PAGE_SIZE = 10_000
#: longest ``timeout`` a start-and-wait call may ask for (seconds); the host's own function timeout is 10 minutes
MAX_WAIT_SECONDS = 600.0
MAX_CONTINUATION = 10**12
#: instance ids as the Durable extension accepts them: 1 to 256 characters, none of / \ # ? or control characters
MAX_INSTANCE_ID = 256
RUNTIME_STATUSES = {
    s.lower(): s
    for s in ("Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Canceled", "Terminated", "Suspended")
}


def durable_error(message: str, status: int) -> web.Response:
    """The extension's error shape for a rejected argument."""
    return json_response(
        {
            "Message": "One or more of the arguments submitted is incorrect",
            "ExceptionMessage": message,
            "ExceptionType": "System.ArgumentException",
        },
        status,
    )


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=jsonio.dumps(doc), content_type="application/json", headers=headers)


def check_instance_id(iid: str) -> str:
    if not iid or len(iid) > MAX_INSTANCE_ID or any(c in "/\\#?" or ord(c) < 32 or 127 <= ord(c) < 160 for c in iid):
        raise RequestError(
            f"instance id {clip(iid, 60)!r} is not valid: 1 to {MAX_INSTANCE_ID} characters, "
            "none of / \\ # ? or control characters"
        )
    return iid


@dataclass
class MgmtApi:
    """Handlers over the store. ``public_base`` set: management URLs in answers point there (the rpc listener);
    unset: at the origin the request came to (the public port)."""

    store: Store
    engine: Engine
    hub: str
    key: str
    public_base: str | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def routes(self, base: str) -> list[Route]:
        """The route table under ``base`` (``runtime/webhooks/durabletask``), each route needing ``keys``."""

        def r(methods: str, rel: str, handler: Any) -> Route:
            return Route(tuple(methods.split(",")), f"{base}/{rel}".strip("/"), handler, KEYS, durable_error)

        return [
            r("POST", "orchestrators/{functionName}/{instanceId?}", self.start),
            r("GET", "instances", self.list),
            r("DELETE", "instances", self.purge_by),
            r("GET", "instances/{instanceId}", self.get_status),
            r("DELETE", "instances/{instanceId}", self.purge_one),
            r("POST", "instances/{instanceId}/raiseEvent/{eventName}", self.raise_event),
            r("POST", "instances/{instanceId}/terminate", self.terminate),
            r("POST", "instances/{instanceId}/suspend", self.suspend),
            r("POST", "instances/{instanceId}/resume", self.resume),
            r("POST", "instances/{instanceId}/rewind", self.rewind),
            r("POST", "instances/{instanceId}/restart", self.restart),
            r("GET", "entities/{entityName?}", self.list_entities),
            r("GET", "entities/{entityName}/{entityKey}", self.read_entity),
            r("POST", "entities/{entityName}/{entityKey}", self.signal_entity),
        ]

    def _base(self, request: web.Request) -> str:
        return self.public_base or f"{request.scheme}://{request.host}"

    def _instance(self, request: web.Request) -> Instance | None:
        return self.store.get(request.match_info["instanceId"])

    def check_status(self, request: web.Request, iid: str) -> web.Response:
        payload = management_urls(self._base(request), self.hub, self.key, iid)
        payload.pop("rewindPostUri", None)
        return json_response(payload, 202, {"Location": payload["statusQueryGetUri"], "Retry-After": "10"})

    async def _json_body(self, request: web.Request, what: str) -> str:
        """The body as standard JSON text ("null" when empty), within the payload limit."""
        raw = await read_body(request, PAYLOAD_LIMIT, what)
        if not raw.strip():
            return "null"
        return jsonio.dumps(jsonio.parse(raw, what))

    async def start(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["functionName"]
        orchestrator = self.engine.resolve_orchestrator(name)
        if orchestrator is None:
            raise RequestError(
                f"The function '{clip(name, 100)}' doesn't exist, is disabled, or is not an orchestrator function."
            )
        iid = request.match_info.get("instanceId")
        if iid is not None:
            check_instance_id(iid)
        timeout = query_float(request.query, "timeout", None, 0.0, MAX_WAIT_SECONDS)
        interval = query_float(request.query, "pollingInterval", 1.0, 0.001, MAX_WAIT_SECONDS)
        assert interval is not None
        if timeout is not None and "pollingInterval" in request.query and interval > timeout > 0:
            raise RequestError(f"pollingInterval ({interval:g} s) must not be longer than timeout ({timeout:g} s)")
        input_json = await self._json_body(request, "The orchestration input")
        try:
            iid = ops.start(self.store, orchestrator, iid, input_json, self._version(request))
        except InstanceConflict as exc:
            raise RequestError(str(exc), 409) from None
        self.engine.wake()
        if timeout is not None:
            return await self._wait(request, iid, timeout, interval)
        return self.check_status(request, iid)

    def _version(self, request: web.Request) -> str:
        version = request.query.get("version") or self.engine.config.default_version
        if len(version) > 100 or any(ord(c) < 32 for c in version):
            raise RequestError(f"version {clip(version, 40)!r} must be at most 100 printable characters")
        return version

    async def _wait(self, request: web.Request, iid: str, timeout: float, interval: float) -> web.StreamResponse:
        """Poll until the instance ends or ``timeout`` passes; a host shutting down answers at once."""
        deadline = time.monotonic() + timeout
        while True:
            inst = self.store.get(iid)
            if inst is not None and inst.status in TERMINAL:
                if inst.status == "Completed":
                    return web.Response(
                        status=200, text=jsonio.dumps(jsonio.loads_stored(inst.output)), content_type="application/json"
                    )
                return json_response(status_payload(inst), 500 if inst.status == "Failed" else 200)
            left = deadline - time.monotonic()
            if left <= 0 or self.stopping.is_set():
                return self.check_status(request, iid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), min(interval, 0.1, left))

    async def get_status(self, request: web.Request) -> web.Response:
        inst = self._instance(request)
        if inst is None:
            return web.Response(status=404)
        q = request.query
        show_input = _flag(q, "showInput", True)
        history = self.store.history(inst.id) if _flag(q, "showHistory", False) else None
        doc = status_payload(inst, show_input, history, _flag(q, "showHistoryOutput", False))
        if inst.status in RUNNING_LIKE:
            return json_response(doc, 202, {"Location": str(request.url), "Retry-After": "5"})
        failed_500 = inst.status == "Failed" and _flag(q, "returnInternalServerErrorOnFailure", False)
        return json_response(doc, 500 if failed_500 else 200)

    @staticmethod
    def _filter(request: web.Request) -> InstanceFilter:
        q = request.query
        statuses = []
        for raw in q.get("runtimeStatus", "").split(","):
            if raw.strip():
                status = RUNTIME_STATUSES.get(raw.strip().lower())
                if status is None:
                    raise RequestError(
                        f"runtimeStatus {clip(raw.strip(), 40)!r} is not one of {', '.join(RUNTIME_STATUSES.values())}"
                    )
                statuses.append(status)
        created_from, created_to = query_time(q, "createdTimeFrom"), query_time(q, "createdTimeTo")
        return InstanceFilter(
            created_from.timestamp() if created_from else None,
            created_to.timestamp() if created_to else None,
            tuple(statuses),
            q.get("instanceIdPrefix") or None,
        )

    async def list(self, request: web.Request) -> web.Response:
        where = self._filter(request)
        top = query_int(request.query, "top", PAGE_SIZE, 1, MAX_PAGE_SIZE)
        token = request.headers.get("x-ms-continuation-token", "")
        offset = query_int({"x-ms-continuation-token": token}, "x-ms-continuation-token", 0, 0, MAX_CONTINUATION)
        rows = self.store.query(where, top + 1, offset)
        show_input = _flag(request.query, "showInput", True)
        headers = {"x-ms-continuation-token": str(offset + top)} if len(rows) > top else {}
        return json_response([status_payload(i, show_input) for i in rows[:top]], headers=headers)

    async def purge_one(self, request: web.Request) -> web.Response:
        inst = self._instance(request)
        if inst is None:
            return web.Response(status=404)
        ops.purge(self.store, [inst.id])
        return json_response({"instancesDeleted": 1})

    async def purge_by(self, request: web.Request) -> web.Response:
        if not request.query.get("createdTimeFrom"):
            raise RequestError("createdTimeFrom is required to purge by filter")
        ids = self.store.matching_ids(self._filter(request))
        if not ids:
            return web.Response(status=404)
        return json_response({"instancesDeleted": ops.purge(self.store, ids)})

    async def raise_event(self, request: web.Request) -> web.Response:
        if not request.content_type.lower().startswith("application/json"):
            raise RequestError("The content type must be application/json")
        inst = self._instance(request)
        if inst is None:
            return web.Response(status=404)
        if inst.status in TERMINAL:
            return web.Response(status=410)
        input_json = await self._json_body(request, "The event payload")
        ops.raise_event(self.store, inst, request.match_info["eventName"], input_json)
        self.engine.wake()
        return web.Response(status=202)

    async def _control(self, request: web.Request, action: Any) -> web.Response:
        inst = self._instance(request)
        if inst is None:
            return web.Response(status=404)
        if inst.status in TERMINAL:
            return web.Response(status=410)
        action(self.store, inst.id, clip(request.query.get("reason", ""), 1000))
        self.engine.wake()
        return web.Response(status=202)

    async def terminate(self, request: web.Request) -> web.Response:
        return await self._control(request, ops.terminate)

    async def suspend(self, request: web.Request) -> web.Response:
        return await self._control(request, ops.suspend)

    async def resume(self, request: web.Request) -> web.Response:
        return await self._control(request, ops.resume)

    async def rewind(self, request: web.Request) -> web.Response:
        if self._instance(request) is None:
            return web.Response(status=404)
        raise RequestError("rewind is not supported by devhost", 501)

    async def signal_entity(self, request: web.Request) -> web.Response:
        """``POST entities/{name}/{key}?op=...``: queue one operation (202). The SDK's client sends the operation
        input JSON-encoded once more (a JSON string holding the JSON text); both forms are accepted."""
        entity_id = _entity_id(self, request)
        raw = await read_body(request, PAYLOAD_LIMIT, "The operation input")
        input_text: str | None = None
        if raw.strip():
            value = jsonio.parse(raw, "The operation input")
            input_text = value if isinstance(value, str) else jsonio.dumps(value)
        with self.store.tx() as db:
            insert_entity_op(db, entity_id, request.query.get("op", ""), input_text)
        self.engine.wake()
        return web.Response(status=202)

    async def read_entity(self, request: web.Request) -> web.Response:
        exists, state = self.engine.entity_queries.state(_entity_id(self, request))
        if not exists:
            return web.Response(status=404)
        return web.Response(text=state or "null", content_type="application/json")

    async def list_entities(self, request: web.Request) -> web.Response:
        name = request.match_info.get("entityName")
        top = query_int(request.query, "top", PAGE_SIZE, 1, MAX_PAGE_SIZE)
        token = request.headers.get("x-ms-continuation-token", "")
        offset = query_int({"x-ms-continuation-token": token}, "x-ms-continuation-token", 0, 0, MAX_CONTINUATION)
        rows = self.engine.entity_queries.listing(name, top + 1, offset)
        doc = [
            {
                "entityId": {"name": n, "key": k},
                "lastOperationTime": fmt_status_time(t),
                "state": jsonio.loads_stored(s) if _flag(request.query, "fetchState", False) else None,
            }
            for n, k, s, t in rows[:top]
        ]
        headers = {"x-ms-continuation-token": str(offset + top)} if len(rows) > top else {}
        return json_response(doc, headers=headers)

    async def restart(self, request: web.Request) -> web.Response:
        inst = self._instance(request)
        if inst is None:
            return web.Response(status=404)
        new_id = request.query.get("restartWithNewInstanceId", "true").lower() != "false"
        if not new_id and inst.status not in TERMINAL:
            raise RequestError(
                f"Instance '{clip(inst.id, 100)}' is {inst.status}; only terminal instances restart in place."
            )
        iid = ops.restart(self.store, inst, new_id)
        self.engine.wake()
        return json_response(iid, 202)


def _entity_id(api: MgmtApi, request: web.Request) -> str:
    name, key = request.match_info["entityName"], request.match_info["entityKey"]
    if name.lower() not in api.engine.entities:
        raise RequestError(f"No entity function named '{clip(name, 100)}' is registered", 404)
    return f"@{name.lower()}@{key}"


def _flag(q: Any, name: str, default: bool) -> bool:
    value = q.get(name)
    return default if value is None else value.lower() == "true"
