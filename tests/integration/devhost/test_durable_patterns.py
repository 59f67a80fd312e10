"""Durable patterns end to end through a real devhost subprocess and its Durable HTTP API."""

from __future__ import annotations

import json

from tests.support.devhost_proc import DevhostProcess


def test_chain_started_over_http_trigger_completes(durable_host: DevhostProcess) -> None:
    res = durable_host.request("POST", "/api/start/chain", 4)
    assert res.status == 202
    payload = res.json()
    assert payload["statusQueryGetUri"].startswith(durable_host.base.replace("127.0.0.1", "127.0.0.1"))
    assert res.headers["Location"] == payload["statusQueryGetUri"]
    status = durable_host.wait_status(payload["id"])
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == 1 + 2 + 3 + 4
    assert status["input"] == "4"  # the SDK double-encodes start_new input, as on Azure
    polled = durable_host.request("GET", payload["statusQueryGetUri"])
    assert polled.status == 200 and polled.json()["output"] == 10


def test_fan_out_sums_all_results(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("fan_out", 100)
    assert durable_host.wait_status(iid)["output"] == sum(i * i for i in range(100))


def test_retry_succeeds_on_third_attempt(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("retrying", {"key": "r1", "fail_times": 2})
    status = durable_host.wait_status(iid)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == "ok after 3"
    assert durable_host.count("flaky-r1") == 3


def test_retry_gives_up_after_max_attempts_with_the_activity_message(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("retry_gives_up")
    status = durable_host.wait_status(iid)
    assert status["runtimeStatus"] == "Completed", status
    assert "Activity function 'flaky' failed: RuntimeError: attempt 2 failed" in status["output"]
    assert durable_host.count(f"flaky-{iid}") == 2


def test_durable_timer_delays_the_next_activity(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("with_timer", 1)
    status = durable_host.wait_status(iid)
    assert status["runtimeStatus"] == "Completed", status
    history = durable_host.mgmt("GET", f"instances/{iid}?showHistory=true").json()["historyEvents"]
    created = next(e for e in history if e["EventType"] == "TimerCreated")
    fired = next(e for e in history if e["EventType"] == "TimerFired")
    assert fired["FireAt"] == created["FireAt"]


def test_external_event_wins_over_timeout_and_sets_custom_status(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("approval")
    running = durable_host.wait_status(iid, ("Running",))
    durable_host.wait_for(
        lambda: durable_host.mgmt("GET", f"instances/{iid}").json()["customStatus"] == {"stage": "waiting"},
        what="custom status",
    )
    assert running["runtimeStatus"] == "Running"
    res = durable_host.mgmt("POST", f"instances/{iid}/raiseEvent/Approve", {"by": "ana"})
    assert res.status == 202
    status = durable_host.wait_status(iid)
    assert status["output"] == {"approved": {"by": "ana"}}


def test_sub_orchestrations_auto_and_explicit_ids(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("parent")
    status = durable_host.wait_status(iid)
    assert status["output"] == [3, 6], status
    child = durable_host.mgmt("GET", f"instances/{iid}-child").json()
    assert child["runtimeStatus"] == "Completed" and child["output"] == 6


def test_continue_as_new_loops_until_done(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("counter", 0)
    status = durable_host.wait_status(iid)
    assert status["runtimeStatus"] == "Completed" and status["output"] == 3
    assert status["input"] == "2"


def test_activity_failure_fails_the_orchestration_with_its_message(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("failing")
    status = durable_host.wait_status(iid)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith("Orchestrator function 'failing' failed: ")
    assert "Activity function 'boom' failed: ValueError: kaput" in status["output"]
    res = durable_host.mgmt("GET", f"instances/{iid}?returnInternalServerErrorOnFailure=true")
    assert res.status == 500


def test_non_determinism_is_detected(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("nondeterministic")
    status = durable_host.wait_status(iid)
    assert status["runtimeStatus"] == "Failed"
    assert "Non-deterministic workflow detected" in status["output"]


def test_sub_orchestration_with_retry_gets_a_fresh_child(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("sub_retry")
    status = durable_host.wait_status(iid)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == "ok after 2"
    children = durable_host.mgmt("GET", "instances?runtimeStatus=Failed,Completed").json()
    mine = {
        c["instanceId"]: c["runtimeStatus"]
        for c in children
        if c["name"] == "flaky_child" and c["input"] and iid in json.dumps(c["input"])
    }
    assert sorted(mine.values()) == ["Completed", "Failed"]
