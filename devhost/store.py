"""SQLite persistence (WAL). One connection, used only from the event-loop thread; every step one transaction."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhost.history import Event

TERMINAL = ("Completed", "Failed", "Terminated", "Canceled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, input TEXT NOT NULL, output TEXT,
  custom_status TEXT, created REAL NOT NULL, updated REAL NOT NULL, parent_id TEXT, parent_execution_id TEXT,
  parent_task_id INTEGER, execution_id TEXT NOT NULL, step_state TEXT);
CREATE INDEX IF NOT EXISTS instances_created ON instances(created);
CREATE TABLE IF NOT EXISTS history (
  instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (instance_id, seq));
CREATE TABLE IF NOT EXISTS inbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT, event TEXT NOT NULL,
  visible_at REAL NOT NULL, timer_id INTEGER);
CREATE INDEX IF NOT EXISTS inbox_visible ON inbox(visible_at);
CREATE INDEX IF NOT EXISTS inbox_instance ON inbox(instance_id, id);
CREATE TABLE IF NOT EXISTS entities (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, key TEXT NOT NULL, state TEXT, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS entity_ops (
  id INTEGER PRIMARY KEY AUTOINCREMENT, entity_id TEXT NOT NULL, operation TEXT NOT NULL, input TEXT,
  caller_id TEXT, caller_execution TEXT, request_id TEXT);
CREATE INDEX IF NOT EXISTS entity_ops_entity ON entity_ops(entity_id, id);
CREATE TABLE IF NOT EXISTS work (
  id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT NOT NULL,
  task_id INTEGER NOT NULL, name TEXT NOT NULL, input TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Instance:
    id: str
    name: str
    status: str
    input: str
    output: str | None
    custom_status: str | None
    created: float
    updated: float
    parent_id: str | None
    parent_execution_id: str | None
    parent_task_id: int | None
    execution_id: str
    step_state: str | None
    version: str = ""


@dataclass(frozen=True)
class InstanceFilter:
    """The management API's instance query: creation time range (epoch seconds), statuses, id prefix."""

    created_from: float | None = None
    created_to: float | None = None
    statuses: tuple[str, ...] = ()
    id_prefix: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.created_from is not None:
            clauses.append("created >= ?")
            args.append(self.created_from)
        if self.created_to is not None:
            clauses.append("created <= ?")
            args.append(self.created_to)
        if self.statuses:
            clauses.append(f"status IN ({','.join('?' * len(self.statuses))})")
            args.extend(self.statuses)
        if self.id_prefix:
            clauses.append("substr(id, 1, ?) = ?")
            args.extend([len(self.id_prefix), self.id_prefix])
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


@dataclass(frozen=True)
class Message:
    id: int
    instance_id: str
    execution_id: str | None
    event: Event


@dataclass(frozen=True)
class WorkRow:
    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str


