"""Engine commits re-check the instance inside the transaction (spec pitfall 17)."""

from __future__ import annotations

import importlib.util
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devhost import history as h
from devhost import ops
from devhost.engine import Engine
from devhost.invoke import Invoker
from devhost.loader import FunctionInfo, HostConfig, index_functions
from devhost.replay import StepInput, StepState, run_step
from devhost.store import Store

APP = Path(__file__).resolve().parents[2] / "fixtures" / "apps" / "durable_app" / "function_app.py"


def _functions() -> dict[str, FunctionInfo]:
    spec = importlib.util.spec_from_file_location("devhost_fixture_durable_app_engine", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return index_functions(module.app)


def _engine(tmp_path: Path) -> tuple[Engine, Store, ThreadPoolExecutor]:
    functions = _functions()
    store = Store(tmp_path / "durable.db")
    pool = ThreadPoolExecutor(max_workers=1)
    invoker = Invoker(functions, tmp_path, pool, lambda: "{}")
    return Engine(store, functions, invoker, HostConfig()), store, pool


def test_terminate_during_an_episode_wins_over_its_commit(tmp_path: Path) -> None:
    engine, store, pool = _engine(tmp_path)
    try:
        iid = ops.start(store, "chain", None, json.dumps(json.dumps(2)))
        inst = store.get(iid)
        assert inst is not None
        messages = store.messages(iid, 1e12)
        now = h.utcnow()
        step = StepInput(
            inst.name,
            iid,
            inst.execution_id,
            None,
            inst.input,
            [],
            [h.event(h.ORCHESTRATOR_STARTED, now), *[m.event for m in messages]],
            StepState(),
            now,
        )
        result = run_step(engine.orchestrators["chain"].callable, step)
        assert [a.name for a in result.activities] == ["add_one"]
        assert ops.terminate(store, iid, "stop now")  # arrives while the SDK was running
        committed = engine._commit_episode(inst, [m.id for m in messages], result)
        assert committed is False
        after = store.get(iid)
        assert after is not None and after.status == "Terminated" and json.loads(after.output or "") == "stop now"
        assert store.pending_work(set(), 10) == []
        kinds = [e["EventType"] for e in store.history(iid)]
        assert kinds == [h.EXECUTION_TERMINATED, h.EXECUTION_COMPLETED]
    finally:
        engine.replay_pool.shutdown()
        pool.shutdown()
        store.close()


def test_activity_result_for_a_purged_instance_is_dropped(tmp_path: Path) -> None:
    engine, store, pool = _engine(tmp_path)
    try:
        iid = ops.start(store, "chain", None, json.dumps(json.dumps(1)))
        with store.tx() as db:
            db.execute(
                "INSERT INTO work(instance_id, execution_id, task_id, name, input) VALUES (?,?,?,?,?)",
                (iid, "old-execution", 0, "add_one", "0"),
            )
        row = store.pending_work(set(), 10)[0]
        engine._complete_work(row, h.event(h.TASK_COMPLETED, h.utcnow(), TaskScheduledId=0, Result="1"))
        assert store.pending_work(set(), 10) == []
        events = [m.event["EventType"] for m in store.messages(iid, 1e12)]
        assert events == [h.EXECUTION_STARTED]  # the stale completion did not reach the inbox
    finally:
        engine.replay_pool.shutdown()
        pool.shutdown()
        store.close()
