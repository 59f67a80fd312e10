"""Listeners survive a storage outage: Azurite stopped for 20 s and started again on the same port, devhost (a real
subprocess) keeps serving, logs the outage once, and picks up a new drop without a restart."""

from __future__ import annotations

import time
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from tests.support.azurite import Azurite, start_azurite
from tests.support.devhost_proc import KEY, make_devhost

OUTAGE_SECONDS = 20.0


def drop(azurite: Azurite, name: str, data: bytes) -> None:
    with BlobServiceClient.from_connection_string(azurite.connection_string) as svc:
        box = svc.get_container_client("devhost-drops")
        if not box.exists():
            box.create_container()
        box.upload_blob(name, data, overwrite=True)


def test_blob_listener_and_timer_monitor_survive_an_azurite_outage(tmp_path: Path) -> None:
    azurite = start_azurite()
    host = make_devhost(
        "blob_app",
        tmp_path,
        {"DataStorage": azurite.connection_string, "AzureWebJobsStorage": azurite.connection_string},
    )
    host.start()
    blobs = host.counts / "blobs"
    try:
        drop(azurite, "before.txt", b"one")
        host.wait_for(
            lambda: blobs.exists() and "devhost-drops/before.txt 3 one" in blobs.read_text(),
            what="the drop before the outage",
        )
        azurite.stop()
        outage_began = time.monotonic()
        ticks_then = host.count("monitored")
        host.wait_for(
            lambda: host.output().count("storage unreachable") >= 2,
            timeout=40,
            what="both listeners noticing the outage",
        )
        noticed = time.monotonic()
        while time.monotonic() - outage_began < OUTAGE_SECONDS or time.monotonic() - noticed < 3:
            # devhost keeps serving HTTP during the outage
            assert host.request("GET", f"/admin/functions/missing?code={KEY}").status in (404, 405)
            time.sleep(1.0)
        assert host.count("monitored") >= ticks_then + 10, "the monitored timer stopped firing during the outage"
        azurite = start_azurite(azurite.port)
        drop(azurite, "after.txt", b"two")
        host.wait_for(
            lambda: "devhost-drops/after.txt 3 two" in blobs.read_text(), timeout=30, what="the drop after the outage"
        )
        host.wait_for(
            lambda: host.output().count("storage reachable again") >= 2,
            timeout=15,
            what="both listeners logging the recovery",
        )
        out = host.output()
        # one warning per listener per outage, not one per poll
        assert out.count("blob trigger listener: storage unreachable") == 1
        assert out.count("timer schedule monitor: storage unreachable") == 1
        assert "Traceback" not in out
    finally:
        host.stop()
        azurite.stop()
