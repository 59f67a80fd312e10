"""LocalEndpoints against the real scoring server (python -m scoring.server) on free ports."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from backends.errors import DeploymentFailed
from backends.local.endpoints import LocalEndpoints, status_all, stop_all
from backends.local.registry import MlflowRegistry
from backends.ports import DeploymentRequest, ModelVersion, OperationState
from backends.storage_connection import StorageConnection
from tests.support.azurite import Azurite, free_port
from tests.support.processes import processes_mentioning
from tests.unit.backends import contracts

ROWS = [[59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87], [48, 1, 21.6, 87, 183, 103.2, 70, 3, 3.8918, 69]]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("endpoints") / "home"
    yield home
    stop_all(home)


@pytest.fixture(scope="module")
def registry(home: Path) -> MlflowRegistry:
    return MlflowRegistry(home)


@pytest.fixture(scope="module")
def versions(registry: MlflowRegistry, ridge_model: Path) -> list[ModelVersion]:
    return [registry.register("ep", str(ridge_model), {"job_id": f"j{i}"}) for i in range(2)]


@pytest.fixture(scope="module")
def endpoints(home: Path, registry: MlflowRegistry, azurite: Azurite) -> LocalEndpoints:
    return LocalEndpoints(
        home,
        registry,
        {"qa": free_port(), "production": free_port()},
        logs_connection=StorageConnection("logs", azurite.connection_string),
        logs_container="scoring-logs",
    )


def port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) == 0


def score(home: Path, endpoint: str) -> dict[str, object]:
    entry = json.loads((home / "endpoints.json").read_text())[endpoint]
    response = requests.post(
        entry["url"] + "/score", json={"data": ROWS}, timeout=30, headers={"Authorization": f"Bearer {entry['key']}"}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_blue_green_and_scoring(endpoints: LocalEndpoints, versions: list[ModelVersion], home: Path) -> None:
    one, two = versions
    contracts.endpoints_blue_green(endpoints, "qa", one, two)
    answer = score(home, "qa")
    assert answer["model_version"] == two.version
    assert isinstance(answer["predictions"], list) and len(answer["predictions"]) == 2
    assert stat.S_IMODE((home / "endpoints.json").stat().st_mode) == 0o600
    assert (home / "endpoints" / "qa" / "models" / one.version / "MLmodel").exists()


def test_state_survives_a_server_restart(endpoints: LocalEndpoints, versions: list[ModelVersion], home: Path) -> None:
    one, _ = versions
    before = endpoints.deploy("production", "blue", one)
    assert before.serving_version == one.version
    assert status_all(home)["production"]["running"]
    assert "production" in stop_all(home)
    assert not port_open(before.url)
    after = endpoints.state("production")  # starts the server again, which restores its deployments
    assert after == before
    assert score(home, "production")["model_version"] == one.version


def test_supervise_restarts_only_endpoints_that_hold_deployments(
    endpoints: LocalEndpoints, versions: list[ModelVersion], home: Path
) -> None:
    one, _ = versions
    endpoints.deploy("production", "blue", one)
    stop_all(home)
    (home / "endpoints" / "qa" / "state.json").unlink(missing_ok=True)  # qa holds nothing
    assert endpoints.supervise() == ["production"]
    assert score(home, "production")["model_version"] == one.version
    assert not port_open(endpoints.url("qa"))
    assert endpoints.supervise() == []  # already answering


def test_a_server_that_cannot_start_is_not_left_behind(registry: MlflowRegistry, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        home = tmp_path / "home"
        endpoints = LocalEndpoints(home, registry, {"qa": port, "production": free_port()}, ready_timeout_s=60)
        pid_file = home / "endpoints" / "qa" / "server.pid"
        pid_file.parent.mkdir(parents=True)
        pid_file.write_text("999999")  # a server recorded before (gone): its record must survive a failed start
        with pytest.raises(DeploymentFailed, match="exited"):
            endpoints.state("qa")
    assert pid_file.read_text() == "999999"
    assert processes_mentioning(str(home)) == []


def test_a_model_the_server_cannot_load_fails_the_deployment(
    endpoints: LocalEndpoints, registry: MlflowRegistry, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: {}\n")
    version = registry.register("ep", str(broken), {"job_id": "broken"})
    with pytest.raises(DeploymentFailed):
        endpoints.deploy("qa", "blue", version)


def test_a_model_the_server_cannot_load_ends_the_operation_failed_with_its_reason(
    endpoints: LocalEndpoints, registry: MlflowRegistry, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-op"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: {}\n")
    version = registry.register("ep", str(broken), {"job_id": "broken-op"})
    status = endpoints.begin_deploy(DeploymentRequest("qa", "green", version.name, version.version), version)
    assert status.state is OperationState.FAILED and status.message
    assert endpoints.operation_status(status.operation).state is OperationState.FAILED
    assert endpoints.state("qa").deployments.get("green") != version.version
