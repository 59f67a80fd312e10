"""The durable engine: dispatches episodes and activities from the SQLite queues, commits each step atomically."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devhost import history as h
from devhost import versioning
from devhost.errors import InstanceConflict
from devhost.invoke import Invoker, decode_trigger, encode_activity_result
from devhost.limits import custom_status_problem, payload_problem
from devhost.loader import FunctionInfo, HostConfig
from devhost.ops import ParentRef, create_instance
from devhost.replay import StepInput, StepResult, StepState, apply_actions, run_step
from devhost.store import (
    TERMINAL,
    EntityQueries,
    Instance,
    Message,
    Store,
    WorkRow,
    insert_entity_op,
    insert_message,
    now_ts,
)

log = logging.getLogger(__name__)

_ACTIVE = ("Pending", "Running", "ContinuedAsNew", "Suspended")
ENTITY_CONCURRENCY = 4
ENTITY_BATCH = 50


class _Body:
    """What the SDK's entity handler reads its context from (``.body``)."""

    def __init__(self, body: str) -> None:
        self.body = body


def orchestrators_of(functions: dict[str, FunctionInfo]) -> dict[str, FunctionInfo]:
    """Orchestrator name resolution: trigger ``orchestration``, then the function name."""
    return {
        f.trigger.get("orchestration") or f.name: f
        for f in functions.values()
        if f.trigger_type == "orchestrationTrigger"
    }


def entities_of(functions: dict[str, FunctionInfo]) -> dict[str, FunctionInfo]:
    """Entity functions by lower-case name (scheduler ids carry the name in lower case)."""
    return {
        str(f.trigger.get("entityName") or f.name).lower(): f
        for f in functions.values()
        if f.trigger_type == "entityTrigger"
    }


def activities_of(functions: dict[str, FunctionInfo]) -> dict[str, FunctionInfo]:
    return {f.trigger.get("activity") or f.name: f for f in functions.values() if f.trigger_type == "activityTrigger"}


