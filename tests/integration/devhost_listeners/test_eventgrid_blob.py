"""The Event Grid blob trigger on devhost, over real HTTP and Azurite: the system topic stand-in delivers
BlobCreated events to the blobs webhook (system key ``blobs_extension``), which queues them as the extension does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.blobevents import blob_of_url, subject_filter
from tests.support.azurite import Azurite
from tests.support.devhost_proc import KEY, DevhostProcess, make_devhost

BLOBS_KEY = "test-blobs-extension-key"
EVENTGRID_KEY = "test-eventgrid-extension-key"
CONTAINER = "eg-drops"
WEBHOOK = "/runtime/webhooks/blobs?functionName=Host.Functions.on_drop"


def upload(azurite: Azurite, name: str, data: bytes) -> None:
    with BlobServiceClient.from_connection_string(azurite.connection_string) as svc:
        box = svc.get_container_client(CONTAINER)
        if not box.exists():
            box.create_container()
        box.upload_blob(name, data, overwrite=True)


def lines(host: DevhostProcess) -> list[str]:
    path = host.counts / "blobs"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def eg_host(tmp_path: Path, azurite: Azurite) -> Iterator[DevhostProcess]:
    upload(azurite, "in/before.txt", b"old")
    host = make_devhost(
        "eventgrid_blob_app",
        tmp_path,
        {
            "DataStorage": azurite.connection_string,
            "AzureWebJobsStorage": azurite.connection_string,
            "DEVHOST_SYSTEM_KEY_BLOBS_EXTENSION": BLOBS_KEY,
            "DEVHOST_SYSTEM_KEY_EVENTGRID_EXTENSION": EVENTGRID_KEY,
        },
    )
    host.start()
    try:
        host.wait_for(lambda: "subscription on_drop-blobcreated created" in host.output(), what="the subscription")
        yield host
    finally:
        host.stop()


def test_subject_filter_is_the_literal_prefix_of_the_path() -> None:
    assert subject_filter("incoming/{name}") == "/blobServices/default/containers/incoming/blobs/"
    assert subject_filter("data/in/{name}.csv") == "/blobServices/default/containers/data/blobs/in/"
    assert subject_filter("data") == "/blobServices/default/containers/data/blobs/"
    assert blob_of_url("http://127.0.0.1:10000/devstoreaccount1/c/a/b%20c.txt") == ("c", "a/b c.txt")
    assert blob_of_url("https://acct.blob.core.windows.net/c/x.csv") == ("c", "x.csv")


def test_new_and_overwritten_blobs_fire_once_each_existing_ones_never(
    eg_host: DevhostProcess, azurite: Azurite
) -> None:
    upload(azurite, "in/a.txt", b"one")
    upload(azurite, "other/skip.txt", b"no")  # outside the subscription's subjectBeginsWith
    eg_host.wait_for(lambda: f"{CONTAINER}/in/a.txt 3 one" in lines(eg_host), what="the new blob")
    upload(azurite, "in/a.txt", b"two!")
    eg_host.wait_for(lambda: f"{CONTAINER}/in/a.txt 4 two!" in lines(eg_host), what="the overwrite")
    time.sleep(1.5)  # several polls of the topic: nothing else may arrive
    assert lines(eg_host) == [f"{CONTAINER}/in/a.txt 3 one", f"{CONTAINER}/in/a.txt 4 two!"]
    assert "fn=on_drop" in eg_host.output() and "blobTrigger" in eg_host.output()


def test_handshake_keys_and_bad_requests(eg_host: DevhostProcess) -> None:
    validation = [
        {
            "id": "1",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "subject": "",
            "eventTime": "2024-01-01T00:00:00Z",
            "dataVersion": "1",
            "data": {"validationCode": "abc-123"},
        }
    ]
    hdr = {"aeg-event-type": "SubscriptionValidation"}
    ok = eg_host.request("POST", f"{WEBHOOK}&code={BLOBS_KEY}", validation, headers=hdr)
    assert ok.status == 200 and ok.json() == {"validationResponse": "abc-123"}
    assert eg_host.request("POST", f"{WEBHOOK}&code={KEY}", validation, headers=hdr).status == 200
    for bad in ("wrong", EVENTGRID_KEY, ""):
        assert eg_host.request("POST", f"{WEBHOOK}&code={bad}", validation, headers=hdr).status == 401
    assert eg_host.request("POST", WEBHOOK, validation, headers=hdr).status == 401
    other = "/runtime/webhooks/blobs?functionName=Host.Functions.nope&code=" + BLOBS_KEY
    assert eg_host.request("POST", other, validation, headers=hdr).status == 404
    no_type = eg_host.request("POST", f"{WEBHOOK}&code={BLOBS_KEY}", validation)
    assert no_type.status == 400 and b"aeg-event-type" in no_type.body
    deep = eg_host.request(
        "POST", f"{WEBHOOK}&code={BLOBS_KEY}", raw=b"[" * 5000 + b"]" * 5000, headers={"aeg-event-type": "Notification"}
    )
    assert deep.status == 400
    # the Event Grid webhook takes its own system key, not the blobs one
    eg = "/runtime/webhooks/eventgrid?functionName=x"
    assert eg_host.request("POST", f"{eg}&code={BLOBS_KEY}", validation, headers=hdr).status == 401
    assert eg_host.request("POST", f"{eg}&code={EVENTGRID_KEY}", validation, headers=hdr).status == 404


def test_a_delivery_for_a_missing_blob_is_accepted_and_runs_nothing(eg_host: DevhostProcess, azurite: Azurite) -> None:
    event = [
        {
            "id": "e1",
            "eventType": "Microsoft.Storage.BlobCreated",
            "eventTime": "2024-01-01T00:00:00Z",
            "subject": f"/blobServices/default/containers/{CONTAINER}/blobs/in/ghost.txt",
            "dataVersion": "",
            "data": {
                "url": f"http://127.0.0.1:{azurite.port}/devstoreaccount1/{CONTAINER}/in/ghost.txt",
                "eTag": "0x8D0000000000000",
                "blobType": "BlockBlob",
                "contentLength": 1,
            },
        }
    ]
    res = eg_host.request("POST", f"{WEBHOOK}&code={BLOBS_KEY}", event, headers={"aeg-event-type": "Notification"})
    assert res.status == 202 and res.body == b""
    eg_host.wait_for(lambda: "in/ghost.txt does not exist" in eg_host.output(), what="the missing blob logged")
    assert lines(eg_host) == []


def test_a_failing_function_is_retried_then_poisoned(eg_host: DevhostProcess, azurite: Azurite) -> None:
    upload(azurite, "in/bad.txt", b"fail me")
    eg_host.wait_for(lambda: "moved to the poison queue" in eg_host.output(), what="the poison message")
    assert lines(eg_host).count(f"{CONTAINER}/in/bad.txt 7 fail me") == 5
    time.sleep(1.0)
    assert lines(eg_host).count(f"{CONTAINER}/in/bad.txt 7 fail me") == 5  # no more runs after the poison


def test_blobs_created_while_devhost_was_down_are_delivered_after_it_starts(
    eg_host: DevhostProcess, azurite: Azurite
) -> None:
    upload(azurite, "in/first.txt", b"1")
    eg_host.wait_for(lambda: f"blob {CONTAINER}/in/first.txt processed" in eg_host.output(), what="the first blob")
    assert eg_host.stop() == 0
    upload(azurite, "in/while-down.txt", b"down")
    eg_host.start()
    eg_host.wait_for(lambda: f"{CONTAINER}/in/while-down.txt 4 down" in lines(eg_host), what="the missed blob")
    time.sleep(1.5)
    assert [line.split()[0] for line in lines(eg_host)] == [
        f"{CONTAINER}/in/first.txt",
        f"{CONTAINER}/in/while-down.txt",
    ]
    assert f"{CONTAINER}/in/before.txt" not in json.dumps(lines(eg_host))
