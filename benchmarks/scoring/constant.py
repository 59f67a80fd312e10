"""The ceiling: the same HTTP stack as the scoring server (uvicorn + uvloop + httptools, raw ASGI) answering a
constant, with the same key check. Run: uvicorn benchmarks.scoring.constant:app --loop uvloop --http httptools"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

KEY = b"Bearer " + os.environ.get("BENCH_KEY", "bench").encode()
BODY = b'{"predictions":[150.0],"model_version":"1"}'


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    auth = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
    status = 200 if hmac.compare_digest(bytes(auth), KEY) or scope["path"] == "/" else 401
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
