"""kill -9 at awkward moments, then restart: everything completes and saved activity results are not re-run."""

from __future__ import annotations

import json
import random

from tests.support.devhost_proc import DevhostProcess


def test_kill_while_activities_run(fresh_durable_host: DevhostProcess) -> None:
    host = fresh_durable_host
    host.start()
    iid = host.start_orchestration("slow_fan_out", {"n": 3, "sleep": 1.5})
    host.wait_for(lambda: all(host.count(f"slow_square-{i}") == 1 for i in range(3)), what="3 activities running")
    host.kill9()
    assert host.count("first") == 1
    host.start()
    status = host.wait_status(iid)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"first": 1, "sum": 0 + 1 + 4}
    assert host.count("first") == 1  # completed before the kill: never re-run
    assert [host.count(f"slow_square-{i}") for i in range(3)] == [2, 2, 2]  # in flight: re-run once


def test_kill_while_timer_pending(fresh_durable_host: DevhostProcess) -> None:
    host = fresh_durable_host
    host.start()
    iid = host.start_orchestration("with_timer", 2)
    host.wait_for(lambda: host.count("before_timer") == 1, what="activity before the timer")
    host.wait_for(
        lambda: (
            "TimerCreated"
            in [e["EventType"] for e in host.mgmt("GET", f"instances/{iid}?showHistory=true").json()["historyEvents"]]
        ),
        what="timer created",
    )
    host.kill9()
    host.start()
    status = host.wait_status(iid)
    assert status["runtimeStatus"] == "Completed" and status["output"] == [1, 1]
    assert host.count("before_timer") == 1 and host.count("after_timer") == 1


def test_sigterm_stops_cleanly_and_state_survives(fresh_durable_host: DevhostProcess) -> None:
    host = fresh_durable_host
    host.start()
    iid = host.start_orchestration("approval")
    host.wait_status(iid, ("Running",))
    assert host.stop() == 0
    assert "devhost: stopped" in host.output()
    host.start()
    assert host.mgmt("POST", f"instances/{iid}/raiseEvent/Approve", "later").status == 202
    assert host.wait_status(iid)["output"] == {"approved": "later"}


def test_random_kills_during_a_chain_lose_nothing(fresh_durable_host: DevhostProcess) -> None:
    host = fresh_durable_host
    rng = random.Random(20261124)
    n = 60
    host.start()
    iid = host.start_orchestration("marked_chain", n)

    def progress() -> int:
        return sum(1 for i in range(n) if host.count(f"mc-{i}"))

    for _ in range(3):
        target = min(progress() + rng.randint(3, 10), n - 5)
        host.wait_for(lambda t=target: progress() >= t, what=f"chain progress to {target}")
        host.kill9()
        host.start()
    status = host.wait_status(iid, timeout=60)
    assert status["runtimeStatus"] == "Completed" and status["output"] == n
    history = host.mgmt("GET", f"instances/{iid}?showHistory=true").json()["historyEvents"]
    completed = [e["Input"] for e in history if e["EventType"] == "TaskCompleted"]
    assert completed == [json.dumps(f"mc-{i}") for i in range(n)]  # each scheduled task completed exactly once
    runs = [host.count(f"mc-{i}") for i in range(n)]
    assert all(1 <= r <= 2 for r in runs) and sum(runs) <= n + 3  # at most the in-flight one re-runs per kill
