"""A local endpoint's server is supervised as a pod's container is: after ``kill -9`` it answers again within 2 s,
with what it served; a crash loop backs off; a server that says its configuration cannot work is not restarted."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sklearn.linear_model import Ridge

from backends.local import supervisor
from backends.local.endpoints import LocalEndpoints, status_all, stop_all
from backends.local.registry import MlflowRegistry
from tests.support.azurite import ROOT, free_port
from tests.support.processes import processes_mentioning
from tests.support.scoring import children, endpoint_server_pid, save_model

ROW = [59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]
RECOVERY_BOUND_S = 2.0


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    stop_all(home)


def test_a_killed_production_server_answers_again_within_two_seconds(home: Path, tmp_path: Path) -> None:
    registry = MlflowRegistry(home)
    version = registry.register("recovery", str(save_model(Ridge(), tmp_path / "model")), {"job_id": "j"})
    endpoints = LocalEndpoints(home, registry, {"qa": free_port(), "production": free_port()})
    state = endpoints.deploy("production", "blue", version)
    supervisor_pid = int(status_all(home)["production"]["pid"])
    killed_pid = endpoint_server_pid(supervisor_pid)

    answers: list[tuple[float, float, int, str]] = []  # (sent, answered, status or 0 for a failure, version)
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {state.key}"}, timeout=10) as client:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(state.url + "/score", json={"data": [ROW]})
                    answers.append((sent, time.monotonic(), response.status_code, response.json()["model_version"]))
                except httpx.TransportError:
                    answers.append((sent, time.monotonic(), 0, ""))

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 30
        while sum(1 for *_, status, _ in answers if status == 200) < 50:
            assert time.monotonic() < deadline, "no steady serving before the kill"
            time.sleep(0.01)
        os.kill(killed_pid, signal.SIGKILL)
        killed = time.monotonic()
        while Path(f"/proc/{killed_pid}/stat").exists() and killed_pid in children(supervisor_pid):
            time.sleep(0.001)  # reaped by the supervisor: the process is gone
        died = time.monotonic()
        while not any(sent > died and status == 200 for sent, _, status, _ in answers):
            assert time.monotonic() - died < 30, "the endpoint never answered again"
            time.sleep(0.005)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    # the first answer to a request sent once the process had died: the restarted server's
    back = min(answered for sent, answered, status, _ in answers if sent > died and status == 200)
    failed = [a for a in answers if a[1] > killed and a[2] != 200]
    print(f"recovery: answered again {back - died:.3f} s after the process died; {len(failed)} requests failed")
    assert back - died < RECOVERY_BOUND_S
    assert endpoint_server_pid(supervisor_pid, not_pid=killed_pid) != killed_pid
    assert {v for sent, _, status, v in answers if status == 200 and sent > died} == {str(version.version)}
    assert len(failed) <= 4 * 2  # at most the requests in flight on the killed server's connections
    assert int(status_all(home)["production"]["pid"]) == supervisor_pid  # the same endpoint, its server restarted


def test_a_crash_loop_backs_off_and_a_permanent_failure_is_not_restarted(tmp_path: Path) -> None:
    context = supervisor.stage(tmp_path / "builds")
    (context / "standin.py").write_text(  # a "server" that counts its starts in a file, then exits with a status
        "import os, pathlib, sys, time\n"
        "starts = pathlib.Path(os.environ['STARTS'])\n"
        "before = starts.read_text() if starts.exists() else ''\n"
        "starts.write_text(before + f'{time.monotonic()}\\n')\n"
        "sys.exit(2 if len(starts.read_text().split()) >= 4 else 1)\n"
    )
    starts = tmp_path / "starts"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "backends.local.supervisor",
            "--context",
            str(context),
            "--port",
            str(free_port()),
            "--",
            "standin",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), "STARTS": str(starts)},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    times = [float(t) for t in starts.read_text().split()]
    assert len(times) == 4  # the 4th start exits with 2: not restarted
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] < 1.0  # the first restart is immediate
    assert gaps[1] >= 1.0 and gaps[2] >= 2.0  # then 1 s, 2 s: a crash loop backs off
    assert "not restarting" in done.stderr
    assert processes_mentioning(str(context)) == []
