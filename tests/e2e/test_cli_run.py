"""`python -m cli run` (what `make run` runs) end to end: sample prediction printed, Ctrl-C leaves nothing running."""

from __future__ import annotations

import json
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
from tests.support.processes import processes_mentioning

pytestmark = pytest.mark.slow


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class CliRun:
    """``python -m cli run`` as a subprocess, its output collected line by line."""

    def __init__(self, root: Path, port: int, values: dict[str, str]) -> None:
        self.root = root
        self.seen: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "--root", str(root), "--port", str(port), "run"],
            cwd=root,
            env=child_env(root, values),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        for line in self.process.stdout or []:
            self._lines.put(line)

    def printed(self, prefix: str) -> bool:
        while not self._lines.empty():
            self.seen.append(self._lines.get().rstrip("\n"))
        return any(line.startswith(prefix) for line in self.seen)

    def output(self) -> str:
        return "\n".join(self.seen) + log_tail(self.root / ".mlops" / "devhost.log")

    def wait_printed(self, prefix: str, timeout: float) -> None:
        wait_for(f"a line starting {prefix!r}", lambda: self.printed(prefix), timeout, on_timeout=self.output)

    def ctrl_c(self) -> None:
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=90) == 0, self.output()
        self._reader.join(timeout=10)
        self.printed("")
        assert "stopped devhost and the endpoint servers" in self.seen, self.output()


def test_make_run_shows_a_prediction_and_stops_everything_on_ctrl_c(
    azurite: Azurite, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = copy_app(tmp_path_factory.mktemp("cli-app"))
    port, qa, prod = free_port(), free_port(), free_port()
    values = {
        "AzureWebJobsStorage": azurite.connection_string,
        "DURABLE_TASK_HUB": "CliHub",
        "INCOMING_CONTAINER": "cli-incoming",
        "QUARANTINE_CONTAINER": "cli-quarantine",
        "DATASETS_CONTAINER": "cli-datasets",
        "SCORING_LOGS_CONTAINER": "cli-scoring-logs",
        "MLOPS_HOME": str(root / ".mlops"),
        "QA_ENDPOINT_PORT": str(qa),
        "PROD_ENDPOINT_PORT": str(prod),
    }
    runs = [CliRun(root, port, values)]
    try:
        first = runs[0]
        first.wait_printed("sample prediction:", 240)
        assert (root / "local.settings.json").exists()
        first.wait_printed(f"dashboard: http://127.0.0.1:{port}/api/dashboard?code=", 30)
        assert any("validate" in line and "succeeded" in line for line in first.seen), first.output()
        endpoints = json.loads((root / ".mlops" / "endpoints.json").read_text())
        assert any(endpoints["production"]["url"] in line for line in first.seen)
        first.ctrl_c()
        assert not port_open(port) and not port_open(qa) and not port_open(prod)
        assert processes_mentioning(str(root)) == []

        runs.append(CliRun(root, port, values))  # again: the sample is no news, production comes back as it was
        again = runs[1]
        again.wait_printed("sample prediction:", 120)
        assert any("skipped_no_new_data" in line for line in again.seen), again.output()
        again.ctrl_c()
        assert processes_mentioning(str(root)) == []
    finally:
        for run in runs:
            stop_process(run.process)
        from backends.local.endpoints import stop_all

        stop_all(root / ".mlops")
