"""Prediction logging to blob storage, off the request path.

The request path formats one JSON line (~1 µs) and appends it to a deque: no I/O, no lock. A background
thread writes a blob ``<container>/<endpoint>/<yyyy>/<mm>/<dd>/<hh>/<uuid>.jsonl`` whenever ``batch_bytes`` are
buffered, and whatever is buffered every ``interval_s``. Blobs are large on purpose: the writer shares the GIL with
the event loop and each upload hands the GIL back and forth a few times, so few large uploads cost the request path
far less than many small ones. When storage is down the server keeps serving: lines wait in the buffer (the oldest
dropped beyond ``capacity_bytes``, counted) and the write is retried. A retried write is the same blob, by name,
holding the same lines: an upload that storage committed but whose answer was lost (storage going away in the
middle of it) is overwritten, not written twice, so every record is stored once. ``close()`` flushes everything that
is buffered: a graceful stop loses nothing.

Byte counters are each written by one thread only (appended and dropped by the request path, taken by the writer),
so the pending size needs no lock.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import orjson

from .storage import BlobTarget

log = logging.getLogger(__name__)
#: request ids written into a JSON string as they are (no quote, backslash, control or non-ASCII byte)
_PLAIN_ID = re.compile(rb"[\x20\x21\x23-\x5b\x5d-\x7e]*")


class PredictionLog:
    def __init__(
        self,
        target: BlobTarget,
        container: str,
        endpoint: str,
        *,
        batch_bytes: int = 4 << 20,
        interval_s: float = 1.0,
        capacity_bytes: int = 256 << 20,
        timeout_s: float = 10.0,
    ) -> None:
        self.container, self.endpoint = container, endpoint
        self.batch_bytes, self.interval_s, self.capacity_bytes = batch_bytes, interval_s, capacity_bytes
        # the SDK is imported and the client made on the writer thread: seconds the server's start-up does not wait
        self._target, self._timeout_s = target, timeout_s
        self.service: Any = None
        self.buffer: deque[bytes] = deque()
        self._appended = self._dropped_bytes = self._taken = 0
        self._second, self._prefix = -1, b""
        self.written = self.dropped = self.failures = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._container_ready = False
        #: the write that failed, to be retried as it was: (blob name, its lines, ``dropped`` when it failed)
        self._retry: tuple[str, int, int] | None = None
        self._thread = threading.Thread(target=self._run, name=f"predlog-{endpoint}", daemon=True)
        self._thread.start()

    def record(
        self, request_id: str, version: str | None, latency_ms: float, *, status: int, request: bytes, response: bytes
    ) -> None:
        """One answered request's line, called on the request path: the request and response bodies are embedded as
        sent (``request`` is JSON: the body, or the text of a body that is not JSON, or null).

        Both are JSON already (the request parsed, the response encoded), so embedding them costs a copy where
        re-encoding a 100-row batch would cost ~1000 float formats. JSON strings cannot hold a raw line break, so
        replacing line breaks with spaces keeps one record per line without touching the values.
        """
        self._line(orjson.dumps(request_id), orjson.dumps(version), latency_ms, status, request, response)

    def record_raw(
        self, request_id: bytes, version_json: bytes, latency_ms: float, *, status: int, request: bytes, response: bytes
    ) -> None:
        """``record`` for the scoring path: the version already a JSON string, the request id as the header carried
        it (or as the server made it), quoted as it is unless it holds a byte a JSON string cannot hold as is."""
        if _PLAIN_ID.fullmatch(request_id):
            quoted = b'"%s"' % request_id
        else:
            quoted = orjson.dumps(request_id.decode(errors="replace"))
        self._line(quoted, version_json, latency_ms, status, request, response)

    def _line(  # noqa: PLR0917 (the record's fields, in order; private)
        self, request_id: bytes, version: bytes, latency_ms: float, status: int, request: bytes, response: bytes
    ) -> None:
        if b"\n" in request or b"\r" in request:
            request = request.replace(b"\n", b" ").replace(b"\r", b" ")
        self.append(
            b'{"time":"%s","request_id":%s,"model_version":%s,"status":%d,"latency_ms":%.3f,"request":%s,"response":%s}'
            % (self._stamp(), request_id, version, status, latency_ms, request, response)
        )

    def append(self, line: bytes) -> None:
        """No I/O, bounded memory: beyond ``capacity_bytes`` the oldest lines are dropped and counted."""
        self.buffer.append(line)
        self._appended += len(line)
        pending = self.pending_bytes
        if pending >= self.batch_bytes:
            if pending > self.capacity_bytes:
                self._drop(pending - self.capacity_bytes)
            if not self._wake.is_set():
                self._wake.set()

    def _drop(self, excess: int) -> None:
        while excess > 0 and len(self.buffer) > 1:
            size = len(self.buffer.popleft())
            self._dropped_bytes += size
            self.dropped += 1
            excess -= size

    @property
    def pending_bytes(self) -> int:
        return self._appended - self._dropped_bytes - self._taken

    def _stamp(self) -> bytes:
        """ISO 8601 UTC with milliseconds; the date and time part is formatted once per second."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S").encode()
        return b"%s.%03d+00:00" % (self._prefix, int((now - second) * 1000))

    @property
    def buffered(self) -> int:
        return len(self.buffer)

    def close(self, timeout_s: float = 60.0) -> None:
        """Stop the writer after a last flush of every buffered line (bounded by ``timeout_s``)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive() or self.buffer:
            log.error("prediction log: %d records not written at shutdown (storage slow or down)", len(self.buffer))
        if self.service is not None:
            self.service.close()

    def _run(self) -> None:
        try:
            self.service = self._target.client(
                retry_total=0, connection_timeout=self._timeout_s, read_timeout=self._timeout_s
            )
        except (ValueError, ImportError) as exc:  # a malformed connection string, the SDK missing
            log.error(
                "prediction log: no client for %s (%s): records are kept up to the bound, then dropped",
                self._target.describe(),
                exc,
            )
            return
        last_flush, failed_in_row = time.monotonic(), 0
        while not self._stop.is_set():
            if self.pending_bytes < self.batch_bytes:
                self._wake.wait(self.interval_s)
                self._wake.clear()
            # a full batch, or whatever is there once the interval is up: small uploads cost the request path
            if self.pending_bytes >= self.batch_bytes or (
                self.buffer and time.monotonic() - last_flush >= self.interval_s
            ):
                failed_in_row = 0 if self._flush(len(self.buffer)) else failed_in_row + 1
                last_flush = time.monotonic()
                if failed_in_row:  # storage down: back off (up to 30 s) rather than spin on a full buffer
                    self._stop.wait(min(30.0, self.interval_s * 2 ** min(failed_in_row, 5)))
        for _ in range(3):
            if self._flush(len(self.buffer)):
                break

    def _flush(self, count: int) -> bool:
        """Write the oldest ``count`` lines in blobs of about ``batch_bytes``; False (lines kept) on a failure."""
        while count > 0 and self.buffer:
            name, lines = self._next_blob()
            batch: list[bytes] = []
            size = 0
            while self.buffer and (len(batch) < lines if lines else (count > 0 and size < self.batch_bytes)):
                line = self.buffer.popleft()
                batch.append(line)
                size += len(line)
                count -= 1
            self._taken += size
            if not self._write(name, batch):
                self.buffer.extendleft(reversed(batch))
                self._taken -= size
                self._retry = (name, len(batch), self.dropped)
                return False
            self._retry = None
        return True

    def _next_blob(self) -> tuple[str, int]:
        """The next blob's name and how many lines it holds (0: as many as fit in ``batch_bytes``): after a failed
        write, that write again, less the lines dropped from its front since."""
        if self._retry is not None:
            name, lines, dropped_then = self._retry
            lines -= self.dropped - dropped_then
            if lines > 0:
                return name, lines
        return f"{self.endpoint}/{datetime.now(UTC):%Y/%m/%d/%H}/{uuid.uuid4()}.jsonl", 0

    def _write(self, name: str, batch: list[bytes]) -> bool:
        from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

        body = b"\n".join(batch) + b"\n"
        try:
            if not self._container_ready:
                with contextlib.suppress(ResourceExistsError):
                    self.service.create_container(self.container)
                self._container_ready = True
            self.service.get_blob_client(self.container, name).upload_blob(body, overwrite=True)
        except (AzureError, OSError) as exc:  # credential failures are AzureErrors too
            if isinstance(exc, ResourceNotFoundError):
                self._container_ready = False  # the container went (deleted, or a fresh emulator): make it again
            self.failures += 1
            if self.failures in (1, 10, 100) or self.failures % 1000 == 0:
                log.warning(
                    "prediction log: cannot write to %s (%s); %d records buffered",
                    self.container,
                    type(exc).__name__,
                    len(self.buffer) + len(batch),
                )
            return False
        self.written += len(batch)
        return True
