"""Blob receipts (once per blob version, across restarts; poison after 5 failures) and the timer monitor, on Azurite."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
from azure.storage.blob import BlobServiceClient

from devhost.blobs import BlobFunction, BlobListener, compile_path
from devhost.connections import StorageConnection
from devhost.timers import TimerFunction, TimerListener
from tests.support.azurite import Azurite

API = "2025-11-05"


class Recorder:
    """A stand-in for the host's invoke: records each call, optionally failing."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, object]] = []
        self.fail = fail

    async def __call__(self, name: str, trigger: object) -> object:
        self.calls.append((name, trigger))
        if self.fail:
            raise RuntimeError("function failed")
        return None


async def first_fire(listener: TimerListener, recorder: Recorder) -> None:
    """Run the listener until its first invocation (deadline 10 s), then stop it."""
    task = asyncio.create_task(listener.run())
    deadline = asyncio.get_running_loop().time() + 10
    while not recorder.calls and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    task.cancel()


def conn(azurite: Azurite) -> StorageConnection:
    return StorageConnection("AzureWebJobsStorage", connection_string=azurite.connection_string)


def service(azurite: Azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string, api_version=API)


def test_path_patterns() -> None:
    container, pattern = compile_path("incoming/{name}")
    assert container == "incoming" and pattern.match("a/b/c.csv")
    _, csv_only = compile_path("data/{name}.csv")
    assert csv_only.match("x.csv") and not csv_only.match("x.parquet")
    _, literal = compile_path("data/{{2026}}-{name}")
    assert literal.match("{2026}-a") and not literal.match("2026-a")
    with pytest.raises(ValueError, match="literal container"):
        compile_path("{c}/x")


def test_each_blob_version_fires_once_across_restarts(azurite: Azurite) -> None:
    svc = service(azurite)
    box = svc.get_container_client("drops-once")
    box.create_container()
    box.upload_blob("a.csv", b"1,2\n")
    box.upload_blob("skip.txt", b"x")
    fn = BlobFunction("on_drop", "drops-once/{name}.csv", conn(azurite))
    first = Recorder()
    assert asyncio.run(BlobListener([fn], first, "host-a").scan_once()) == 1
    ((name, stream),) = first.calls
    assert name == "on_drop"
    assert isinstance(stream, func.InputStream)
    assert stream.name == "drops-once/a.csv" and stream.length == 4 and stream.read() == b"1,2\n"
    assert stream.uri is not None and stream.uri.endswith("/drops-once/a.csv")
    # the worker sets blob_properties on the stream; azure-functions does not declare it
    properties = stream.blob_properties  # type: ignore[attr-defined]
    assert properties is not None and properties["ETag"]

    restarted = Recorder()
    assert asyncio.run(BlobListener([fn], restarted, "host-a").scan_once()) == 0
    box.upload_blob("a.csv", b"1,2\n", overwrite=True)
    assert asyncio.run(BlobListener([fn], restarted, "host-a").scan_once()) == 1
    assert [s.name for _, s in restarted.calls] == ["drops-once/a.csv"]  # type: ignore[attr-defined]
    receipts = [b.name for b in svc.get_container_client("azure-webjobs-hosts").list_blobs()]
    assert sum(r.startswith("blobreceipts/host-a/Host.Functions.on_drop/") for r in receipts) == 2


def test_failures_are_retried_then_poisoned(azurite: Azurite) -> None:
    box = service(azurite).get_container_client("drops-poison")
    box.create_container()
    box.upload_blob("bad.csv", b"x")
    fn = BlobFunction("on_bad", "drops-poison/{name}", conn(azurite))
    failing = Recorder(fail=True)
    for _ in range(7):
        asyncio.run(BlobListener([fn], failing, "host-b").scan_once())
    assert len(failing.calls) == 5
    receipt = next(
        iter(
            service(azurite)
            .get_container_client("azure-webjobs-hosts")
            .list_blobs(name_starts_with="blobreceipts/host-b/", include=["metadata"])
        )
    )
    assert receipt.metadata == {"status": "Poison", "attempts": "5"}


#: a schedule with no occurrence near any test run (a daily one at 02:00 fired on its own in a run at 02:00 UTC)
YEARLY = "0 0 2 1 1 *"


def test_timer_fires_past_due_after_a_missed_occurrence(azurite: Azurite) -> None:
    svc = service(azurite)
    svc.get_container_client("azure-webjobs-hosts").upload_blob(
        "timers/host-t/nightly/status",
        json.dumps(
            {
                "Last": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
                "Next": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            }
        ).encode(),
        overwrite=True,
    )
    recorder = Recorder()
    listener = TimerListener([TimerFunction("nightly", YEARLY, False, True)], recorder, conn(azurite), "host-t")
    asyncio.run(first_fire(listener, recorder))
    ((name, request),) = recorder.calls
    assert name == "nightly" and request.past_due  # type: ignore[attr-defined]
    status = json.loads(
        svc.get_blob_client("azure-webjobs-hosts", "timers/host-t/nightly/status").download_blob().readall()
    )
    assert datetime.fromisoformat(status["Next"]) > datetime.now(UTC)


def test_run_on_startup_fires_without_past_due(azurite: Azurite) -> None:
    recorder = Recorder()
    listener = TimerListener([TimerFunction("boot", YEARLY, True, False)], recorder, None, "host-s")
    asyncio.run(first_fire(listener, recorder))
    ((_, request),) = recorder.calls
    assert not request.past_due  # type: ignore[attr-defined]
