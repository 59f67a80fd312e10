"""HTTP/1.1 over a plain socket, for tests that must send what a well-behaved client library refuses to build
(non-UTF-8 header bytes, duplicate headers, odd targets) and measure how long the server takes to answer."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RawAnswer:
    status: int  # 0: the server closed the connection without a status line
    elapsed_s: float
    head: bytes


def send(
    port: int,
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    body: bytes = b"",
    timeout_s: float = 10.0,
) -> RawAnswer:
    """One request with ``Connection: close``; the answer's status and how long it took. Raises ``TimeoutError``
    when the server gives no complete answer within ``timeout_s``."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1:" + str(port).encode(), b"Connection: close"]
    lines += [name + b": " + value for name, value in headers or []]
    if body or method in (b"POST", b"PUT", b"PATCH"):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        received = b""
        deadline = started + timeout_s
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise TimeoutError(f"{method!r} {target[:200]!r}: no complete answer within {timeout_s}s") from None
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    elapsed = time.monotonic() - started
    first = received.split(b"\r\n", 1)[0].split(b" ")
    status = int(first[1]) if len(first) >= 2 and first[1].isdigit() else 0
    return RawAnswer(status, elapsed, received.split(b"\r\n\r\n", 1)[0])
