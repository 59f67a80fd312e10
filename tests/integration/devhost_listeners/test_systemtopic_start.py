"""A subscription devhost makes as it starts counts from the start: a blob written once devhost answers, before the
topic's first listing, is delivered; one written before devhost started is not (Event Grid raises no event for it)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from devhost.blobs import API_VERSION
from devhost.connections import StorageConnection
from devhost.eventstore import EventStore
from devhost.systemtopic import SystemTopic, TopicSubscription
from tests.support.azurite import Azurite


def test_blobs_written_after_start_but_before_the_first_listing_are_delivered(azurite: Azurite, tmp_path: Path) -> None:
    container = f"start-{uuid.uuid4().hex[:8]}"
    service = BlobServiceClient.from_connection_string(azurite.connection_string, api_version=API_VERSION)
    box = service.create_container(container)
    box.upload_blob("before.csv", b"1")
    time.sleep(1.1)  # not a wait for anything: blob times have whole seconds, and the start must fall in a later one
    started_at = time.time()
    box.upload_blob("after.csv", b"2")  # the host answers already; the topic has not listed anything yet
    events = EventStore(sqlite3.connect(":memory:", isolation_level=None))
    sub = TopicSubscription(
        "s",
        container,
        "",
        "http://127.0.0.1:9/hook",
        StorageConnection("AzureWebJobsStorage", azurite.connection_string),
    )
    topic = SystemTopic([sub], events, tmp_path / "dead.jsonl", created_at=started_at)
    assert asyncio.run(topic.poll(sub)) == 1
    subjects = [item.event["subject"] for item in events.due_events(16, set())]
    assert subjects == [f"/blobServices/default/containers/{container}/blobs/after.csv"]


def test_a_subscription_made_before_serving_takes_every_listed_blob_for_existing(
    azurite: Azurite, tmp_path: Path
) -> None:
    container = f"start-{uuid.uuid4().hex[:8]}"
    service = BlobServiceClient.from_connection_string(azurite.connection_string, api_version=API_VERSION)
    box = service.create_container(container)
    started_at = time.time()
    box.upload_blob("same-second.csv", b"1")  # in devhost's first second, before it makes its subscriptions
    events = EventStore(sqlite3.connect(":memory:", isolation_level=None))
    sub = TopicSubscription(
        "s",
        container,
        "",
        "http://127.0.0.1:9/hook",
        StorageConnection("AzureWebJobsStorage", azurite.connection_string),
    )
    topic = SystemTopic([sub], events, tmp_path / "dead.jsonl", created_at=started_at - 1)
    asyncio.run(topic.create(sub))
    box.upload_blob("after.csv", b"2")
    assert asyncio.run(topic.poll(sub)) == 1
    subjects = [item.event["subject"] for item in events.due_events(16, set())]
    assert subjects == [f"/blobServices/default/containers/{container}/blobs/after.csv"]
