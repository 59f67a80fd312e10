"""Many models' endpoints in one server per environment, each with the contract of an endpoint of its own: its URL,
keys, deployments, metrics and prediction log; an endpoint added while another serves interrupts nothing; a killed
or stopped server brings every endpoint back."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from backends.local.endpoints import LocalEndpoints, status_all, stop_all
from backends.local.registry import MlflowRegistry
from backends.ports import ModelVersion
from backends.storage_connection import StorageConnection
from tests.support.azurite import ROOT, Azurite, free_port
from tests.support.scoring import children, endpoint_server_pid

ROW = [59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]
MODELS = ("alpha-production", "beta-production")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    stop_all(home)


@pytest.fixture
def endpoints(home: Path, azurite: Azurite) -> LocalEndpoints:
    container = f"hosting-{uuid.uuid4().hex[:12]}"
    return LocalEndpoints(
        home,
        MlflowRegistry(home),
        {"qa": free_port(), "production": free_port()},
        logs_connection=StorageConnection("logs", azurite.connection_string),
        logs_container=container,
    )


@pytest.fixture
def versions(endpoints: LocalEndpoints, ridge_model: Path) -> list[ModelVersion]:
    return [endpoints.registry.register("hosted", str(ridge_model), {"job_id": f"j{i}"}) for i in range(3)]


def post(url: str, key: str, path: str = "/score") -> httpx.Response:
    return httpx.post(url + path, json={"data": [ROW]}, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def serving(endpoints: LocalEndpoints, endpoint: str) -> str:
    """The version ``endpoint`` answers with, waiting (with a deadline) for it to answer at all."""
    state, deadline = endpoints.state(endpoint), time.monotonic() + 30
    while True:
        try:
            response = post(state.url, state.key)
            if response.status_code == 200:
                return str(response.json()["model_version"])
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{endpoint} does not answer"
        time.sleep(0.05)


def deploy_three(endpoints: LocalEndpoints, versions: list[ModelVersion]) -> dict[str, str]:
    wanted = dict(zip(("production", *MODELS), (v.version for v in versions), strict=True))
    for endpoint, version in zip(wanted, versions, strict=True):
        endpoints.deploy(endpoint, "blue", version)
    return wanted


def test_an_environments_endpoints_share_one_server_each_with_its_own_contract(
    endpoints: LocalEndpoints, versions: list[ModelVersion], home: Path, azurite: Azurite
) -> None:
    wanted = deploy_three(endpoints, versions)
    assert set(status_all(home)) == {"production"}  # one supervisor for the environment
    supervisor_pid = int(status_all(home)["production"]["pid"])
    assert len(children(supervisor_pid)) == 1  # running one server process
    states = {endpoint: endpoints.state(endpoint) for endpoint in wanted}
    assert len({s.url for s in states.values()}) == 3 and len({s.key for s in states.values()}) == 3
    for endpoint, state in states.items():
        assert state.deployments == {"blue": wanted[endpoint]} and state.traffic == {"blue": 100}
        answer = post(state.url, state.key)
        assert answer.status_code == 200 and answer.json()["model_version"] == wanted[endpoint]
    alpha, beta = states["alpha-production"], states["beta-production"]
    assert post(beta.url, alpha.key).status_code == 401  # one endpoint's key opens no other
    for _ in range(4):
        assert post(beta.url, beta.key).status_code == 200
    metrics = {
        endpoint: httpx.get(state.url + "/metrics", headers={"Authorization": f"Bearer {state.key}"}).text
        for endpoint, state in states.items()
    }
    for endpoint, answered in (("alpha-production", 1), ("beta-production", 5)):
        counter = f'scoring_requests_total{{version="{wanted[endpoint]}",status="200"}} {answered}'
        assert counter in metrics[endpoint], metrics[endpoint]
    assert 'status="401"' in metrics["beta-production"] and 'status="401"' not in metrics["alpha-production"]

    stop_all(home)  # flushes every endpoint's prediction log
    box = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        endpoints.logs_container
    )
    logged: dict[str, int] = {}
    for blob in box.list_blobs():
        prefix = blob.name.split("/")[0]
        records = box.download_blob(blob.name).readall().decode().splitlines()
        logged[prefix] = logged.get(prefix, 0) + sum(json.loads(r).get("status") == 200 for r in records)
    assert logged == {"production": 1, "alpha-production": 1, "beta-production": 5}


def test_an_endpoint_added_while_another_serves_interrupts_nothing(
    endpoints: LocalEndpoints, versions: list[ModelVersion], home: Path
) -> None:
    endpoints.deploy("production", "blue", versions[0])
    state = endpoints.state("production")
    supervisor_pid = int(status_all(home)["production"]["pid"])
    server_pid = endpoint_server_pid(supervisor_pid)
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {state.key}"}, timeout=10) as client:
            while not stop.is_set():
                try:
                    statuses.append(client.post(state.url + "/score", json={"data": [ROW]}).status_code)
                except httpx.TransportError:
                    statuses.append(0)

    workers = [threading.Thread(target=hammer) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        for endpoint, version in zip(MODELS, versions[1:], strict=True):
            endpoints.deploy(endpoint, "blue", version)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert serving(endpoints, "beta-production") == versions[2].version
    assert statuses and set(statuses) == {200}, f"{len(statuses)} requests, failed: {statuses.count(0)}"
    assert children(supervisor_pid) == [server_pid]  # the same process serves: no restart


def test_a_killed_or_stopped_server_brings_every_endpoint_back(
    endpoints: LocalEndpoints, versions: list[ModelVersion], home: Path
) -> None:
    wanted = deploy_three(endpoints, versions)
    supervisor_pid = int(status_all(home)["production"]["pid"])
    killed = endpoint_server_pid(supervisor_pid)
    os.kill(killed, signal.SIGKILL)
    endpoint_server_pid(supervisor_pid, not_pid=killed)
    assert {endpoint: serving(endpoints, endpoint) for endpoint in wanted} == wanted

    stop_all(home)
    assert sorted(endpoints.supervise()) == sorted(wanted)  # every endpoint that holds a deployment is back
    assert set(status_all(home)) == {"production"}
    assert {endpoint: serving(endpoints, endpoint) for endpoint in wanted} == wanted
    assert endpoints.supervise() == []


def listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.set_inheritable(True)
    return sock


def answers_as(url: str, name: str, log_file: Path, timeout_s: float = 30.0) -> None:
    """Until ``GET /`` at ``url`` answers as endpoint ``name`` (within ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url + "/", timeout=2).json()["name"] == name:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log_file.read_text()
        time.sleep(0.05)


