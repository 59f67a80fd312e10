"""Routes as data on aiohttp's router: each HTTP surface of devhost is a table of ``Route`` values.

A ``Route`` names its methods, an ASP.NET-style template (``instances/{instanceId}/raiseEvent/{eventName}``, matched
case-insensitively as the Functions host matches routes), its handler and the keys it accepts. ``add_routes``
registers a table on an aiohttp router: one ``TemplateResource`` per route, tried in table order, each handler
wrapped so that the key is checked first, a ``RequestError`` or ``BadJson`` becomes its status with a message, and
any other exception is logged and answered 500 without its detail.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_urldispatcher import Resource, UrlMappingMatchInfo, _InfoDict
from yarl import URL

from devhost.auth import KeyRing
from devhost.jsonio import BadJson
from devhost.limits import clip
from devhost.params import RequestError
from devhost.routes import RouteTemplate, compile_route

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorResponder = Callable[[str, int], web.Response]


def text_error(message: str, status: int) -> web.Response:
    return web.Response(status=status, text=message)


@dataclass(frozen=True)
class Route:
    """One entry of a route table. ``keys`` names the keys that authorise it (empty: anonymous)."""

    methods: tuple[str, ...]
    template: str
    handler: Handler
    keys: tuple[str, ...] = ("master",)
    on_error: ErrorResponder = text_error
    #: answer 405 (and ``Allow``) when the path matches but the method does not; the Functions host answers 404
    #: for an HTTP trigger called with another method, so trigger routes leave this off
    report_methods: bool = True


class TemplateResource(Resource):
    """An aiohttp resource matched by a Functions route template, case-insensitively, on the decoded path."""

    def __init__(self, template: RouteTemplate, report_methods: bool) -> None:
        super().__init__()
        self.template = template
        self.report_methods = report_methods

    @property
    def canonical(self) -> str:
        # "/{..." puts every template resource in the router's root bucket, tried in registration order
        return "/{" + self.template.template + "}"

    async def resolve(self, request: web.Request) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        params = self.template.match(request.path)
        if params is None:
            return None, set()
        route = self._routes.get(request.method, self._any_route)
        if route is not None:
            return UrlMappingMatchInfo(params, route), self._allowed_methods
        return None, set(self._allowed_methods) if self.report_methods else set()

    def _match(self, path: str) -> dict[str, str] | None:
        return self.template.match(path)

    def raw_match(self, path: str) -> bool:
        return path == self.template.template

    def add_prefix(self, prefix: str) -> None:
        raise NotImplementedError("template resources are registered with their full template")

    def get_info(self) -> _InfoDict:
        return {"formatter": self.template.template}

    def url_for(self, **kwargs: str) -> URL:
        raise NotImplementedError("template resources do not build URLs")


def unauthorized() -> web.Response:
    return web.Response(status=401, text="Unauthorized: a valid key is required in x-functions-key or ?code=")


def guarded(route: Route, keys: KeyRing) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if route.keys and not keys.authorizes(request.headers, request.query, route.keys):
            return unauthorized()
        try:
            return await route.handler(request)
        except (RequestError, BadJson) as exc:
            status = exc.status if isinstance(exc, RequestError) else 400
            return route.on_error(str(exc), status)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, clip(request.path))
            return web.Response(status=500, text="Internal Server Error")

    return handle


def add_routes(router: web.UrlDispatcher, routes: Iterable[Route], keys: KeyRing) -> None:
    """Register ``routes`` in order; one resource per route template, methods merged."""
    resources: dict[str, TemplateResource] = {}
    for route in routes:
        resource = resources.get(route.template)
        if resource is None:
            resource = TemplateResource(compile_route(route.template), route.report_methods)
            resources[route.template] = resource
            router.register_resource(resource)
        for method in route.methods:
            resource.add_route(method, guarded(route, keys))
