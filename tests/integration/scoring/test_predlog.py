"""The prediction log against a real Azurite: blobs by size and by time, a bounded buffer while storage is down."""

from __future__ import annotations

import time
from collections.abc import Callable

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
