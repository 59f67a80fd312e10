"""The scoring server as a plain ASGI app (app factory; handlers stay thin).

Routes: ``POST /score`` (key), ``GET /`` liveness, ``GET /health`` readiness, ``GET /metrics`` (key), and the admin
API for the local endpoints backend (admin key): ``PUT|DELETE /admin/deployments/{slot}``, ``PUT /admin/traffic``,
``GET /admin/state``. Keys are compared in constant time. Bad requests get 4xx JSON naming the problem.

Auth ``key`` (local endpoints): ``Authorization: Bearer <key>``. Auth ``platform`` (on Azure ML): the endpoint's
front end has checked the key or token before a request reaches the container, so the server checks none, and has
no admin API (Azure ML manages deployments and traffic).
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .metrics import Metrics
from .model import LoadedModel, ModelLoadError, first_non_finite, load_model
from .predlog import PredictionLog
from .slots import SlotError, Slots
from .validation import BodyNotJson, RequestError, parse_rows

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
JSON = b"application/json"


AUTH_MODES = ("key", "platform")


@dataclass(frozen=True)
class ServerConfig:
    name: str
    key: str = ""
    admin_key: str = ""
    max_rows: int = 1000
    max_body: int = 1 << 20
    auth: str = "key"

    def __post_init__(self) -> None:
        if self.auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, got {self.auth!r}")
        if self.auth == "key" and not (self.key and self.admin_key):
            raise ValueError("auth 'key' needs a scoring key and an admin key")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _request_headers(scope: Scope) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(``Authorization``, ``x-request-id`` (its first 64 bytes), ``Content-Length``) of a request, in one pass over
    its headers: the one rule for every route.

    A request with several ``Authorization`` headers is refused (400) rather than read by its first or last one:
    a proxy in front may check one and the server read another.
    """
    auth = request_id = length = None
    seen = 0
    for name, value in scope["headers"]:
        if name == b"authorization":
            auth = value
            seen += 1
        elif name == b"content-length":
            length = value
        elif name == b"x-request-id":
            request_id = value[:64]
    if seen > 1:
        raise RequestError(400, f"the request has {seen} Authorization headers: send exactly one")
    return auth, request_id, length


def _authorized(scope: Scope, key: str) -> bool:
    given = _request_headers(scope)[0] or b""
    return hmac.compare_digest(given, b"Bearer " + key.encode())


async def _send(
    send: Send, status: int, body: bytes, content_type: bytes = JSON, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, status: int, message: str, detail: Any = None) -> None:
    await _send(send, status, orjson.dumps({"error": message, "detail": detail}))


class ClientGone(Exception):
    """The client closed the connection before its request was read: there is no one to answer."""


async def _read_body(scope: Scope, receive: Receive, limit: int, declared: bytes | None = None) -> bytes:
    """The request's body, at most ``limit`` bytes (413 beyond); ``declared`` is its ``Content-Length`` if the
    caller has read the headers already."""
    if declared is None:
        declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"body of {int(declared)} bytes exceeds the limit of {limit}")
    message = await receive()  # most bodies arrive in one message
    if message["type"] == "http.request" and not message.get("more_body", False):
        body: bytes = message.get("body", b"")
        if len(body) > limit:
            raise RequestError(413, f"body exceeds the limit of {limit} bytes")
        return body
    if message["type"] == "http.disconnect":
        raise ClientGone
    chunks, size = [message.get("body", b"")], len(message.get("body", b""))
    if size > limit:
        raise RequestError(413, f"body exceeds the limit of {limit} bytes")
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


#: how much of a body that is not JSON the prediction log keeps (as a JSON string)
LOGGED_TEXT_LIMIT = 4096


def _logged_request(raw: bytes | None, is_json: bool) -> bytes:
    """The request as the prediction log embeds it: the JSON as sent, else its text (cut), else null."""
    if raw is None:
        return b"null"
    if is_json:
        return raw
    return orjson.dumps(raw[:LOGGED_TEXT_LIMIT].decode("utf-8", errors="replace"))


