"""The whole loop on devhost, offline: a copy of the app as script root, Azurite, devhost as a subprocess."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.storage import upload
from orchestrators.ids import retrain_id_for_blob
from tests.support.app import KEY, app_values, child_env, copy_app
from tests.support.azurite import Azurite, free_port
from triggers.blobs import canonical_etag


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    interval: float = 0.5,
    on_timeout: Callable[[], str] = lambda: "",
) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"{what} did not happen within {timeout:.0f}s (last: {last!r}) {on_timeout()}")


def stop_process(process: subprocess.Popen[Any], timeout: float = 60) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def log_tail(path: Path, lines: int = 60) -> str:
    return "\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@dataclass
class Host:
    root: Path
    home: Path
    port: int
    values: dict[str, str]
    log: Path
    http: httpx.Client
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params or None)

    def run(self, instance_id: str) -> dict[str, Any] | None:
        response = self.get(f"/api/runs/{instance_id}")
        return response.json() if response.status_code == 200 else None

    def wait_finished(self, instance_id: str, timeout: float = 180) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            run = self.run(instance_id)
            return run if run and run["status"] in ("Completed", "Failed", "Terminated") else None

        result: dict[str, Any] = wait_for(
            f"run {instance_id} finishing",
            done,
            timeout,
            on_timeout=lambda: json.dumps(self.run(instance_id)) + log_tail(self.log),
        )
        return result


def drop(host: Host, name: str, data: bytes, container: str = "incoming") -> str:
    """Upload to the incoming container and return the retrain id the blob trigger must use."""
    etag = upload(host.values["AzureWebJobsStorage"], container, name, data)
    return retrain_id_for_blob(name, canonical_etag(etag))


def production(host: Host) -> tuple[str, str]:
    """(base URL, key) of the local production endpoint, from ``endpoints.json``."""
    entry = json.loads((host.home / "endpoints.json").read_text())["production"]
    return str(entry["url"]).rstrip("/"), str(entry["key"])


@contextlib.contextmanager
def running_devhost(root: Path, values: dict[str, str], port: int) -> Iterator[Host]:
    """devhost serving ``root`` on ``port`` with ``values`` as settings; stopped (with its endpoint servers) after."""
    (root / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    log = root / "devhost.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "start", "--script-root", str(root), "--port", str(port)],
            cwd=root,
            env=child_env(root, values),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"x-functions-key": KEY}, timeout=30)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"devhost exited with {process.returncode}{log_tail(log)}")
            try:
                return http.get("/api/runs").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("devhost answering", ready, 90, on_timeout=lambda: log_tail(log))
        yield Host(root, Path(values["MLOPS_HOME"]), port, values, log, http, process)
    finally:
        http.close()
        stop_process(process)
        from backends.local.endpoints import stop_all

        stop_all(Path(values["MLOPS_HOME"]))


@pytest.fixture(scope="module")
def host(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """devhost serving a copy of the whole app on a free port."""
    root = copy_app(tmp_path_factory.mktemp("app"))
    port = free_port()
    with running_devhost(root, app_values(azurite.connection_string, root / ".mlops", port), port) as running:
        yield running
