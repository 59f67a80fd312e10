"""A notification sink on 127.0.0.1: records every POST (path, content type, JSON body) and answers each path with
the statuses it is told, in turn (e.g. 500, 500, then 200 for ever)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    content_type: str
    body: Any
    answered: int


@dataclass
class Sink:
    port: int
    #: the statuses each path answers, in turn; the last one repeats (none: 200)
    plans: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def next_status(self, path: str) -> int:
        plan = self.plans.get(path) or [200]
        return plan.pop(0) if len(plan) > 1 else plan[0]

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]


@contextlib.contextmanager
def webhook_sink(plans: dict[str, list[int]] | None = None) -> Iterator[Sink]:
    sink = Sink(0, dict(plans or {}))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            with sink.lock:
                status = sink.next_status(self.path)
                sink.received.append(Received(self.path, self.headers.get("Content-Type", ""), body, status))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