class Engine:
    """Runs until ``stop``; everything it knows is in the store, so a restart resumes where it stopped."""

    def __init__(self, store: Store, functions: dict[str, FunctionInfo], invoker: Invoker, config: HostConfig) -> None:
        self.store = store
        self.orchestrators = orchestrators_of(functions)
        self.activities = activities_of(functions)
        self._lower_activities = {n.lower(): n for n in self.activities}
        self.entities = entities_of(functions)
        self.entity_queries = EntityQueries(store)
        self._entity_tasks: dict[str, asyncio.Task[None]] = {}
        self._rejected: set[str] = set()  # instances of a version this host does not run (versionFailureStrategy)
        self.invoker = invoker
        # replays get their own threads so long sync activities in the invoker's pool cannot starve them
        self.replay_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="devhost-replay")
        self.config = config
        self._wake = asyncio.Event()
        self._stopping = False
        self._episodes: dict[str, asyncio.Task[None]] = {}
        self._work: dict[int, asyncio.Task[None]] = {}
        self._cache: dict[str, tuple[str, list[h.Event]]] = {}

    def resolve_orchestrator(self, name: str) -> str | None:
        """The declared name of orchestrator ``name``; the host looks function names up case-insensitively."""
        if name in self.orchestrators:
            return name
        low = name.lower()
        return next((n for n in self.orchestrators if n.lower() == low), None)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            self._dispatch()
            # Whatever is due now was dispatched or waits for a busy instance / a free slot, and the end of
            # every step calls wake(); so sleep until woken or until the next delayed message becomes visible.
            now = now_ts()
            nxt = self.store.next_visible(after=now)
            delay = 1.0 if nxt is None else min(1.0, max(0.001, nxt - now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop dispatching; let in-flight steps commit for up to ``grace`` seconds, then cancel (still durable)."""
        self._stopping = True
        self.wake()
        pending = [*self._episodes.values(), *self._work.values(), *self._entity_tasks.values()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)
        self.replay_pool.shutdown(wait=True)

    def _dispatch(self) -> None:
        free = self.config.max_orchestrators - len(self._episodes)
        if free > 0:
            for iid in self.store.ready_instances(now_ts(), set(self._episodes) | self._rejected, free):
                self._episodes[iid] = asyncio.create_task(self._episode_task(iid))
        free = self.config.max_activities - len(self._work)
        if free > 0:
            for row in self.store.pending_work(set(self._work), free):
                self._work[row.id] = asyncio.create_task(self._activity_task(row))
        free = ENTITY_CONCURRENCY - len(self._entity_tasks)
        if free > 0 and self.entities:
            for eid in self.entity_queries.ready(set(self._entity_tasks), free):
                self._entity_tasks[eid] = asyncio.create_task(self._entity_task(eid))

    # episodes --------------------------------------------------------------------------------------------
    async def _episode_task(self, iid: str) -> None:
        try:
            await self._episode(iid)
        except Exception:
            log.exception("instance=%s episode crashed; it will be retried", iid)
            await asyncio.sleep(0.5)
        finally:
            self._episodes.pop(iid, None)
            self.wake()

    def _batch(self, inst: Instance, msgs: list[Message], ledger: dict[str, Any]) -> tuple[list[Message], list[int]]:
        """Messages of this execution up to and including the first retry trigger (batching rule); stale ids."""
        batch: list[Message] = []
        stale: list[int] = []
        for msg in msgs:
            if msg.execution_id is not None and msg.execution_id != inst.execution_id:
                stale.append(msg.id)
                continue
            batch.append(msg)
            if _is_retry_trigger(msg.event, ledger):
                break
        return batch, stale

    def _history(self, inst: Instance) -> list[h.Event]:
        cached = self._cache.get(inst.id)
        if cached is None or cached[0] != inst.execution_id:
            cached = (inst.execution_id, self.store.history(inst.id))
            self._cache[inst.id] = cached
        return cached[1]

    async def _episode(self, iid: str) -> None:
        inst = self.store.get(iid)
        if inst is None or inst.status not in _ACTIVE or inst.status == "Suspended":
            return
        state = StepState.from_json(inst.step_state)
        batch, stale = self._batch(inst, self.store.messages(iid, now_ts()), state.ledger)
        if not batch:
            self._commit_nothing(stale)
            return
        fn = self.orchestrators.get(inst.name)
        started = time.perf_counter()
        refused = versioning.mismatch(inst.version, self.config)
        if refused is not None and self.config.version_failure == "Reject":
            log.warning(
                "fn=%s instance=%s not run here: %s; its messages wait for a matching host", inst.name, iid, refused
            )
            self._rejected.add(iid)
            return
        now = h.utcnow()
        new = [h.event(h.ORCHESTRATOR_STARTED, now), *[m.event for m in batch]]
        step = StepInput(
            inst.name, iid, inst.execution_id, inst.parent_id, inst.input, self._history(inst), new, state, now
        )
        if refused is not None:
            result = _failed(step, refused)
        elif fn is None:
            result = _missing_orchestrator(step)
        else:
            result = await asyncio.get_running_loop().run_in_executor(self.replay_pool, run_step, fn.callable, step)
            problem = _oversized(result)
            if problem is not None:
                result = _failed(step, f"Orchestrator function '{inst.name}' failed: {problem}")
        committed = self._commit_episode(inst, [m.id for m in batch] + stale, result)
        log.info(
            "fn=%s instance=%s episode %s: %d new events, %d activities, %d timers, %d children -> %s (%.1f ms)",
            inst.name,
            iid,
            "committed" if committed else "discarded (instance changed)",
            len(result.events),
            len(result.activities),
            len(result.timers),
            len(result.children),
            result.status,
            (time.perf_counter() - started) * 1000,
        )
        if result.status == "Failed":
            log.error("fn=%s instance=%s failed: %s", inst.name, iid, result.output)

    def _commit_nothing(self, stale: list[int]) -> None:
        with self.store.tx() as db:
            db.executemany("DELETE FROM inbox WHERE id=?", [(i,) for i in stale])

    def _commit_episode(self, inst: Instance, consumed: list[int], result: StepResult) -> bool:
        with self.store.tx() as db:
            db.executemany("DELETE FROM inbox WHERE id=?", [(i,) for i in consumed])
            row = db.execute("SELECT status, execution_id FROM instances WHERE id=?", (inst.id,)).fetchone()
            if row is None or row[0] not in _ACTIVE or row[1] != inst.execution_id:
                self._cache.pop(inst.id, None)
                return False
            for op in result.entity_ops:
                caller = (inst.id, inst.execution_id) if op.request_id else None
                insert_entity_op(db, op.target, op.operation, op.input, caller=caller, request_id=op.request_id)
            if result.status == "ContinuedAsNew":
                self._continue_as_new(db, inst, result)
                return True
            self._append(db, inst, result.events)
            self._schedule(db, inst, result)
            status = result.status if result.status != "Running" or row[0] != "Suspended" else "Suspended"
            output = None if result.status == "Running" else json.dumps(result.output)
            db.execute(
                "UPDATE instances SET status=?, output=?, custom_status=?, updated=?, step_state=? WHERE id=?",
                (status, output, _json_or_none(result.custom_status), now_ts(), result.state.to_json(), inst.id),
            )
            if result.status in TERMINAL:
                db.execute("DELETE FROM inbox WHERE instance_id=?", (inst.id,))
                db.execute("DELETE FROM work WHERE instance_id=?", (inst.id,))
                self._notify_parent(db, inst, result)
                self._cache.pop(inst.id, None)
        return True

    def _append(self, db: Any, inst: Instance, events: list[h.Event]) -> None:
        past = self._history(inst)
        db.executemany(
            "INSERT INTO history(instance_id, seq, event) VALUES (?,?,?)",
            [(inst.id, len(past) + i, json.dumps(e)) for i, e in enumerate(events)],
        )
        past.extend(events)

    def _schedule(self, db: Any, inst: Instance, result: StepResult) -> None:
        db.executemany(
            "INSERT INTO work(instance_id, execution_id, task_id, name, input) VALUES (?,?,?,?,?)",
            [(inst.id, inst.execution_id, a.task_id, a.name, a.input) for a in result.activities],
        )
        for timer in result.timers:
            fired = h.event(h.TIMER_FIRED, timer.fire_at, TimerId=timer.timer_id, FireAt=h.fmt_time(timer.fire_at))
            insert_message(db, inst.id, inst.execution_id, fired, timer.fire_at.timestamp(), timer_id=timer.timer_id)
        for timer_id in result.cancelled_timers:
            db.execute("DELETE FROM inbox WHERE instance_id=? AND timer_id=?", (inst.id, timer_id))
        for child in result.children:
            parent = ParentRef(inst.id, inst.execution_id, child.task_id, inst.name)
            name = self.resolve_orchestrator(child.name)
            if name is None:
                reason = f"The function '{child.name}' doesn't exist, is disabled, or is not an orchestrator function."
                _send_sub_failed(db, parent, reason)
                continue
            try:
                create_instance(
                    db,
                    child.instance_id,
                    name,
                    child.input_json,
                    parent=parent,
                    version=child.version or self.config.default_version,
                )
            except InstanceConflict as exc:
                _send_sub_failed(db, parent, str(exc))

    def _continue_as_new(self, db: Any, inst: Instance, result: StepResult) -> None:
        execution_id = uuid.uuid4().hex
        db.execute("DELETE FROM history WHERE instance_id=?", (inst.id,))
        db.execute("DELETE FROM inbox WHERE instance_id=? AND execution_id IS NOT NULL", (inst.id,))
        db.execute("DELETE FROM work WHERE instance_id=?", (inst.id,))
        input_json = result.continue_input_json or "null"
        parent = None
        if inst.parent_id:
            parent = {
                "Name": "",
                "TaskScheduleId": inst.parent_task_id,
                "OrchestrationInstance": {"InstanceId": inst.parent_id, "ExecutionId": inst.parent_execution_id},
            }
        started = h.execution_started(
            h.utcnow(), inst.id, execution_id, inst.name, input_json, parent=parent, version=inst.version
        )
        insert_message(db, inst.id, execution_id, started, now_ts())
        db.execute(
            "UPDATE instances SET status='ContinuedAsNew', input=?, output=NULL, custom_status=?, updated=?, "
            "execution_id=?, step_state=NULL WHERE id=?",
            (input_json, _json_or_none(result.custom_status), now_ts(), execution_id, inst.id),
        )
        self._cache.pop(inst.id, None)

    def _notify_parent(self, db: Any, inst: Instance, result: StepResult) -> None:
        if not inst.parent_id or inst.parent_task_id is None:
            return
        now = h.utcnow()
        if result.status == "Completed":
            ev = h.event(h.SUB_COMPLETED, now, TaskScheduledId=inst.parent_task_id, Result=json.dumps(result.output))
        else:
            ev = h.event(
                h.SUB_FAILED,
                now,
                TaskScheduledId=inst.parent_task_id,
                Reason=str(result.output),
                Details=json.dumps({"instanceId": inst.id}),
            )
        insert_message(db, inst.parent_id, inst.parent_execution_id, ev, now_ts())

    # entities --------------------------------------------------------------------------------------------
    async def _entity_task(self, entity_id: str) -> None:
        try:
            await self._entity_batch(entity_id)
        except Exception:
            log.exception("entity=%s batch crashed; its operations will run again", entity_id)
            await asyncio.sleep(0.5)
        finally:
            self._entity_tasks.pop(entity_id, None)
            self.wake()

    async def _entity_batch(self, entity_id: str) -> None:
        """Run the pending operations of one entity through the SDK's entity handler, then commit the new state,
        the answers to waiting orchestrations and the consumed operations in one transaction."""
        ops = self.entity_queries.batch(entity_id, ENTITY_BATCH)
        if not ops:
            return
        name, _, key = entity_id[1:].partition("@")
        exists, state = self.entity_queries.state(entity_id)
        info = self.entities.get(name)
        if info is None:
            message = f"No entity function named '{name}' is registered"
            results = [{"isError": True, "result": json.dumps(message)} for _ in ops]
            new_exists, new_state = exists, state
        else:
            context = {
                "self": {"name": name, "key": key},
                "state": state,
                "exists": exists,
                # the extension hands each input as a JSON string holding the input's JSON text
                "batch": [{"name": o.operation, "input": json.dumps(o.input)} for o in ops],
            }
            started = time.perf_counter()
            raw = await asyncio.get_running_loop().run_in_executor(
                self.replay_pool, info.callable, _Body(json.dumps(context))
            )
            out = json.loads(raw)
            results, new_exists, new_state = out["results"], bool(out.get("entityExists")), out.get("entityState")
            log.info(
                "entity=%s batch of %d operation(s) in %.1f ms",
                entity_id,
                len(ops),
                (time.perf_counter() - started) * 1000,
            )
        problem = payload_problem("the entity state", new_state)
        if problem is not None:
            results = [{"isError": True, "result": json.dumps(f"Entity '{entity_id}': {problem}")} for _ in ops]
            new_exists, new_state = exists, state
        with self.store.tx() as db:
            db.executemany("DELETE FROM entity_ops WHERE id=?", [(o.id,) for o in ops])
            if new_exists:
                db.execute(
                    "INSERT OR REPLACE INTO entities(id, name, key, state, updated) VALUES (?,?,?,?,?)",
                    (entity_id, name, key, new_state, now_ts()),
                )
            else:
                db.execute("DELETE FROM entities WHERE id=?", (entity_id,))
            for op, res in zip(ops, results, strict=False):
                if op.request_id is None or op.caller_id is None:
                    continue
                answer: dict[str, Any] = {"result": res.get("result")}
                if res.get("isError"):
                    answer["exceptionType"] = "System.Exception"
                ev = h.event(h.EVENT_RAISED, h.utcnow(), Name=op.request_id, Input=json.dumps(answer))
                insert_message(db, op.caller_id, op.caller_execution, ev, now_ts())

    # activities ------------------------------------------------------------------------------------------
    async def _activity_task(self, row: WorkRow) -> None:
        try:
            ev = await self._run_activity(row)
            self._complete_work(row, ev)
        except Exception:
            log.exception("fn=%s instance=%s activity bookkeeping failed; it will run again", row.name, row.instance_id)
            await asyncio.sleep(0.5)
        finally:
            self._work.pop(row.id, None)
            self.wake()

    async def _run_activity(self, row: WorkRow) -> h.Event:
        now = h.utcnow
        info = self.activities.get(row.name) or self.activities.get(self._lower_activities.get(row.name.lower(), ""))
        if info is None:
            reason = f"The function '{row.name}' doesn't exist, is disabled, or is not an activity function."
            log.error("instance=%s %s", row.instance_id, reason)
            return h.event(h.TASK_FAILED, now(), TaskScheduledId=row.task_id, Reason=reason, Details=None)
        try:
            value = decode_trigger("activityTrigger", row.input, "json")
            result = await self.invoker.call(info, value, instance_id=row.instance_id)
            encoded = encode_activity_result(result.value)
            problem = payload_problem("its result", encoded)
            if problem is not None:
                reason = f"Activity function '{row.name}' failed: {problem}"
                return h.event(h.TASK_FAILED, now(), TaskScheduledId=row.task_id, Reason=reason, Details=None)
            return h.event(h.TASK_COMPLETED, now(), TaskScheduledId=row.task_id, Result=encoded)
        except Exception as exc:
            reason = f"Activity function '{row.name}' failed: {type(exc).__name__}: {exc}"
            details = json.dumps(
                {
                    "type": type(exc).__name__,
                    "message": str(exc),
                    "stackTrace": "".join(traceback.format_exception(exc)),
                }
            )
            return h.event(h.TASK_FAILED, now(), TaskScheduledId=row.task_id, Reason=reason, Details=details)

    def _complete_work(self, row: WorkRow, ev: h.Event) -> None:
        with self.store.tx() as db:
            if db.execute("DELETE FROM work WHERE id=?", (row.id,)).rowcount == 0:
                return
            inst = db.execute("SELECT status, execution_id FROM instances WHERE id=?", (row.instance_id,)).fetchone()
            if inst is None or inst[0] not in _ACTIVE or inst[1] != row.execution_id:
                return
            insert_message(db, row.instance_id, row.execution_id, ev, now_ts())


def _is_retry_trigger(ev: h.Event, ledger: dict[str, Any]) -> bool:
    kind = ev.get("EventType")
    if kind in (h.TASK_FAILED, h.SUB_FAILED):
        entry = ledger.get(str(ev.get("TaskScheduledId")))
        return entry is not None and entry["kind"] != "retry_timer"
    if kind == h.TIMER_FIRED:
        entry = ledger.get(str(ev.get("TimerId")))
        return entry is not None and entry["kind"] == "retry_timer"
    return False


def _send_sub_failed(db: Any, parent: ParentRef, reason: str) -> None:
    ev = h.event(h.SUB_FAILED, h.utcnow(), TaskScheduledId=parent.task_id, Reason=reason, Details=None)
    insert_message(db, parent.instance_id, parent.execution_id, ev, now_ts())


def _failed(step: StepInput, message: str) -> StepResult:
    return apply_actions(step, {"isDone": True, "error": message, "actions": []})


def _missing_orchestrator(step: StepInput) -> StepResult:
    return _failed(step, f"The function '{step.name}' doesn't exist, is disabled, or is not an orchestrator function.")


def _oversized(result: StepResult) -> str | None:
    """The first payload of this episode over the limits of ``devhost.limits``, as a message, or None."""
    checks = [
        ("its output", json.dumps(result.output) if result.status == "Completed" else None),
        ("the input it continues as new with", result.continue_input_json),
        *((f"the input of activity '{a.name}'", a.input) for a in result.activities),
        *((f"the input of sub-orchestration '{c.name}'", c.input_json) for c in result.children),
    ]
    for what, text in checks:
        problem = payload_problem(what, text)
        if problem is not None:
            return problem
    return custom_status_problem(_json_or_none(result.custom_status))


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)
