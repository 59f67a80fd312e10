"""Prediction logging to blob storage, off the request path.

The request path only appends a record to a bounded deque (O(1), no I/O). A background thread writes batches
(at most ``batch_size`` records or every ``interval_s``) as JSON lines to
``<container>/<endpoint>/<yyyy>/<mm>/<dd>/<hh>/<uuid>.jsonl``. When storage is down the server keeps serving:
records wait in the buffer (oldest dropped beyond ``capacity``, counted) and the write is retried. ``close()``
flushes everything that is buffered — a graceful stop loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import orjson
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.blob import BlobServiceClient

log = logging.getLogger(__name__)
API_VERSION = "2025-11-05"


class PredictionLog:
    def __init__(self, connection_string: str, container: str, endpoint: str, *, batch_size: int = 500,
                 interval_s: float = 2.0, capacity: int = 100_000, timeout_s: float = 5.0) -> None:
        self.container, self.endpoint = container, endpoint
        self.batch_size, self.interval_s, self.capacity = batch_size, interval_s, capacity
        self.service = BlobServiceClient.from_connection_string(
            connection_string, api_version=API_VERSION, retry_total=0, connection_timeout=timeout_s,
            read_timeout=timeout_s)
        self.buffer: deque[dict[str, Any]] = deque()
        self.written = self.dropped = self.failures = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._container_ready = False
        self._thread = threading.Thread(target=self._run, name=f"predlog-{endpoint}", daemon=True)
        self._thread.start()

    def append(self, record: dict[str, Any]) -> None:
        """Called on the request path: no I/O, bounded memory."""
        if len(self.buffer) >= self.capacity:
            self.buffer.popleft()
            self.dropped += 1
        self.buffer.append(record)
        if len(self.buffer) >= self.batch_size:
            self._wake.set()

    @property
    def buffered(self) -> int:
        return len(self.buffer)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the writer after a last flush of every buffered record (bounded by ``timeout_s``)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        self.service.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self._drain(final=False)
        self._drain(final=True)

    def _drain(self, final: bool) -> None:
        attempts = 0
        while self.buffer:
            batch = [self.buffer.popleft() for _ in range(min(self.batch_size, len(self.buffer)))]
            if self._write(batch):
                continue
            self.buffer.extendleft(reversed(batch))
            attempts += 1
            if not final or attempts >= 3:
                return

    def _write(self, batch: list[dict[str, Any]]) -> bool:
        now = datetime.now(UTC)
        name = f"{self.endpoint}/{now:%Y/%m/%d/%H}/{uuid.uuid4()}.jsonl"
        body = b"".join(orjson.dumps(_serializable(record), option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
                        for record in batch)
        try:
            if not self._container_ready:
                with contextlib.suppress(ResourceExistsError):
                    self.service.create_container(self.container)
                self._container_ready = True
            self.service.get_blob_client(self.container, name).upload_blob(body, overwrite=True)
        except (AzureError, OSError) as exc:
            self.failures += 1
            if self.failures in (1, 10, 100) or self.failures % 1000 == 0:
                log.warning("prediction log: cannot write to %s (%s); %d records buffered", self.container,
                            type(exc).__name__, len(self.buffer) + len(batch))
            return False
        self.written += len(batch)
        return True


def _serializable(record: dict[str, Any]) -> dict[str, Any]:
    """Records keep numpy arrays and an epoch time on the request path; converting them is the writer's job."""
    when = record.get("time")
    if isinstance(when, float):
        return {**record, "time": datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")}
    return record
