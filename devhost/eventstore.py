"""SQLite state of the Event Grid blob trigger and of the local system topic (same database as the durable store).

- ``blob_queue``: the blobs extension's trigger queue (``BlobTriggerMessage`` rows: function, container, blob,
  etag), with the queue semantics the extension relies on: visibility time and dequeue count. ``blob_poison`` keeps
  the last ``POISON_KEPT`` messages that failed ``maxDequeueCount`` times.
- ``topic_subscription`` / ``topic_seen`` / ``topic_outbox``: the system topic stand-in: when each subscription was
  created, the blob versions it has already seen, and the events still to deliver (attempts, next attempt, expiry).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS blob_queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT, function TEXT NOT NULL, container TEXT NOT NULL, blob TEXT NOT NULL,
  etag TEXT NOT NULL, dequeue_count INTEGER NOT NULL DEFAULT 0, visible_at REAL NOT NULL, inserted REAL NOT NULL);
CREATE INDEX IF NOT EXISTS blob_queue_visible ON blob_queue(visible_at);
CREATE TABLE IF NOT EXISTS blob_poison (
  id INTEGER PRIMARY KEY AUTOINCREMENT, function TEXT NOT NULL, container TEXT NOT NULL, blob TEXT NOT NULL,
  etag TEXT NOT NULL, dequeue_count INTEGER NOT NULL, error TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS topic_subscription (name TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS topic_seen (
  subscription TEXT NOT NULL, blob TEXT NOT NULL, etag TEXT NOT NULL, PRIMARY KEY (subscription, blob));
CREATE TABLE IF NOT EXISTS topic_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT, subscription TEXT NOT NULL, event TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS topic_outbox_next ON topic_outbox(next_at);
CREATE TABLE IF NOT EXISTS topic_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
"""

POISON_KEPT = 1000


@dataclass(frozen=True)
class QueuedBlob:
    id: int
    function: str
    container: str
    blob: str
    etag: str
    dequeue_count: int


@dataclass(frozen=True)
class OutboxEvent:
    id: int
    subscription: str
    event: dict[str, Any]
    attempts: int
    expires_at: float


class EventStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.executescript(SCHEMA)

    def _tx(self) -> Any:
        return _Tx(self.db)

    # the blob trigger queue ----------------------------------------------------------------------------------
    def queue_depth(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM blob_queue").fetchone()[0])

    def enqueue_blobs(self, rows: list[tuple[str, str, str, str]]) -> None:
        now = time.time()
        with self._tx():
            self.db.executemany(
                "INSERT INTO blob_queue(function, container, blob, etag, visible_at, inserted) VALUES (?,?,?,?,?,?)",
                [(*r, now, now) for r in rows],
            )

    def visible_blobs(self, busy: set[int], limit: int) -> list[QueuedBlob]:
        rows = self.db.execute(
            "SELECT id, function, container, blob, etag, dequeue_count FROM blob_queue "
            "WHERE visible_at<=? ORDER BY id LIMIT ?",
            (time.time(), limit + len(busy)),
        )
        return [QueuedBlob(*r) for r in rows if r[0] not in busy][:limit]

    def complete_blob(self, message_id: int) -> None:
        with self._tx():
            self.db.execute("DELETE FROM blob_queue WHERE id=?", (message_id,))

    def retry_blob(self, message: QueuedBlob, visible_in: float) -> None:
        with self._tx():
            self.db.execute(
                "UPDATE blob_queue SET dequeue_count=?, visible_at=? WHERE id=?",
                (message.dequeue_count + 1, time.time() + visible_in, message.id),
            )

    def delay_blob(self, message_id: int, seconds: float) -> None:
        """Make a message visible again in ``seconds`` without counting a dequeue (storage was unreachable)."""
        with self._tx():
            self.db.execute("UPDATE blob_queue SET visible_at=? WHERE id=?", (time.time() + seconds, message_id))

    def poison_blob(self, message: QueuedBlob, error: str) -> None:
        with self._tx():
            self.db.execute("DELETE FROM blob_queue WHERE id=?", (message.id,))
            self.db.execute(
                "INSERT INTO blob_poison(function, container, blob, etag, dequeue_count, error, at) "
                "VALUES (?,?,?,?,?,?,?)",
                (
                    message.function,
                    message.container,
                    message.blob,
                    message.etag,
                    message.dequeue_count + 1,
                    error,
                    time.time(),
                ),
            )
            self.db.execute("DELETE FROM blob_poison WHERE id <= (SELECT MAX(id) FROM blob_poison) - ?", (POISON_KEPT,))

    def poisoned(self) -> list[tuple[str, str, str, int]]:
        return [
            (r[0], r[1], r[2], int(r[3]))
            for r in self.db.execute("SELECT function, container, blob, dequeue_count FROM blob_poison ORDER BY id")
        ]

    # the system topic --------------------------------------------------------------------------------------
    def subscription_created(self, name: str) -> float | None:
        row = self.db.execute("SELECT created FROM topic_subscription WHERE name=?", (name,)).fetchone()
        return float(row[0]) if row else None

    def create_subscription(self, name: str, existing: dict[str, str]) -> None:
        """Record the subscription and the blob versions that existed before it (never delivered)."""
        with self._tx():
            self.db.execute("INSERT OR IGNORE INTO topic_subscription(name, created) VALUES (?,?)", (name, time.time()))
            self.db.execute("DELETE FROM topic_seen WHERE subscription=?", (name,))
            self.db.executemany(
                "INSERT INTO topic_seen(subscription, blob, etag) VALUES (?,?,?)",
                [(name, b, e) for b, e in existing.items()],
            )

    def seen(self, name: str) -> dict[str, str]:
        return dict(self.db.execute("SELECT blob, etag FROM topic_seen WHERE subscription=?", (name,)).fetchall())

    def next_sequence(self, count: int) -> int:
        """Reserve ``count`` sequencer values; returns the first (sequencers only grow, across restarts)."""
        row = self.db.execute("SELECT value FROM topic_sequence WHERE id=1").fetchone()
        first = int(row[0]) + 1 if row else 1
        with self._tx():
            self.db.execute("INSERT OR REPLACE INTO topic_sequence(id, value) VALUES (1, ?)", (first + count - 1,))
        return first

    def publish(
        self,
        name: str,
        changed: dict[str, str],
        gone: list[str],
        events: list[dict[str, Any]],
        *,
        ttl: float,
        max_pending: int,
    ) -> int:
        """In one transaction: new versions are seen and their events queued; returns how many older pending
        events were dropped to keep the outbox within ``max_pending``."""
        now = time.time()
        with self._tx():
            self.db.executemany(
                "INSERT OR REPLACE INTO topic_seen(subscription, blob, etag) VALUES (?,?,?)",
                [(name, b, e) for b, e in changed.items()],
            )
            self.db.executemany("DELETE FROM topic_seen WHERE subscription=? AND blob=?", [(name, b) for b in gone])
            self.db.executemany(
                "INSERT INTO topic_outbox(subscription, event, next_at, expires_at) VALUES (?,?,?,?)",
                [(name, json.dumps(e), now, now + ttl) for e in events],
            )
            over = self.db.execute("SELECT COUNT(*) FROM topic_outbox WHERE subscription=?", (name,)).fetchone()[0]
            dropped = max(0, int(over) - max_pending)
            if dropped:
                self.db.execute(
                    "DELETE FROM topic_outbox WHERE id IN (SELECT id FROM topic_outbox WHERE "
                    "subscription=? ORDER BY id LIMIT ?)",
                    (name, dropped),
                )
        return dropped

    def due_events(self, limit: int, busy: set[int]) -> list[OutboxEvent]:
        rows = self.db.execute(
            "SELECT id, subscription, event, attempts, expires_at FROM topic_outbox "
            "WHERE next_at<=? ORDER BY id LIMIT ?",
            (time.time(), limit + len(busy)),
        )
        return [OutboxEvent(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows if r[0] not in busy][:limit]

    def delivered(self, event_id: int) -> None:
        with self._tx():
            self.db.execute("DELETE FROM topic_outbox WHERE id=?", (event_id,))

    def retry_event(self, event_id: int, attempts: int, next_at: float) -> None:
        with self._tx():
            self.db.execute("UPDATE topic_outbox SET attempts=?, next_at=? WHERE id=?", (attempts, next_at, event_id))

    def pending_events(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM topic_outbox").fetchone()[0])


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if kind is not None else "COMMIT")
