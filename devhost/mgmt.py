"""The Durable HTTP management API (HttpApiHandler), served under the webhook path and the rpc base."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devhost import ops
from devhost.clientjson import management_urls
from devhost.engine import Engine
from devhost.errors import InstanceConflict
from devhost.history import parse_time
from devhost.status import RUNNING_LIKE, status_payload
from devhost.store import TERMINAL, Instance, Store

PAGE_SIZE = 100


@dataclass
class MgmtApi:
    store: Store
    engine: Engine
    hub: str
    key: str

    async def handle(self, request: web.Request, rel: str) -> web.StreamResponse:
        parts = [p for p in rel.split("/") if p]
        method = request.method
        if parts and parts[0].lower() == "orchestrators" and len(parts) in (2, 3) and method == "POST":
            return await self.start(request, parts[1], parts[2] if len(parts) == 3 else None)
        if not parts or parts[0].lower() != "instances":
            return web.Response(status=404)
        if len(parts) == 1:
            if method == "GET":
                return self.list(request)
            if method == "DELETE":
                return self.purge_by(request)
            return web.Response(status=405)
        inst = self.store.get(parts[1])
        if len(parts) == 2:
            if method == "GET":
                return self.get_status(request, inst)
            if method == "DELETE":
                return self.purge_one(inst)
            return web.Response(status=405)
        if method != "POST":
            return web.Response(status=405)
        action = parts[2].lower()
        if action == "raiseevent" and len(parts) == 4:
            return await self.raise_event(request, inst, parts[3])
        if action in ("terminate", "suspend", "resume", "rewind"):
            return self.control(request, inst, action)
        if action == "restart":
            return self.restart(request, inst)
        return web.Response(status=404)

    def _base(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    def check_status(self, request: web.Request, iid: str) -> web.Response:
        payload = management_urls(self._base(request), self.hub, self.key, iid)
        payload.pop("rewindPostUri", None)
        return web.json_response(payload, status=202,
                                 headers={"Location": payload["statusQueryGetUri"], "Retry-After": "10"})

    async def start(self, request: web.Request, name: str, iid: str | None) -> web.StreamResponse:
        if name not in self.engine.orchestrators:
            return _bad_request(
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function.")
        body = (await request.read()).decode("utf-8").strip()
        try:
            input_json = json.dumps(json.loads(body)) if body else "null"
        except json.JSONDecodeError as exc:
            return _bad_request(f"The request body is not valid JSON: {exc}")
        try:
            timeout = float(request.query["timeout"]) if "timeout" in request.query else None
            interval = float(request.query.get("pollingInterval", "1"))
        except ValueError as exc:
            return _bad_request(f"timeout and pollingInterval must be numbers of seconds: {exc}")
        try:
            iid = ops.start(self.store, name, iid, input_json)
        except InstanceConflict as exc:
            return _bad_request(str(exc), status=409)
        self.engine.wake()
        if timeout is not None:
            return await self._wait(request, iid, timeout, interval)
        return self.check_status(request, iid)

    async def _wait(self, request: web.Request, iid: str, timeout: float, interval: float) -> web.StreamResponse:
        deadline = time.monotonic() + timeout
        while True:
            inst = self.store.get(iid)
            if inst is not None and inst.status in TERMINAL:
                if inst.status == "Completed":
                    return web.Response(status=200, text=inst.output or "null", content_type="application/json")
                code = 500 if inst.status == "Failed" else 200
                return web.json_response(status_payload(inst), status=code)
            if time.monotonic() >= deadline:
                return self.check_status(request, iid)
            await asyncio.sleep(min(max(interval, 0.05), 0.1))

    def get_status(self, request: web.Request, inst: Instance | None) -> web.Response:
        if inst is None:
            return web.Response(status=404)
        q = request.query
        show_input = _flag(q, "showInput", True)
        history = self.store.history(inst.id) if _flag(q, "showHistory", False) else None
        doc = status_payload(inst, show_input, history, _flag(q, "showHistoryOutput", False))
        if inst.status in RUNNING_LIKE:
            return web.json_response(doc, status=202, headers={"Location": str(request.url), "Retry-After": "5"})
        failed_500 = inst.status == "Failed" and _flag(q, "returnInternalServerErrorOnFailure", False)
        return web.json_response(doc, status=500 if failed_500 else 200)

    def _filter(self, request: web.Request) -> tuple[str, list[Any]]:
        q = request.query
        clauses: list[str] = []
        args: list[Any] = []
        if q.get("createdTimeFrom"):
            clauses.append("created >= ?")
            args.append(parse_time(q["createdTimeFrom"]).timestamp())
        if q.get("createdTimeTo"):
            clauses.append("created <= ?")
            args.append(parse_time(q["createdTimeTo"]).timestamp())
        statuses = [s.strip() for s in q.get("runtimeStatus", "").split(",") if s.strip()]
        if statuses:
            clauses.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if q.get("instanceIdPrefix"):
            clauses.append("substr(id, 1, ?) = ?")
            args.extend([len(q["instanceIdPrefix"]), q["instanceIdPrefix"]])
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", args

    def list(self, request: web.Request) -> web.Response:
        try:
            where, args = self._filter(request)
            top = int(request.query.get("top", PAGE_SIZE))
            offset = int(request.headers.get("x-ms-continuation-token") or 0)
        except ValueError as exc:
            return _bad_request(f"Bad query: {exc}")
        rows = self.store.query(where, args, top + 1, offset)
        show_input = _flag(request.query, "showInput", True)
        headers = {"x-ms-continuation-token": str(offset + top)} if len(rows) > top else {}
        return web.json_response([status_payload(i, show_input) for i in rows[:top]], headers=headers)

    def purge_one(self, inst: Instance | None) -> web.Response:
        if inst is None:
            return web.Response(status=404)
        ops.purge(self.store, [inst.id])
        return web.json_response({"instancesDeleted": 1})

    def purge_by(self, request: web.Request) -> web.Response:
        if not request.query.get("createdTimeFrom"):
            return _bad_request("createdTimeFrom is required to purge by filter")
        try:
            where, args = self._filter(request)
        except ValueError as exc:
            return _bad_request(f"Bad query: {exc}")
        ids = [i.id for i in self.store.query(where, args, 1_000_000, 0)]
        if not ids:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": ops.purge(self.store, ids)})

    async def raise_event(self, request: web.Request, inst: Instance | None, name: str) -> web.Response:
        if not request.content_type.lower().startswith("application/json"):
            return _bad_request("The content type must be application/json")
        if inst is None:
            return web.Response(status=404)
        if inst.status in TERMINAL:
            return web.Response(status=410)
        body = (await request.read()).decode("utf-8")
        try:
            input_json = json.dumps(json.loads(body)) if body.strip() else "null"
        except json.JSONDecodeError as exc:
            return _bad_request(f"The request body is not valid JSON: {exc}")
        ops.raise_event(self.store, inst, name, input_json)
        self.engine.wake()
        return web.Response(status=202)

    def control(self, request: web.Request, inst: Instance | None, action: str) -> web.Response:
        if inst is None:
            return web.Response(status=404)
        if inst.status in TERMINAL:
            return web.Response(status=410)
        reason = request.query.get("reason", "")
        if action == "terminate":
            ops.terminate(self.store, inst.id, reason)
        elif action == "suspend":
            ops.suspend(self.store, inst.id, reason)
        elif action == "resume":
            ops.resume(self.store, inst.id, reason)
        else:
            return _bad_request("rewind is not supported by devhost", status=501)
        self.engine.wake()
        return web.Response(status=202)

    def restart(self, request: web.Request, inst: Instance | None) -> web.Response:
        if inst is None:
            return web.Response(status=404)
        new_id = request.query.get("restartWithNewInstanceId", "true").lower() != "false"
        if not new_id and inst.status not in TERMINAL:
            return _bad_request(f"Instance '{inst.id}' is {inst.status}; only terminal instances restart in place.")
        iid = ops.restart(self.store, inst, new_id)
        self.engine.wake()
        return web.json_response(iid, status=202)


def _flag(q: Any, name: str, default: bool) -> bool:
    value = q.get(name)
    return default if value is None else value.lower() == "true"


def _bad_request(message: str, status: int = 400) -> web.Response:
    return web.json_response({"Message": "One or more of the arguments submitted is incorrect",
                              "ExceptionMessage": message, "ExceptionType": "System.ArgumentException"},
                             status=status)
