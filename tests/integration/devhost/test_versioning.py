"""Orchestration versioning from host.json: defaultVersion applied (and seen as ``context.version``), a client's
version kept, newer instances rejected (left waiting) or failed by versionFailureStrategy."""

from __future__ import annotations

import json
import time
from pathlib import Path

from devhost.loader import HostConfig
from devhost.versioning import mismatch, older_or_equal
from tests.support.devhost_proc import make_devhost


def test_match_rules() -> None:
    assert older_or_equal("1.10", "2.0") and older_or_equal("2.0", "2.0") and not older_or_equal("10.0", "9.1")
    assert older_or_equal("", "1.0")
    strict = HostConfig(default_version="2.0", version_match="Strict")
    assert mismatch("2.0", strict) is None and "Strict" in (mismatch("1.0", strict) or "")
    assert mismatch("9.0", HostConfig(default_version="2.0", version_match="None")) is None
    assert mismatch("9.0", HostConfig()) is None  # no defaultVersion: nothing is compared


def test_versions_over_http(tmp_path: Path) -> None:
    host = make_devhost("versioned_app", tmp_path)
    host.start()
    try:
        iid = host.start_orchestration("versioned")
        doc = host.wait_status(iid)
        assert doc["output"] == {"version": "2.0", "child": "2.0", "pinned": "1.5"}, doc
        older = host.mgmt("POST", "orchestrators/versioned?version=1.0")
        assert host.wait_status(older.json()["id"])["output"]["version"] == "1.0"
        newer = host.mgmt("POST", "orchestrators/versioned?version=3.0").json()["id"]
        host.wait_for(lambda: "newer than the worker version '2.0'" in host.output(), what="the rejection")
        time.sleep(0.5)
        assert host.mgmt("GET", f"instances/{newer}").json()["runtimeStatus"] == "Pending"
    finally:
        assert host.stop() == 0
    config = json.loads((host.root / "host.json").read_text())
    config["extensions"]["durableTask"]["versionFailureStrategy"] = "Fail"
    (host.root / "host.json").write_text(json.dumps(config))
    host.start()
    try:
        doc = host.wait_status(newer)
        assert doc["runtimeStatus"] == "Failed" and "newer than the worker version" in json.dumps(doc["output"])
    finally:
        host.stop()
