"""uvicorn's httptools protocol with a bound on the time a client takes to send its request.

uvicorn closes a keep-alive connection that stays idle (``timeout_keep_alive``) but sets no limit on a request in
progress: a client that opens a connection and sends its headers (or its body) a byte at a time holds a socket
and a parser for as long as it likes, and a few hundred such clients hold the server's file descriptors (the
"slowloris" attack). Here each request must arrive whole, headers and body, within ``read_timeout_s`` of its
first byte (of the connection's opening, for the first request); otherwise the connection is closed. A request
being answered is not bounded here (the model's work is the server's own), nor is an idle keep-alive connection
(uvicorn's timeout closes it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class BoundedReadProtocol(HttpToolsProtocol):
    read_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_timer is None:
            self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self) -> None:
        self._read_timer = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def bounded_read_protocol(read_timeout_s: float) -> type[BoundedReadProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with this bound."""
    return type("BoundedReadProtocol", (BoundedReadProtocol,), {"read_timeout_s": read_timeout_s})
