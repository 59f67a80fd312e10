"""The worker-only channel of the Durable client: the ``rpcBaseUrl`` of the ``durableClient`` binding.

On Azure this channel runs between the host and its language worker and is reachable by nothing else. devhost
gives it the same reach: its own listener on an ephemeral 127.0.0.1 port (the public port answers nothing under
``/durabletask/``), under a path that starts with a random token made at each start and known only to the
in-process worker (the SDK appends its paths to ``rpcBaseUrl``, so the token travels in every call). Requests are
also refused unless their ``Host`` is that listener's own address (a DNS-rebinding page sends its own name), they
carry no ``Origin`` (every browser sends one on a cross-origin request; the SDK's aiohttp client never does), and any
body they carry is declared ``application/json`` (no "simple" text/plain form post from a page).
"""

from __future__ import annotations

import hmac
import secrets
import socket
from dataclasses import dataclass, field

from aiohttp import web

from devhost.auth import KeyRing
from devhost.routing import Handler, Route, add_routes

SEGMENT = "durabletask"


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class RpcChannel:
    """The channel's secret token and its socket (bound at creation, on a port the kernel picks)."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    sock: socket.socket = field(default_factory=_bound_socket)

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    @property
    def base_url(self) -> str:
        return f"http://{self.authority}/{self.token}/{SEGMENT}/"

    @property
    def prefix(self) -> str:
        return f"{self.token}/{SEGMENT}"

    def refusal(self, request: web.Request) -> web.Response | None:
        """Why ``request`` may not use the channel (a response to send), or None when it may."""
        first = request.path.lstrip("/").partition("/")[0]
        if not hmac.compare_digest(first.encode("utf-8", "surrogateescape"), self.token.encode()):
            return web.Response(status=404)
        if request.headers.get("Host", "") != self.authority:
            return web.Response(status=421, text="This channel answers only requests addressed to it")
        if "Origin" in request.headers:
            return web.Response(status=403, text="Browser requests are not accepted on this channel")
        if request.body_exists and request.content_type.lower() != "application/json":
            return web.Response(status=415, text="A request body must be application/json")
        return None

    def app(self, routes: list[Route], client_max_size: int) -> web.Application:
        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            refused = self.refusal(request)
            return refused if refused is not None else await handler(request)

        application = web.Application(middlewares=[gate], client_max_size=client_max_size)
        # the token in the path is the secret: no key on top (the SDK could not send one)
        add_routes(
            application.router, [Route(r.methods, r.template, r.handler, (), r.on_error) for r in routes], KeyRing({})
        )
        return application
