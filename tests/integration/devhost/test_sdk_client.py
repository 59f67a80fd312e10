"""The SDK's own DurableOrchestrationClient against devhost's rpc base and management URLs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from tests.support.devhost_proc import KEY, DevhostProcess


def _client(host: DevhostProcess) -> df.DurableOrchestrationClient:
    """The client built from the binding the host hands its functions (rpc base with this start's token)."""
    binding = host.request("GET", "/api/client-binding", headers={"x-functions-key": KEY})
    assert binding.status == 200, binding.body
    return df.DurableOrchestrationClient(binding.body.decode())


async def _wait(client: df.DurableOrchestrationClient, iid: str) -> Any:
    for _ in range(400):
        status = await client.get_status(iid)
        if status.runtime_status and status.runtime_status.value in ("Completed", "Failed", "Terminated"):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"{iid} did not finish")


async def _scenario(host: DevhostProcess) -> None:
    client = _client(host)
    iid = await client.start_new("chain", client_input=3)
    status = await _wait(client, iid)
    assert status.output == 6 and status.input_ == "3"
    missing = await client.get_status("does-not-exist")
    assert not missing

    waiting = await client.start_new("approval", instance_id="sdk-approval")
    for _ in range(200):
        if (await client.get_status(waiting)).runtime_status == df.OrchestrationRuntimeStatus.Running:
            break
        await asyncio.sleep(0.05)
    await client.raise_event(waiting, "Approve", {"ok": True})
    done = await _wait(client, waiting)
    # known SDK double encoding (azure-functions-durable-python#295): the event arrives as JSON text
    assert done.output == {"approved": json.dumps({"ok": True})}

    victim = await client.start_new("approval")
    await client.terminate(victim, "enough")
    assert (await _wait(client, victim)).runtime_status == df.OrchestrationRuntimeStatus.Terminated

    listed = await client.get_status_by(runtime_status=[df.OrchestrationRuntimeStatus.Terminated])
    assert victim in [s.instance_id for s in listed]
    with_history = await client.get_status(iid, show_history=True, show_history_output=True)
    assert with_history.historyEvents[0]["EventType"] == "ExecutionStarted"

    restarted = await client.restart(iid)
    assert restarted != iid and (await _wait(client, restarted)).output == 6
    purged = await client.purge_instance_history(iid)
    assert purged.instances_deleted == 1
    assert not await client.get_status(iid)

    req = func.HttpRequest("GET", f"{host.base}/api/x", body=b"")
    response = client.create_check_status_response(req, restarted)
    assert response.status_code == 202
    urls = json.loads(response.get_body())
    assert host.request("GET", urls["statusQueryGetUri"]).json()["output"] == 6


def test_sdk_client_round_trip(durable_host: DevhostProcess) -> None:
    asyncio.run(_scenario(durable_host))


def test_client_binding_inside_the_app(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("chain", 1)
    durable_host.wait_status(iid)
    res = durable_host.request("GET", f"/api/client-ops/{iid}")
    assert res.status == 200 and res.body == b"Completed"
    assert durable_host.request("GET", "/api/client-ops/none-such").status == 404
