"""stop_all / status_all and the endpoint files, with real processes (no scoring server needed)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from backends.local.endpoints import EndpointRequestError, LocalEndpoints, status_all, stop_all
from backends.local.registry import MlflowRegistry
from backends.ports import ModelVersion


def fake_server(home: Path, name: str) -> subprocess.Popen[bytes]:
    """A process whose command line looks like an endpoint server's, recorded as endpoint ``name``."""
    folder = home / "endpoints" / name
    folder.mkdir(parents=True)
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "scoring.server", str(folder)], start_new_session=True
    )
    (folder / "server.pid").write_text(str(process.pid))
    return process


def test_stop_all_stops_recorded_servers(tmp_path: Path) -> None:
    qa, prod = fake_server(tmp_path, "qa"), fake_server(tmp_path, "production")
    try:
        assert {name: entry["running"] for name, entry in status_all(tmp_path).items()} == {
            "qa": True,
            "production": True,
        }
        assert stop_all(tmp_path) == ["production", "qa"]
        for process in (qa, prod):
            process.wait(timeout=5)  # stop_all may have reaped it already
            assert not Path(f"/proc/{process.pid}").exists()
        assert status_all(tmp_path) == {}
        assert stop_all(tmp_path) == []
    finally:
        for process in (qa, prod):
            process.kill()
            process.wait()


def test_stop_all_ignores_a_reused_pid(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = tmp_path / "endpoints" / "qa"
        folder.mkdir(parents=True)
        (folder / "server.pid").write_text(str(other.pid))
        assert status_all(tmp_path)["qa"]["running"] is False
        assert stop_all(tmp_path) == []
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_keys_and_validation(tmp_path: Path) -> None:
    endpoints = LocalEndpoints(tmp_path / "home", MlflowRegistry(tmp_path / "home"), {"qa": 1, "production": 2})
    keys = endpoints.keys("qa")
    assert set(keys) == {"key", "admin_key"} and keys["key"] != keys["admin_key"] and len(keys["key"]) >= 32
    assert endpoints.keys("qa") == keys
    path = tmp_path / "home" / "endpoints" / "qa" / "keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == keys
    with pytest.raises(ValueError, match="unknown endpoint 'staging'"):
        endpoints.state("staging")
    with pytest.raises(EndpointRequestError, match="unknown slot 'red'"):
        endpoints.deploy("qa", "red", ModelVersion("m", "1", "qa"))
    with pytest.raises(EndpointRequestError, match="integer 0-100"):
        endpoints.set_traffic("qa", {"blue": 150})


def test_a_models_own_endpoints_keep_the_ports_they_took(tmp_path: Path) -> None:
    home = tmp_path / "home"
    endpoints = LocalEndpoints(home, MlflowRegistry(home), {"qa": 1, "production": 2})
    qa, production = endpoints.port("breast-cancer-qa"), endpoints.port("breast-cancer-production")
    assert len({qa, production, 1, 2}) == 4
    again = LocalEndpoints(home, MlflowRegistry(home), {"qa": 1, "production": 2})
    assert (again.port("breast-cancer-qa"), again.port("breast-cancer-production")) == (qa, production)
    assert stat.S_IMODE((home / "endpoint_ports.json").stat().st_mode) == 0o600
    assert again.url("breast-cancer-qa") == f"http://127.0.0.1:{qa}"
    for bad in ("staging", "Bad_Name-qa", "-qa", "x-qa"):
        with pytest.raises(ValueError, match="unknown endpoint"):
            again.port(bad)
