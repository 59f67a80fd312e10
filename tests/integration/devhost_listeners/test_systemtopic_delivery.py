"""The system topic's delivery rules against a real HTTP endpoint on 127.0.0.1: success codes, retries on Event
Grid's schedule (scaled down here), no retry for 400/413, dead-letter after the attempts or the TTL, bounded outbox."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

from devhost.connections import StorageConnection
from devhost.eventstore import EventStore
from devhost.systemtopic import MIN_DELAY, SCHEDULE, Retry, SystemTopic, TopicSubscription
from tests.support.azurite import free_port


def test_event_grid_retry_schedule() -> None:
    retry = Retry()
    assert [retry.delay(n, 500) for n in (1, 2, 3, 4)] == [10, 30, 60, 300]
    assert retry.delay(1, 503) == 30 and retry.delay(1, 404) == 300 and retry.delay(1, 408) == 120
    assert retry.delay(40, None) == SCHEDULE[-1] == 12 * 3600
    assert MIN_DELAY[401] == 300 and retry.max_attempts == 30 and retry.ttl == 24 * 3600


async def _scenario(tmp_path: Path, answers: list[int]) -> tuple[list[dict[str, Any]], EventStore, Path]:
    received: list[dict[str, Any]] = []

    async def endpoint(request: web.Request) -> web.Response:
        received.append({"headers": dict(request.headers), "body": await request.json()})
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    events = EventStore(sqlite3.connect(":memory:", isolation_level=None))
    sub = TopicSubscription("s1", "c", "", f"http://127.0.0.1:{port}/hook", StorageConnection("X", "unused"))
    deadletter = tmp_path / "dead.jsonl"
    retry = Retry(schedule=(0.05, 0.1), min_delay=(), max_attempts=3, ttl=60)
    topic = SystemTopic([sub], events, deadletter, retry=retry)
    events.create_subscription("s1", {})
    events.publish("s1", {"a": "1"}, [], [{"subject": "/x/a", "id": "1"}], ttl=60, max_pending=10)
    try:
        async with ClientSession() as session:
            deadline = time.monotonic() + 10
            while events.pending_events() and time.monotonic() < deadline:
                for item in events.due_events(16, set()):
                    await topic.deliver(session, item)
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    return received, events, deadletter


def test_retried_until_success(tmp_path: Path) -> None:
    received, events, deadletter = asyncio.run(_scenario(tmp_path, [503, 500, 204]))
    assert len(received) == 3 and events.pending_events() == 0 and not deadletter.exists()
    assert received[0]["headers"]["aeg-event-type"] == "Notification"
    assert [r["headers"]["aeg-delivery-count"] for r in received] == ["0", "1", "2"]
    assert received[0]["body"] == [{"subject": "/x/a", "id": "1"}]


def test_400_is_dead_lettered_at_once(tmp_path: Path) -> None:
    received, events, deadletter = asyncio.run(_scenario(tmp_path, [400]))
    assert len(received) == 1 and events.pending_events() == 0
    record = json.loads(deadletter.read_text())
    assert record["lastHttpStatusCode"] == 400 and "not retried" in record["deadLetterReason"]


def test_dead_lettered_after_max_attempts(tmp_path: Path) -> None:
    received, events, deadletter = asyncio.run(_scenario(tmp_path, [500, 500, 500, 500]))
    assert len(received) == 3 and events.pending_events() == 0
    assert "after 3 attempts" in json.loads(deadletter.read_text())["deadLetterReason"]


def test_outbox_is_bounded() -> None:
    events = EventStore(sqlite3.connect(":memory:", isolation_level=None))
    events.create_subscription("s", {})
    dropped = events.publish(
        "s", {f"b{i}": "e" for i in range(30)}, [], [{"id": str(i)} for i in range(30)], ttl=60, max_pending=10
    )
    assert dropped == 20 and events.pending_events() == 10
    assert [e.event["id"] for e in events.due_events(100, set())] == [str(i) for i in range(20, 30)]
