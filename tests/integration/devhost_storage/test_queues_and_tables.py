"""Queue trigger/output and table input/output on Azurite's queue and table services, through a real devhost."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.queue import QueueServiceClient

from tests.support.azurite import ACCOUNT, KEY, ROOT, free_port, wait_for_port
from tests.support.devhost_proc import DevhostProcess, serving


@pytest.fixture(scope="module")
def storage() -> Iterator[str]:
    """An in-memory Azurite with blob, queue and table on free ports; its connection string."""
    blob, queue, table = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [
            str(ROOT / "node_modules" / ".bin" / "azurite"),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(blob),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(queue),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(table),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
            "--loose",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for port in (blob, queue, table):
            wait_for_port(port)
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{blob}/{ACCOUNT};QueueEndpoint=http://127.0.0.1:{queue}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{table}/{ACCOUNT};"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def host(storage: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    with serving("storage_app", tmp_path_factory.mktemp("storage"), {"AzureWebJobsStorage": storage}) as h:
        yield h


def test_queue_output_trigger_and_table_output_input(host: DevhostProcess, storage: str) -> None:
    assert host.request("POST", "/api/enqueue/o1", raw=b"first").body == b"queued"
    host.wait_for(lambda: host.request("GET", "/api/order/o1").status == 200, what="the order row")
    row = host.request("GET", "/api/order/o1").json()
    assert row["PartitionKey"] == "orders" and row["RowKey"] == "o1" and row["note"] == "first"
    assert row["dequeue"] == 1 and row["msgid"]
    assert host.request("GET", "/api/order/none").status == 404
    host.request("POST", "/api/enqueue/o2", raw=b"second")
    host.wait_for(lambda: len(host.request("GET", "/api/orders").json()) == 2, what="two rows")
    # the message the output binding wrote is base64, as the host writes it
    with QueueServiceClient.from_connection_string(storage) as svc:
        q = svc.get_queue_client("orders")
        q.send_message(base64.b64encode(json.dumps({"id": "o3", "note": "by sdk"}).encode()).decode())
    host.wait_for(lambda: host.request("GET", "/api/order/o3").status == 200, what="an SDK-sent message")


def test_a_failing_message_goes_to_the_poison_queue_after_max_dequeue(host: DevhostProcess, storage: str) -> None:
    host.request("POST", "/api/enqueue/bad", raw=b"poison")
    host.wait_for(lambda: "moved to orders-poison" in host.output(), what="the poison queue", timeout=60)
    assert host.output().count("this order is poison") >= 3
    with QueueServiceClient.from_connection_string(storage) as svc:
        poisoned = list(svc.get_queue_client("orders-poison").peek_messages(max_messages=5))
    assert len(poisoned) == 1
    assert json.loads(base64.b64decode(poisoned[0].content))["id"] == "bad"
    assert host.request("GET", "/api/order/bad").status == 404


def test_a_duplicate_table_insert_fails_that_invocation(host: DevhostProcess, storage: str, tmp_path: Path) -> None:
    host.request("POST", "/api/enqueue/dup", raw=b"one")
    host.wait_for(lambda: host.request("GET", "/api/order/dup").status == 200, what="the first row")
    host.request("POST", "/api/enqueue/dup", raw=b"two")
    host.wait_for(lambda: "(orders, dup) already exists" in host.output(), what="the conflict", timeout=60)
    assert host.request("GET", "/api/order/dup").json()["note"] == "one"
