"""HTTP triggers: route matching, ``func.HttpRequest`` in, ``func.HttpResponse`` / str / None out."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from aiohttp import web

from devhost.loader import FunctionInfo
from devhost.routes import RouteTemplate, compile_route

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpRoute:
    info: FunctionInfo
    template: RouteTemplate
    methods: frozenset[str] | None
    auth_level: str
    #: disabled by ``AzureWebJobs.<name>.Disabled``: it answers the master key only, anything else gets a 404
    disabled: bool = False

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


def build_routes(functions: dict[str, FunctionInfo], disabled: set[str] | None = None) -> list[HttpRoute]:
    out: list[HttpRoute] = []
    for info in functions.values():
        if info.trigger_type != "httpTrigger":
            continue
        methods = info.trigger.get("methods")
        allowed = frozenset(str(m).upper() for m in methods) if methods else None
        level = str(info.trigger.get("authLevel") or "FUNCTION").upper()
        route = compile_route(info.trigger.get("route") or info.name)
        out.append(HttpRoute(info, route, allowed, level, info.name in (disabled or set())))
    # literal routes before parameterised ones, as ASP.NET routing prefers them
    out.sort(key=lambda r: (r.template.template.count("{"), -len(r.template.template)))
    return out


def match_route(routes: list[HttpRoute], path: str, method: str) -> tuple[HttpRoute, dict[str, str]] | None:
    for route in routes:
        params = route.template.match(path)
        if params is not None and route.allows(method):
            return route, params
    return None


def to_http_request(request: web.Request, body: bytes, route_params: dict[str, str]) -> func.HttpRequest:
    """The url is absolute: ``create_check_status_response`` takes its origin from it."""
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=dict(request.headers),
        params=dict(request.query),
        route_params=route_params,
        body=body,
    )


def to_web_response(value: Any) -> web.Response:
    if isinstance(value, func.HttpResponse):
        headers = dict(value.headers)
        if not any(k.lower() == "content-type" for k in headers):
            mimetype = value.mimetype or "text/plain"
            headers["Content-Type"] = (
                f"{mimetype}; charset={value.charset}" if mimetype.startswith("text/") else mimetype
            )
        return web.Response(status=value.status_code, body=value.get_body(), headers=headers)
    if value is None:
        return web.Response(status=204)
    if isinstance(value, str | bytes):
        return web.Response(
            status=200,
            body=value if isinstance(value, bytes) else value.encode(),
            content_type="text/plain",
            charset="utf-8" if isinstance(value, str) else None,
        )
    return web.Response(status=200, text=json.dumps(value), content_type="application/json")


def http_output(info: FunctionInfo, value: Any, outputs: dict[str, Any]) -> Any:
    """The ``$return`` value, or the value of an ``http`` output binding with another name."""
    for binding in info.bindings:
        if binding.get("type") == "http" and binding.get("name") not in (None, "$return"):
            return outputs.get(str(binding["name"]))
    return value
