"""``--workers 2``: two server processes share the port (SO_REUSEPORT); new connections reach both; a worker killed
with ``kill -9`` is restarted while the other keeps serving; a graceful stop flushes every worker's prediction log,
so the records in storage are the requests the workers answered; what the workers cannot share is refused."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from azure.storage.blob import BlobServiceClient
from sklearn.linear_model import Ridge

from scoring.storage import API_VERSION
from tests.support.azurite import ROOT, Azurite, free_port
from tests.support.scoring import children, save_model

ROW = [59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]
KEY = "workers-key"


def workers_server(tmp_path: Path, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    keys = tmp_path / "keys.json"
    keys.write_text(orjson.dumps({"key": KEY, "admin_key": "workers-admin"}).decode())
    port = free_port()
    log_file = tmp_path / "server.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AzureWebJobsStorage", "SCORING_"))}
    with log_file.open("ab") as out:
        command = [sys.executable, "-m", "scoring.server", "--name", "workers", "--port", str(port)]
        process = subprocess.Popen(
            [*command, "--keys-file", str(keys), *extra],
            cwd=ROOT,
            env={**clean, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}", log_file


def workers_answering(url: str, want: int, timeout_s: float = 30.0) -> set[int]:
    """The worker indices seen on fresh connections, until ``want`` of them answered (each call a new connection)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while len(seen) < want:
        assert time.monotonic() < deadline, f"only workers {sorted(seen)} answered within {timeout_s} s"
        try:
            seen.add(int(httpx.get(url + "/", headers={"Connection": "close"}, timeout=2).json()["worker"]))
        except httpx.TransportError:
            time.sleep(0.02)
    return seen


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return save_model(Ridge(), tmp_path / "model")


@pytest.fixture
def stop_later() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_two_workers_share_the_port_and_their_logs_add_up_after_a_graceful_stop(
    tmp_path: Path, model: Path, azurite: Azurite, stop_later: list[subprocess.Popen[bytes]]
) -> None:
    container = "workers-logs"
    env = {"AzureWebJobsStorage": azurite.connection_string, "SCORING_LOGS_CONTAINER": container}
    extra = ("--model-dir", str(model), "--version", "3", "--workers", "2")
    process, url, log_file = workers_server(tmp_path, env, *extra)
    stop_later.append(process)
    assert workers_answering(url, 2) == {0, 1}
    answered = 0
    for _ in range(200):  # a new connection each: the kernel spreads them over both workers
        answer = httpx.post(
            url + "/score",
            json={"data": [ROW]},
            headers={"Authorization": f"Bearer {KEY}", "Connection": "close"},
            timeout=10,
        )
        assert answer.status_code == 200 and answer.json()["model_version"] == "3"
        answered += 1
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    summaries = re.findall(r"stopped: answered=(\d+) rejected=\d+ logged=(\d+) dropped=0", log_file.read_text())
    assert len(summaries) == 2, log_file.read_text()
    assert all(int(a) > 0 for a, _ in summaries), summaries  # both workers took requests
    assert sum(int(a) for a, _ in summaries) == answered == sum(int(w) for _, w in summaries)
    box = BlobServiceClient.from_connection_string(
        azurite.connection_string, api_version=API_VERSION
    ).get_container_client(container)
    ids = [
        orjson.loads(line)["request_id"]
        for blob in box.list_blobs()
        for line in box.download_blob(blob.name).readall().splitlines()
    ]
    assert len(ids) == len(set(ids)) == answered  # one record per answered request, request ids unique across workers


def test_a_killed_worker_is_restarted_while_the_other_serves(
    tmp_path: Path, model: Path, stop_later: list[subprocess.Popen[bytes]]
) -> None:
    process, url, log_file = workers_server(tmp_path, {}, "--model-dir", str(model), "--workers", "2")
    stop_later.append(process)
    workers_answering(url, 2)
    before = set(children(process.pid))
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not (len(now := set(children(process.pid))) == 2 and victim not in now):
        assert time.monotonic() < deadline, "the killed worker was not restarted"
        ok = httpx.get(url + "/", headers={"Connection": "close"}, timeout=2)  # the other one serves meanwhile
        assert ok.status_code == 200
        time.sleep(0.02)
    assert workers_answering(url, 2) == {0, 1}
    assert "exited with -9; restarting it" in log_file.read_text()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in now)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "2"], "--workers more than 1 needs --model-dir"),
        (["--workers", "0", "--model-dir", "x"], "--workers must be from 1 to 64, got 0"),
        (["--workers", "2", "--model-dir", "x", "--fd", "3"], "--workers more than 1 and --fd exclude each other"),
    ],
)
def test_what_workers_cannot_share_is_refused(tmp_path: Path, extra: list[str], message: str) -> None:
    process, _, log_file = workers_server(tmp_path, {}, *extra)
    assert process.wait(timeout=30) == 2
    assert message in log_file.read_text()


@pytest.mark.parametrize(
    ("setting", "message"),
    [("two", "SCORING_WORKERS must be a whole number, got 'two'"), ("0", "--workers must be from 1 to 64, got 0")],
)
def test_the_workers_setting_is_checked(tmp_path: Path, setting: str, message: str) -> None:
    process, _, log_file = workers_server(tmp_path, {"SCORING_WORKERS": setting}, "--model-dir", "x")
    assert process.wait(timeout=30) == 2
    assert message in log_file.read_text() and "Traceback" not in log_file.read_text()


def test_a_configuration_error_in_the_workers_stops_them_all(
    tmp_path: Path, stop_later: list[subprocess.Popen[bytes]]
) -> None:
    process, _, log_file = workers_server(tmp_path, {}, "--model-dir", str(tmp_path / "missing"), "--workers", "2")
    stop_later.append(process)
    assert process.wait(timeout=60) == 2
    text = log_file.read_text()
    assert "cannot load a model" in text and "a configuration error: stopping" in text