def test_the_hosting_server_adds_endpoints_from_its_control_socket_and_survives_bad_messages(tmp_path: Path) -> None:
    first, second = listening(), listening()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    theirs.set_inheritable(True)
    log_file = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AzureWebJobsStorage")}
    with log_file.open("wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "scoring.server", "--name", "h", "--state-root", str(tmp_path / "state")),
                *(f"--listen=first={first.fileno()}", "--control-fd", str(theirs.fileno())),
            ],
            pass_fds=(first.fileno(), theirs.fileno()),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    theirs.close()
    try:
        url = f"http://127.0.0.1:{first.getsockname()[1]}"
        answers_as(url, "first", log_file)
        ours.send(b"not json")  # no socket and no name: logged, nothing else happens
        socket.send_fds(ours, [b'{"name": "Bad Name"}'], [second.fileno()])
        socket.send_fds(ours, [b'{"name": "second"}'], [second.fileno()])
        second_url = f"http://127.0.0.1:{second.getsockname()[1]}"
        answers_as(second_url, "second", log_file)
        assert httpx.get(url + "/", timeout=2).json()["name"] == "first"
        keys = {name: json.loads((tmp_path / "state" / name / "keys.json").read_text()) for name in ("first", "second")}
        assert keys["first"] != keys["second"]
        for name, status in (("second", 200), ("first", 401)):
            bearer = {"Authorization": f"Bearer {keys[name]['key']}"}
            assert httpx.get(second_url + "/metrics", headers=bearer).status_code == status
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        for sock in (first, second, ours):
            sock.close()
    assert log_file.read_text().count("cannot add an endpoint") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen=Bad=3", "--state-root", "x"], "--listen expects NAME=FD"),
        (["--listen=a=3"], "--listen needs --state-root"),
        (["--listen=a=3", "--listen=a=4", "--state-root", "x"], "names endpoint 'a' twice"),
        (["--listen=a=3", "--state-root", "x", "--model-dir", "m"], "excludes --model-dir"),
        ([], "--port is required"),
    ],
)
def test_hosting_arguments_that_cannot_work_stop_the_server_with_one_message(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scoring.server", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_a_bad_endpoints_file_stops_the_supervisor_with_one_message(tmp_path: Path) -> None:
    from backends.local import supervisor

    context = supervisor.stage(tmp_path / "builds")
    hosted = tmp_path / "hosted.json"
    hosted.write_text('{"a": "not a port"}')
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "backends.local.supervisor",
            "--context",
            str(context),
            "--endpoints",
            str(hosted),
            "--",
            "scoring.server",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2 and "expected {" in done.stderr, done.stderr
