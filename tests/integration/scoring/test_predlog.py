"""The prediction log against a real Azurite: blobs by size and by time, a bounded buffer while storage is down."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from azure.storage.blob import BlobServiceClient

from scoring.predlog import PredictionLog
from scoring.storage import API_VERSION, BlobTarget
from tests.support.azurite import Azurite, free_port, start_azurite


def line(i: int) -> bytes:
    return orjson.dumps({"request_id": f"r{i}", "inputs": [[i] * 10], "predictions": [i * 0.5]})


def stored(connection_string: str, container: str) -> list[list[bytes]]:
    """The lines of every blob in the container, blobs ordered by their first request id (names are random)."""
    box = BlobServiceClient.from_connection_string(connection_string, api_version=API_VERSION).get_container_client(
        container
    )
    blobs = [box.download_blob(b.name).readall().splitlines() for b in box.list_blobs()]
    return sorted(blobs, key=lambda blob: int(orjson.loads(blob[0])["request_id"][1:]))


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_full_batches_are_written_without_waiting_for_the_interval(azurite: Azurite) -> None:
    lines = [line(i) for i in range(60)]
    log = PredictionLog(
        BlobTarget("logs", azurite.connection_string), "log-size", "qa", batch_bytes=1000, interval_s=3600
    )
    try:
        for item in lines:
            log.append(item)
        wait_for(lambda: log.written >= 50)
    finally:
        log.close()
    blobs = stored(azurite.connection_string, "log-size")
    assert [x for blob in blobs for x in blob] == lines
    assert len(blobs) >= 5 and all(sum(map(len, blob)) < 1000 + len(lines[0]) for blob in blobs)
    assert log.written == 60 and log.buffered == 0 and log.dropped == 0


def test_a_trickle_is_written_every_interval(azurite: Azurite) -> None:
    log = PredictionLog(BlobTarget("logs", azurite.connection_string), "log-time", "qa", interval_s=0.2)
    try:
        log.append(line(1))
        wait_for(lambda: log.written == 1)
        log.append(line(2))
        wait_for(lambda: log.written == 2)
    finally:
        log.close()
    assert stored(azurite.connection_string, "log-time") == [[line(1)], [line(2)]]


def test_storage_down_drops_the_oldest_beyond_the_bound_then_recovers() -> None:
    port = free_port()
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCD"
        "XJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    lines = [line(i) for i in range(100)]
    log = PredictionLog(
        BlobTarget("logs", connection), "log-down", "qa", batch_bytes=500, interval_s=0.05, capacity_bytes=2000
    )
    storage: Azurite | None = None
    try:
        for item in lines:
            log.append(item)
        wait_for(lambda: log.failures >= 1)
        assert log.written == 0
        assert log.dropped > 0 and log.pending_bytes <= 2000 + len(lines[0])
        kept = lines[log.dropped :]
        assert log.buffered == len(kept)
        storage = start_azurite(port)
        wait_for(lambda: log.buffered == 0, seconds=40)
        blobs = stored(connection, "log-down")
        assert [x for blob in blobs for x in blob] == kept
        assert log.written == len(kept)
    finally:
        log.close(timeout_s=5)
        if storage is not None:
            storage.stop()


class AnswerLosingProxy(ThreadingHTTPServer):
    """A real HTTP server in front of Azurite that forwards every request, and for the first ``lose`` blob uploads
    closes the connection once Azurite has committed the upload, without passing its answer on: what the writer sees
    when storage goes away in the middle of an upload it has already stored."""

    daemon_threads = True

    def __init__(self, upstream_port: int, lose: int) -> None:
        self.upstream_port, self.lose, self.lost = upstream_port, lose, 0
        super().__init__(("127.0.0.1", 0), _Forward)


class _Forward(BaseHTTPRequestHandler):
    server: AnswerLosingProxy

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=10)
        try:
            upstream.request(self.command, self.path, body, dict(self.headers.items()))
            answer = upstream.getresponse()
            payload = answer.read()
        finally:
            upstream.close()
        is_upload = self.command == "PUT" and "restype=container" not in self.path
        if is_upload and answer.status == 201 and self.server.lost < self.server.lose:
            self.server.lost += 1
            self.close_connection = True  # stored upstream; the client never hears it
            return
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in {"transfer-encoding", "connection"}:
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_upload_stored_but_unanswered_is_retried_into_the_same_blob(azurite: Azurite) -> None:
    proxy = AnswerLosingProxy(azurite.port, lose=2)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    through_proxy = azurite.connection_string.replace(f":{azurite.port}/", f":{proxy.server_address[1]}/")
    lines = [line(i) for i in range(30)]
    log = PredictionLog(
        BlobTarget("logs", through_proxy), "log-lost-answer", "qa", batch_bytes=400, interval_s=0.05, timeout_s=5
    )
    try:
        for item in lines:
            log.append(item)
        wait_for(lambda: log.written == len(lines), seconds=60)
    finally:
        log.close(timeout_s=5)
        proxy.shutdown()
        proxy.server_close()
    assert proxy.lost == 2 and log.failures == 2
    stored_lines = [x for blob in stored(azurite.connection_string, "log-lost-answer") for x in blob]
    assert sorted(stored_lines) == sorted(lines), "a record stored twice, or lost"
