"""Instance management operations (start, raise, terminate, suspend, resume, restart, purge) on the store.

Each operation is one transaction; the engine is woken afterwards by the caller.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from devhost import history as h
from devhost.errors import InstanceConflict
from devhost.store import TERMINAL, Instance, Store, delete_instance_rows, insert_message, now_ts


@dataclass(frozen=True)
class ParentRef:
    instance_id: str
    execution_id: str
    task_id: int
    name: str


def create_instance(
    db: Any,
    instance_id: str,
    name: str,
    input_json: str,
    *,
    parent: ParentRef | None = None,
    replace_running: bool = False,
    version: str = "",
) -> None:
    """Insert a Pending instance and its ExecutionStarted message; terminal instances with that id are replaced."""
    row = db.execute("SELECT status FROM instances WHERE id=?", (instance_id,)).fetchone()
    if row is not None:
        if row[0] not in TERMINAL and not replace_running:
            raise InstanceConflict(f"An instance with ID '{instance_id}' already exists and is {row[0]}.")
        delete_instance_rows(db, instance_id)
    execution_id = uuid.uuid4().hex
    now = now_ts()
    db.execute(
        "INSERT INTO instances(id, name, status, input, output, custom_status, created, updated, parent_id, "
        "parent_execution_id, parent_task_id, execution_id, step_state, version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            instance_id,
            name,
            "Pending",
            input_json,
            None,
            None,
            now,
            now,
            parent.instance_id if parent else None,
            parent.execution_id if parent else None,
            parent.task_id if parent else None,
            execution_id,
            None,
            version,
        ),
    )
    parent_doc = None
    if parent:
        parent_doc = {
            "Name": parent.name,
            "TaskScheduleId": parent.task_id,
            "OrchestrationInstance": {"InstanceId": parent.instance_id, "ExecutionId": parent.execution_id},
        }
    ev = h.execution_started(
        h.utcnow(), instance_id, execution_id, name, input_json, parent=parent_doc, version=version
    )
    insert_message(db, instance_id, execution_id, ev, now)


def start(store: Store, name: str, instance_id: str | None, input_json: str, version: str = "") -> str:
    iid = instance_id or uuid.uuid4().hex
    with store.tx() as db:
        create_instance(db, iid, name, input_json, version=version)
    return iid


def raise_event(store: Store, inst: Instance, event_name: str, input_json: str) -> None:
    with store.tx() as db:
        ev = h.event(h.EVENT_RAISED, h.utcnow(), Name=event_name, Input=input_json)
        insert_message(db, inst.id, None, ev, now_ts())


def terminate(store: Store, instance_id: str, reason: str) -> bool:
    """Terminate a non-terminal instance; False when it already was terminal (or vanished)."""
    with store.tx() as db:
        row = db.execute("SELECT status FROM instances WHERE id=?", (instance_id,)).fetchone()
        if row is None or row[0] in TERMINAL:
            return False
        now = h.utcnow()
        _append_history(
            db,
            instance_id,
            [
                h.event(h.EXECUTION_TERMINATED, now, Input=reason),
                h.event(
                    h.EXECUTION_COMPLETED,
                    now,
                    OrchestrationStatus=h.STATUS_CODES["Terminated"],
                    Result=json.dumps(reason),
                ),
            ],
        )
        db.execute("DELETE FROM inbox WHERE instance_id=?", (instance_id,))
        db.execute("DELETE FROM work WHERE instance_id=?", (instance_id,))
        db.execute(
            "UPDATE instances SET status='Terminated', output=?, updated=? WHERE id=?",
            (json.dumps(reason), now_ts(), instance_id),
        )
        return True


def suspend(store: Store, instance_id: str, reason: str) -> bool:
    with store.tx() as db:
        row = db.execute("SELECT status, execution_id FROM instances WHERE id=?", (instance_id,)).fetchone()
        if row is None or row[0] in TERMINAL or row[0] == "Suspended":
            return False
        insert_message(db, instance_id, row[1], h.event(h.EXECUTION_SUSPENDED, h.utcnow(), Reason=reason), now_ts())
        db.execute("UPDATE instances SET status='Suspended', updated=? WHERE id=?", (now_ts(), instance_id))
        return True


def resume(store: Store, instance_id: str, reason: str) -> bool:
    with store.tx() as db:
        row = db.execute("SELECT status, execution_id FROM instances WHERE id=?", (instance_id,)).fetchone()
        if row is None or row[0] != "Suspended":
            return False
        insert_message(db, instance_id, row[1], h.event(h.EXECUTION_RESUMED, h.utcnow(), Reason=reason), now_ts())
        db.execute("UPDATE instances SET status='Running', updated=? WHERE id=?", (now_ts(), instance_id))
        return True


def restart(store: Store, inst: Instance, new_id: bool) -> str:
    iid = uuid.uuid4().hex if new_id else inst.id
    with store.tx() as db:
        create_instance(db, iid, inst.name, inst.input, replace_running=not new_id, version=inst.version)
    return iid


def purge(store: Store, instance_ids: list[str]) -> int:
    with store.tx() as db:
        for iid in instance_ids:
            delete_instance_rows(db, iid)
    return len(instance_ids)


def _append_history(db: Any, instance_id: str, events: list[h.Event]) -> None:
    row = db.execute("SELECT COALESCE(MAX(seq), -1) FROM history WHERE instance_id=?", (instance_id,)).fetchone()
    start_seq = int(row[0]) + 1
    db.executemany(
        "INSERT INTO history(instance_id, seq, event) VALUES (?,?,?)",
        [(instance_id, start_seq + i, json.dumps(e)) for i, e in enumerate(events)],
    )