class Store:
    """The durable state: instances, history, inbox (control queue, timers as delayed messages), work."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(instances)")}
        if "version" not in columns:  # databases made before orchestration versioning
            self.db.execute("ALTER TABLE instances ADD COLUMN version TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # instances -------------------------------------------------------------------------------------------
    def get(self, instance_id: str) -> Instance | None:
        row = self.db.execute(f"SELECT {_COLS} FROM instances WHERE id=?", (instance_id,)).fetchone()
        return Instance(*row) if row else None

    def query(self, match: InstanceFilter, limit: int, offset: int) -> list[Instance]:
        where, args = match.where()
        sql = f"SELECT {_COLS} FROM instances {where} ORDER BY created, id LIMIT ? OFFSET ?"
        return [Instance(*r) for r in self.db.execute(sql, [*args, limit, offset])]

    def matching_ids(self, match: InstanceFilter) -> list[str]:
        where, args = match.where()
        return [r[0] for r in self.db.execute(f"SELECT id FROM instances {where} ORDER BY created, id", args)]

    def history(self, instance_id: str) -> list[Event]:
        rows = self.db.execute("SELECT event FROM history WHERE instance_id=? ORDER BY seq", (instance_id,))
        return [json.loads(r[0]) for r in rows]

    # queues ----------------------------------------------------------------------------------------------
    def ready_instances(self, now: float, busy: set[str], limit: int) -> list[str]:
        rows = self.db.execute(
            "SELECT DISTINCT i.instance_id FROM inbox i JOIN instances s ON s.id=i.instance_id "
            "WHERE i.visible_at<=? AND s.status NOT IN ('Completed','Failed','Terminated','Canceled','Suspended') "
            "ORDER BY i.id LIMIT ?",
            (now, limit + len(busy)),
        )
        return [r[0] for r in rows if r[0] not in busy][:limit]

    def next_visible(self, after: float) -> float | None:
        row = self.db.execute("SELECT MIN(visible_at) FROM inbox WHERE visible_at>?", (after,)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def messages(self, instance_id: str, now: float) -> list[Message]:
        rows = self.db.execute(
            "SELECT id, instance_id, execution_id, event FROM inbox WHERE instance_id=? AND visible_at<=? ORDER BY id",
            (instance_id, now),
        )
        return [Message(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def pending_work(self, busy: set[int], limit: int) -> list[WorkRow]:
        rows = self.db.execute(
            "SELECT id, instance_id, execution_id, task_id, name, input FROM work ORDER BY id LIMIT ?",
            (limit + len(busy),),
        )
        return [WorkRow(*r) for r in rows if r[0] not in busy][:limit]

    def work_exists(self, work_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM work WHERE id=?", (work_id,)).fetchone() is not None


@dataclass(frozen=True)
class EntityOpRow:
    id: int
    entity_id: str
    operation: str
    input: str | None
    caller_id: str | None
    caller_execution: str | None
    request_id: str | None


def insert_entity_op(
    db: sqlite3.Connection,
    entity_id: str,
    operation: str,
    input_json: str | None,
    *,
    caller: tuple[str, str] | None = None,
    request_id: str | None = None,
) -> None:
    db.execute(
        "INSERT INTO entity_ops(entity_id, operation, input, caller_id, caller_execution, request_id) "
        "VALUES (?,?,?,?,?,?)",
        (entity_id, operation, input_json, caller[0] if caller else None, caller[1] if caller else None, request_id),
    )


class EntityQueries:
    """Reads of entity state and pending operations (the writes happen in the engine's transactions)."""

    def __init__(self, store: Store) -> None:
        self.db = store.db

    def ready(self, busy: set[str], limit: int) -> list[str]:
        rows = self.db.execute(
            "SELECT entity_id FROM entity_ops GROUP BY entity_id ORDER BY MIN(id) LIMIT ?", (limit + len(busy),)
        )
        return [r[0] for r in rows if r[0] not in busy][:limit]

    def batch(self, entity_id: str, limit: int) -> list[EntityOpRow]:
        rows = self.db.execute(
            "SELECT id, entity_id, operation, input, caller_id, caller_execution, request_id "
            "FROM entity_ops WHERE entity_id=? ORDER BY id LIMIT ?",
            (entity_id, limit),
        )
        return [EntityOpRow(*r) for r in rows]

    def state(self, entity_id: str) -> tuple[bool, str | None]:
        """(exists, state JSON text) of an entity."""
        row = self.db.execute("SELECT state FROM entities WHERE id=?", (entity_id,)).fetchone()
        return (row is not None, row[0] if row else None)

    def listing(self, name: str | None, limit: int, offset: int) -> list[tuple[str, str, str | None, float]]:
        sql = "SELECT name, key, state, updated FROM entities"
        args: list[Any] = []
        if name:
            sql += " WHERE name=?"
            args.append(name.lower())
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        return [(r[0], r[1], r[2], float(r[3])) for r in self.db.execute(sql, [*args, limit, offset])]


_COLS = (
    "id, name, status, input, output, custom_status, created, updated, parent_id, parent_execution_id, "
    "parent_task_id, execution_id, step_state, version"
)


def now_ts() -> float:
    return time.time()


def insert_message(
    db: sqlite3.Connection,
    instance_id: str,
    execution_id: str | None,
    ev: Event,
    visible_at: float,
    *,
    timer_id: int | None = None,
) -> None:
    db.execute(
        "INSERT INTO inbox(instance_id, execution_id, event, visible_at, timer_id) VALUES (?,?,?,?,?)",
        (instance_id, execution_id, json.dumps(ev), visible_at, timer_id),
    )


def delete_instance_rows(db: sqlite3.Connection, instance_id: str) -> None:
    for table, col in (
        ("instances", "id"),
        ("history", "instance_id"),
        ("inbox", "instance_id"),
        ("work", "instance_id"),
    ):
        db.execute(f"DELETE FROM {table} WHERE {col}=?", (instance_id,))
