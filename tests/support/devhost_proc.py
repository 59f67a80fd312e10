"""Run devhost as a real subprocess on a free port with its own copy of a fixture app."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.azurite import free_port

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "tests" / "fixtures" / "apps"
KEY = "test-master-key"


@dataclass
class HttpResult:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class DevhostProcess:
    root: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def counts(self) -> Path:
        return self.root / "counts"

    def start(self) -> None:
        log = self.root / f"devhost-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "devhost", "start", "--script-root", str(self.root), "--port", str(self.port)],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"devhost did not start (exit {self.proc.returncode}):\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"devhost did not start within 30 s:\n{self.output()}")

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"devhost did not stop within 15 s of SIGTERM:\n{self.output()[-4000:]}") from None

    def count(self, name: str) -> int:
        path = self.counts / name
        return len(path.read_text().splitlines()) if path.exists() else 0

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> HttpResult:
        url = path if path.startswith("http") else self.base + path
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return HttpResult(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as err:
            return HttpResult(err.code, err.read(), dict(err.headers))

    def mgmt(self, method: str, rel: str, body: Any = None, **kw: Any) -> HttpResult:
        sep = "&" if "?" in rel else "?"
        return self.request(method, f"/runtime/webhooks/durabletask/{rel}{sep}code={KEY}", body, **kw)

    def start_orchestration(self, name: str, payload: Any = None, instance_id: str | None = None) -> str:
        rel = f"orchestrators/{name}" + (f"/{instance_id}" if instance_id else "")
        # encoded as DurableOrchestrationClient.start_new does: a JSON string holding the JSON text
        res = self.mgmt("POST", rel, None if payload is None else json.dumps(payload))
        assert res.status == 202, (res.status, res.body, self.output())
        return str(res.json()["id"])

    def wait_status(
        self, iid: str, statuses: tuple[str, ...] = ("Completed", "Failed", "Terminated"), timeout: float = 30.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            res = self.mgmt("GET", f"instances/{iid}")
            if res.status in (200, 202):
                last = res.json()
                if last["runtimeStatus"] in statuses:
                    return dict(last)
            time.sleep(0.05)
        raise AssertionError(f"instance {iid} did not reach {statuses}; last={last}\n{self.output()[-4000:]}")

    def wait_for(self, predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}\n{self.output()[-4000:]}")


def make_devhost(app: str, tmp_path: Path, extra_env: dict[str, str] | None = None) -> DevhostProcess:
    root = tmp_path / app
    shutil.copytree(APPS / app, root)
    (root / "counts").mkdir()
    env = {
        **os.environ,
        "COUNT_DIR": str(root / "counts"),
        "DEVHOST_MASTER_KEY": KEY,
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    env.pop("AZURE_FUNCTIONS_DURABLE_STRICT_TYPING", None)
    return DevhostProcess(root, free_port(), env)


@contextlib.contextmanager
def serving(app: str, tmp_path: Path, extra_env: dict[str, str] | None = None) -> Iterator[DevhostProcess]:
    """A started devhost on a copy of fixture ``app``, stopped afterwards (for module-scoped fixtures)."""
    host = make_devhost(app, tmp_path, extra_env)
    host.start()
    try:
        yield host
    finally:
        host.stop()