async def lifespan(receive: Receive, send: Send, shutdown: Callable[[], Awaitable[Any]]) -> None:
    """The ASGI lifespan protocol: nothing to do at start-up; ``shutdown`` (the prediction logs' flush) at the end."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


class ScoringApp:
    def __init__(
        self,
        config: ServerConfig,
        slots: Slots,
        predlog: PredictionLog | None = None,
        build: str = "",
        worker: int | None = None,
    ) -> None:
        self.config, self.slots, self.predlog = config, slots, predlog
        alive: dict[str, Any] = {"status": "alive", "name": config.name, "build": build}
        if worker is not None:
            alive["worker"] = worker  # which of the ``--workers`` processes answered (their counters are their own)
        self._alive = orjson.dumps(alive)
        self.metrics = Metrics()
        self._bearer = b"Bearer " + config.key.encode() if config.auth == "key" else None
        self._id_prefix = uuid.uuid4().hex[:12].encode()  # request ids: unique per process, then a counter
        self._ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        try:
            if path == "/score":
                await self._score(scope, receive, send) if method == "POST" else await send_error(send, 405, "use POST")
            elif path.startswith("/admin/"):
                await self._admin(scope, receive, send, path, method)
            elif path == "/":
                await _send(send, 200, self._alive)
            elif path == "/health":
                await self._health(send)
            elif path == "/metrics":
                await self._metrics(scope, send)
            else:
                await send_error(send, 404, f"no route {method} {path}")
        except RequestError as exc:
            await send_error(send, exc.status, exc.message, exc.detail)
        except ClientGone:
            pass

    async def _score(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        auth, request_id, length = _request_headers(scope)
        if self._bearer is not None and (auth is None or not hmac.compare_digest(auth, self._bearer)):
            self.metrics.observe("none", 401, 0.0)
            await send_error(send, 401, "missing or wrong key: send 'Authorization: Bearer <key>'")
            return
        request_id = b"%s-%x" % (self._id_prefix, next(self._ids)) if request_id is None else bytes(request_id)
        model = self.slots.pick()
        raw: bytes | None = None
        try:
            if model is None:
                raise RequestError(503, "no model deployed")
            raw = await _read_body(scope, receive, self.config.max_body, length)
            batch = parse_rows(raw, model.contract, self.config.max_rows)
            predictions = model.predict_batch(batch)
            bad = first_non_finite(predictions)
            if bad is not None:
                raise RequestError(
                    422,
                    f"row {bad}: the prediction is not a finite number: the row's values are "
                    "beyond what the model can score",
                    {"row": bad},
                )
        except ClientGone:
            return
        except RequestError as exc:
            await self._rejected(send, exc, started=started, request_id=request_id, model=model, raw=raw)
            return
        # the answer is {"predictions": [...], "model_version": "<v>"}, with the version's part encoded once
        body = b'{"predictions":%s,%s' % (orjson.dumps(predictions, option=orjson.OPT_SERIALIZE_NUMPY), model.tail)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", JSON),
                    (b"content-length", b"%d" % len(body)),
                    (b"x-request-id", request_id),
                    (b"x-model-version", model.label),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        latency = (time.perf_counter() - started) * 1000
        self.metrics.observe(model.version, 200, latency, len(batch.rows))
        self.metrics.out_of_range += batch.out_of_range(model.contract)
        if self.predlog is not None:
            self.predlog.record_raw(request_id, model.version_json, latency, status=200, request=raw, response=body)

    async def _rejected(
        self,
        send: Send,
        exc: RequestError,
        *,
        started: float,
        request_id: bytes,
        model: LoadedModel | None,
        raw: bytes | None,
    ) -> None:
        """Answer a request the key admitted but that cannot be scored, and log it: data-quality monitoring counts
        rejections (status and error) as well as predictions."""
        body = orjson.dumps({"error": exc.message, "detail": exc.detail})
        headers = [(b"x-request-id", request_id)]
        if model is not None:
            headers.append((b"x-model-version", model.label))
        await _send(send, exc.status, body, headers=headers)
        version = model.version if model is not None else None
        latency = (time.perf_counter() - started) * 1000
        self.metrics.observe(version or "none", exc.status, latency)
        if self.predlog is not None:
            request = _logged_request(raw, not isinstance(exc, BodyNotJson))
            self.predlog.record(
                request_id.decode(errors="replace"), version, latency, status=exc.status, request=request, response=body
            )

    async def _health(self, send: Send) -> None:
        state = self.slots.routing.state()
        ready = bool(self.slots.routing.table)
        await _send(send, 200 if ready else 503, orjson.dumps({"status": "ready" if ready else "no model", **state}))

    async def _metrics(self, scope: Scope, send: Send) -> None:
        if self._bearer is not None and not _authorized(scope, self.config.key):
            await send_error(send, 401, "missing or wrong key")
            return
        log_ = self.predlog
        gauges: dict[str, Callable[[], float]] = (
            {}
            if log_ is None
            else {
                "prediction_log_written_total": lambda: log_.written,
                "prediction_log_dropped_total": lambda: log_.dropped,
                "prediction_log_buffered": lambda: log_.buffered,
                "prediction_log_write_failures_total": lambda: log_.failures,
            }
        )
        await _send(send, 200, self.metrics.render(gauges).encode(), b"text/plain; version=0.0.4")

    async def _admin(self, scope: Scope, receive: Receive, send: Send, path: str, method: str) -> None:
        if self._bearer is None:
            await send_error(send, 404, "no admin API with platform auth: the platform manages deployments and traffic")
            return
        if not _authorized(scope, self.config.admin_key):
            await send_error(send, 401, "missing or wrong admin key")
            return
        route = (method, *path.strip("/").split("/")[1:])
        try:
            if route == ("GET", "state"):
                pass
            elif route[:2] == ("PUT", "deployments") and len(route) == 3:
                await self._deploy(route[2], await _read_body(scope, receive, self.config.max_body))
            elif route[:2] == ("DELETE", "deployments") and len(route) == 3:
                self.slots.remove(route[2])
            elif route == ("PUT", "traffic"):
                self.slots.set_traffic(_json_object(await _read_body(scope, receive, self.config.max_body)))
            else:
                await send_error(send, 404, f"no admin route {method} {path}")
                return
        except (SlotError, ModelLoadError) as exc:
            await send_error(send, 422, str(exc))
            return
        await _send(send, 200, orjson.dumps(self.slots.routing.state()))

    async def _deploy(self, slot: str, body: bytes) -> None:
        spec = _json_object(body)
        version, model_dir = spec.get("version"), spec.get("model_dir")
        if not isinstance(version, str | int) or not isinstance(model_dir, str):
            raise RequestError(422, 'expected {"version": "<version>", "model_dir": "<path>"}')
        model = await asyncio.to_thread(load_model, Path(model_dir), str(version))
        self.slots.install(slot, model)
        log.info(
            "endpoint %s: slot %s now serves version %s (fast path: %s)", self.config.name, slot, version, model.fast
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await lifespan(receive, send, lambda: asyncio.to_thread(self.close))

    def close(self) -> None:
        """Flush the prediction log (blocking) and say what this endpoint answered and logged."""
        if self.predlog is not None:
            self.predlog.close()
        log.info("endpoint %s stopped: %s", self.config.name, self.summary())

    def summary(self) -> str:
        """What this process answered and logged, as the log's last line says it (``answered=… logged=…``): with
        ``--workers``, each worker's counters are its own, and their sum is the endpoint's."""
        answered = sum(n for (_, status), n in self.metrics.requests.items() if status == 200)
        rejected = sum(n for (_, status), n in self.metrics.requests.items() if status != 200)
        log_ = self.predlog
        logged = f"logged={log_.written} dropped={log_.dropped}" if log_ is not None else "logged=none"
        return f"answered={answered} rejected={rejected} {logged}"


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RequestError(422, "expected a JSON object")
    return doc
