"""Durable HTTP management API: status codes and payloads as the extension returns them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.support.devhost_proc import KEY, DevhostProcess


def test_unknown_instance_is_404_with_empty_body(durable_host: DevhostProcess) -> None:
    res = durable_host.mgmt("GET", "instances/nope")
    assert res.status == 404 and res.body == b""


def test_unknown_orchestrator_is_400_with_exception_message(durable_host: DevhostProcess) -> None:
    res = durable_host.mgmt("POST", "orchestrators/not_there")
    assert res.status == 400
    assert "The function 'not_there' doesn't exist" in res.json()["ExceptionMessage"]


def test_management_requires_the_key(durable_host: DevhostProcess) -> None:
    assert durable_host.request("GET", "/runtime/webhooks/durabletask/instances").status == 401
    wrong = durable_host.request("GET", "/runtime/webhooks/durabletask/instances?code=wrong")
    assert wrong.status == 401
    header = durable_host.request("GET", "/runtime/webhooks/durabletask/instances", headers={"x-functions-key": KEY})
    assert header.status == 200


def test_running_instance_is_202_with_location_and_conflicts_on_restart_of_same_id(
    durable_host: DevhostProcess,
) -> None:
    iid = durable_host.start_orchestration("approval", instance_id="mgmt-running")
    durable_host.wait_status(iid, ("Running",))
    res = durable_host.mgmt("GET", f"instances/{iid}")
    assert res.status == 202 and "Location" in res.headers and res.headers["Retry-After"] == "5"
    again = durable_host.mgmt("POST", f"orchestrators/approval/{iid}")
    assert again.status == 409
    assert durable_host.mgmt("POST", f"instances/{iid}/terminate?reason=stop").status == 202
    status = durable_host.wait_status(iid)
    assert status["runtimeStatus"] == "Terminated" and status["output"] == "stop"
    assert durable_host.mgmt("POST", f"instances/{iid}/terminate").status == 410
    assert durable_host.mgmt("POST", f"instances/{iid}/raiseEvent/Approve", {}).status == 410
    replaced = durable_host.start_orchestration("chain", 1, instance_id=iid)
    assert durable_host.wait_status(replaced)["output"] == 1


def test_raise_event_status_codes(durable_host: DevhostProcess) -> None:
    assert durable_host.mgmt("POST", "instances/missing/raiseEvent/X", {}).status == 404
    iid = durable_host.start_orchestration("approval")
    durable_host.wait_status(iid, ("Running",))
    bad = durable_host.mgmt(
        "POST", f"instances/{iid}/raiseEvent/Approve", raw=b"x", headers={"Content-Type": "text/plain"}
    )
    assert bad.status == 400
    assert durable_host.mgmt("POST", f"instances/{iid}/raiseEvent/Approve", "yes").status == 202
    assert durable_host.wait_status(iid)["output"] == {"approved": "yes"}


def test_suspend_buffers_events_until_resume(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("approval")
    durable_host.wait_status(iid, ("Running",))
    assert durable_host.mgmt("POST", f"instances/{iid}/suspend?reason=hold").status == 202
    assert durable_host.wait_status(iid, ("Suspended",))["runtimeStatus"] == "Suspended"
    assert durable_host.mgmt("POST", f"instances/{iid}/raiseEvent/Approve", 1).status == 202
    assert durable_host.mgmt("GET", f"instances/{iid}").json()["runtimeStatus"] == "Suspended"
    assert durable_host.mgmt("POST", f"instances/{iid}/resume?reason=go").status == 202
    assert durable_host.wait_status(iid)["output"] == {"approved": 1}
    assert durable_host.mgmt("POST", "instances/missing/suspend").status == 404


def test_history_projection(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("chain", 2)
    durable_host.wait_status(iid)
    doc = durable_host.mgmt("GET", f"instances/{iid}?showHistory=true&showHistoryOutput=true").json()
    kinds = [e["EventType"] for e in doc["historyEvents"]]
    assert kinds == ["ExecutionStarted", "TaskCompleted", "TaskCompleted", "ExecutionCompleted"]
    first = doc["historyEvents"][1]
    assert first["FunctionName"] == "add_one" and first["Result"] == "1" and "ScheduledTime" in first
    assert "EventId" not in first and "TaskScheduledId" not in first
    assert doc["historyEvents"][0]["FunctionName"] == "chain"
    plain = durable_host.mgmt("GET", f"instances/{iid}?showHistory=true&showInput=false").json()
    assert "Result" not in plain["historyEvents"][1] and plain["input"] is None


def test_list_filters_paging_and_purge(durable_host: DevhostProcess) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ids = [durable_host.start_orchestration("chain", 1, instance_id=f"page-{i}") for i in range(3)]
    for iid in ids:
        durable_host.wait_status(iid)
    first = durable_host.mgmt("GET", "instances?instanceIdPrefix=page-&top=2&runtimeStatus=Completed")
    assert first.status == 200 and [d["instanceId"] for d in first.json()] == ["page-0", "page-1"]
    token = first.headers["x-ms-continuation-token"]
    second = durable_host.mgmt(
        "GET", "instances?instanceIdPrefix=page-&top=2", headers={"x-ms-continuation-token": token}
    )
    assert [d["instanceId"] for d in second.json()] == ["page-2"]
    assert "x-ms-continuation-token" not in second.headers
    assert (
        durable_host.mgmt(
            "GET", f"instances?createdTimeFrom={since}&runtimeStatus=Failed&instanceIdPrefix=page-"
        ).json()
        == []
    )
    assert durable_host.mgmt("DELETE", "instances/page-0").json() == {"instancesDeleted": 1}
    assert durable_host.mgmt("DELETE", "instances/page-0").status == 404
    assert durable_host.mgmt("DELETE", "instances/?runtimeStatus=Completed").status == 400
    purged = durable_host.mgmt("DELETE", f"instances/?createdTimeFrom={since}&instanceIdPrefix=page-")
    assert purged.json() == {"instancesDeleted": 2}
    assert durable_host.mgmt("DELETE", f"instances/?createdTimeFrom={since}&instanceIdPrefix=page-").status == 404


def test_start_with_timeout_waits_for_the_output(durable_host: DevhostProcess) -> None:
    res = durable_host.mgmt("POST", "orchestrators/chain?timeout=20&pollingInterval=1", json.dumps(3))
    assert res.status == 200 and res.json() == 6
    failed = durable_host.mgmt("POST", "orchestrators/failing?timeout=20")
    assert failed.status == 500 and failed.json()["runtimeStatus"] == "Failed"
    pending = durable_host.mgmt("POST", "orchestrators/approval?timeout=0.2")
    assert pending.status == 202 and "statusQueryGetUri" in pending.json()


def test_restart_with_new_id_reruns_with_same_input(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("chain", 2)
    durable_host.wait_status(iid)
    res = durable_host.mgmt("POST", f"instances/{iid}/restart?restartWithNewInstanceId=true")
    assert res.status == 202
    new_id = res.json()
    assert new_id != iid and durable_host.wait_status(new_id)["output"] == 3
    same = durable_host.mgmt("POST", f"instances/{iid}/restart?restartWithNewInstanceId=false")
    assert same.status == 202 and same.json() == iid
    assert durable_host.wait_status(iid)["output"] == 3
    assert durable_host.mgmt("POST", "instances/missing/restart").status == 404


def test_bad_start_requests_are_400(durable_host: DevhostProcess) -> None:
    assert durable_host.mgmt("POST", "orchestrators/chain?timeout=soon").status == 400
    bad = durable_host.mgmt("POST", "orchestrators/chain", raw=b"{nope")
    assert bad.status == 400 and "not valid JSON" in bad.json()["ExceptionMessage"]
    assert durable_host.mgmt("GET", "instances?createdTimeFrom=yesterday").status == 400
