"""Durable entities through the SDK's own entity handler: client signals and reads, calls and signals from
orchestrations (answers and errors), the management API, state kept across a restart."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.devhost_proc import make_devhost


def test_entities_end_to_end(tmp_path: Path) -> None:
    host = make_devhost("entity_app", tmp_path)
    host.start()
    try:
        for n in (1, 2, 3):
            assert host.request("POST", "/api/signal/a", raw=str(n).encode()).status == 202
        host.wait_for(lambda: host.request("GET", "/api/read/a").body == b"6", what="the signalled state")
        assert host.request("GET", "/api/read/nobody").status == 404

        iid = host.start_orchestration("use_counter", "b")
        doc = host.wait_status(iid)
        assert doc["runtimeStatus"] == "Completed", doc
        assert doc["output"]["value"] == 5 and doc["output"]["after"] == 6
        assert "the counter refuses" in doc["output"]["error"]

        mgmt = host.mgmt("GET", "entities/Counter/b")
        assert mgmt.status == 200 and mgmt.json() == 6
        assert host.mgmt("POST", "entities/counter/b?op=add", raw=b"10").status == 202
        host.wait_for(lambda: host.mgmt("GET", "entities/Counter/b").json() == 16, what="the mgmt signal")
        missing = host.mgmt("POST", "entities/Nothing/b?op=add", raw=b"1")
        assert missing.status == 404 and "No entity function named" in missing.json()["ExceptionMessage"]
        listed = host.mgmt("GET", "entities/Counter?fetchState=true").json()
        assert sorted((e["entityId"]["key"], e["state"]) for e in listed) == [("a", 6), ("b", 16)]
        deep = host.mgmt("POST", "entities/Counter/b?op=add", raw=b"[" * 5000 + b"]" * 5000)
        assert deep.status == 400
    finally:
        assert host.stop() == 0
    host.start()
    try:
        assert host.request("GET", "/api/read/a").body == b"6"
        assert json.loads(host.mgmt("GET", "entities/Counter/b").body) == 16
    finally:
        host.stop()
