"""`python -m cli run` (what `make run` runs) end to end: sample prediction printed, Ctrl-C leaves nothing running."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.e2e.conftest import log_tail, stop_process, wait_for
from tests.support.app import child_env, copy_app
from tests.support.azurite import Azurite, free_port

pytestmark = pytest.mark.slow


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def test_make_run_shows_a_prediction_and_stops_everything_on_ctrl_c(azurite: Azurite,
                                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    root = copy_app(tmp_path_factory.mktemp("cli-app"))
    port, qa, prod = free_port(), free_port(), free_port()
    values = {
        "AzureWebJobsStorage": azurite.connection_string, "DURABLE_TASK_HUB": "CliHub",
        "INCOMING_CONTAINER": "cli-incoming", "QUARANTINE_CONTAINER": "cli-quarantine",
        "DATASETS_CONTAINER": "cli-datasets", "SCORING_LOGS_CONTAINER": "cli-scoring-logs",
        "MLOPS_HOME": str(root / ".mlops"), "QA_ENDPOINT_PORT": str(qa), "PROD_ENDPOINT_PORT": str(prod),
    }
    process = subprocess.Popen([sys.executable, "-m", "cli", "--root", str(root), "--port", str(port), "run"],
                               cwd=root, env=child_env(root, values), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    assert process.stdout is not None
    def pump() -> None:
        for line in process.stdout or []:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def printed(prefix: str) -> bool:
        while not lines.empty():
            seen.append(lines.get().rstrip("\n"))
        return any(line.startswith(prefix) for line in seen)

    def output() -> str:
        return "\n".join(seen) + log_tail(root / ".mlops" / "devhost.log")

    try:
        wait_for("the sample prediction", lambda: printed("sample prediction:"), 240, on_timeout=output)
        assert (root / "local.settings.json").exists()
        wait_for("the dashboard line", lambda: printed(f"dashboard: http://127.0.0.1:{port}/api/dashboard?code="), 30,
                 on_timeout=output)
        assert any("validate" in line and "succeeded" in line for line in seen), output()
        endpoints = json.loads((root / ".mlops" / "endpoints.json").read_text())
        assert any(endpoints["production"]["url"] in line for line in seen)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=90) == 0, output()
        reader.join(timeout=10)
        printed("")
        assert "stopped devhost and the endpoint servers" in seen, output()
        assert not port_open(port) and not port_open(qa) and not port_open(prod)
        assert processes_mentioning(str(root)) == []
    finally:
        stop_process(process)
        from backends.local.endpoints import stop_all

        stop_all(root / ".mlops")
