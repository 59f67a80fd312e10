"""Several endpoints in one server process, each with the contract of its own: as Azure gives each online endpoint a
URL and keys of its own, each hosted endpoint has its own listening socket (so its own URL), keys, slots, persisted
state, metrics and prediction log.

Why: a local environment (qa, production) serves every model's endpoint of that environment from one process, so an
extra model costs its loaded model rather than another interpreter with scikit-learn and uvicorn (~300 MB).

Requests are routed by the local port they arrived on (the ASGI scope's ``server``). An endpoint added while the
process runs arrives from the supervisor, which holds every port, as a listening socket passed over the control
socket (``SCM_RIGHTS``, one ``{"name": ...}`` message per socket): the process starts serving it without a restart,
so adding a model's endpoint never interrupts another's traffic.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import Awaitable, Callable

from .app import Receive, Scope, ScoringApp, Send, lifespan, send_error

log = logging.getLogger("scoring.hosting")

#: a hosted endpoint's name: also its folder under the state root and its prediction log's prefix
ENDPOINT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
#: the largest control message (one endpoint's name, as JSON)
CONTROL_MESSAGE_BYTES = 4096


class HostingError(ValueError):
    """A hosted endpoint's declaration cannot work (a bad name, a descriptor that is no listening socket)."""


def parse_listen(values: list[str]) -> dict[str, int]:
    """``NAME=FD`` values (``--listen``) as {name: fd}; every problem named."""
    found: dict[str, int] = {}
    for value in values:
        name, sep, fd = value.partition("=")
        if not sep or not ENDPOINT_NAME.match(name) or not fd.isdigit():
            raise HostingError(f"--listen expects NAME=FD (NAME: lower-case letters, digits, '-'), got {value!r}")
        if name in found:
            raise HostingError(f"--listen names endpoint {name!r} twice")
        found[name] = int(fd)
    return found


def local_port(sock: socket.socket) -> int:
    try:
        return int(sock.getsockname()[1])
    except (OSError, IndexError, TypeError) as exc:
        raise HostingError(f"descriptor {sock.fileno()} is not a bound TCP socket: {exc}") from None


class EndpointHost:
    """The ASGI application of a hosting process: each request goes to the endpoint of the port it came in on."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.endpoints: dict[int, ScoringApp] = {}

    def add(self, port: int, app: ScoringApp) -> None:
        self.endpoints[port] = app
        log.info("host %s: endpoint %s on port %d", self.name, app.config.name, port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        server = scope.get("server")
        app = self.endpoints.get(int(server[1])) if server else None
        if app is None:
            await send_error(send, 404, "no endpoint is hosted on this port")
            return
        await app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await lifespan(
            receive, send, lambda: asyncio.gather(*(asyncio.to_thread(a.close) for a in self.endpoints.values()))
        )


#: builds a hosted endpoint's application from its name (in a thread: it may load models)
EndpointFactory = Callable[[str], ScoringApp]
#: starts serving a listening socket in the running server
Listen = Callable[[socket.socket], Awaitable[None]]


class ControlChannel:
    """The hosting process's end of the control socket: each message adds one endpoint, with its socket."""

    def __init__(self, sock: socket.socket, host: EndpointHost, build: EndpointFactory, listen: Listen) -> None:
        self.sock, self.host, self.build, self.listen = sock, host, build, listen
        self.sock.setblocking(False)
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, CONTROL_MESSAGE_BYTES, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.error("host %s: control socket failed (%s): no endpoint can be added", self.host.name, exc)
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
                return
            if not data and not fds:  # the supervisor closed its end
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
                return
            task = asyncio.get_running_loop().create_task(self._add(data, fds))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _add(self, data: bytes, fds: list[int]) -> None:
        sock = socket.socket(fileno=fds[0]) if fds else None
        try:
            name = str(json.loads(data)["name"])
            if sock is None or not ENDPOINT_NAME.match(name):
                raise HostingError(f"a control message must name an endpoint and carry its socket, got {data[:200]!r}")
            port = local_port(sock)
            self.host.add(port, await asyncio.to_thread(self.build, name))
            await self.listen(sock)
        except (HostingError, ValueError, KeyError, TypeError, OSError) as exc:
            log.error("host %s: cannot add an endpoint: %s", self.host.name, exc)
            if sock is not None:
                sock.close()
