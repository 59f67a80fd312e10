"""Train small models, run the scoring server as a real subprocess on a free port, and stand in for the token
endpoint of a managed identity."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml import models
from ml.sample import diabetes_frame
from tests.support.azurite import ROOT, free_port
from tests.support.identity import STORAGE_AUDIENCE, bearer_token


def save_model(estimator: object, path: Path) -> Path:
    frame = diabetes_frame()
    x, y = frame.drop(columns=["target"]), frame["target"]
    model = Pipeline([("scale", StandardScaler()), ("model", estimator)]).fit(x, y)
    models.save(model, path, x.head(5))
    return path


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    key: str
    admin_key: str
    state_dir: Path
    log_file: Path

    def client(self, admin: bool = False) -> httpx.Client:
        key = self.admin_key if admin else self.key
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def deploy(self, slot: str, version: str, model_dir: Path) -> httpx.Response:
        with self.client(admin=True) as admin:
            return admin.put(f"/admin/deployments/{slot}", json={"version": version, "model_dir": str(model_dir)})

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=60)


def start_server(state_dir: Path, env: dict[str, str] | None = None, *extra: str) -> Server:
    """``python -m scoring.server`` on a free port with ``env`` over this environment (without its storage
    settings); its output goes to ``<state_dir>.log``."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AzureWebJobsStorage", "SCORING_LOGS"))}
    full_env.update(env or {})
    log_file = state_dir.with_name(state_dir.name + ".log")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scoring.server",
                "--name",
                "test",
                "--port",
                str(port),
                "--state-dir",
                str(state_dir),
                *extra,
            ],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"scoring server exited with {process.returncode}: {log_file.read_text()}")
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                keys = json.loads((state_dir / "keys.json").read_text())
                return Server(process, url, keys["key"], keys["admin_key"], state_dir, log_file)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    raise TimeoutError("scoring server did not answer within 60 s")


@dataclass
class ManagedIdentityEndpoint:
    """A stand-in for the token endpoint Azure ML gives a deployment's managed identity (``MSI_ENDPOINT`` with
    ``MSI_SECRET``, API version 2017-09-01): answers tokens shaped like Entra ID's and records each request."""

    server: ThreadingHTTPServer
    secret: str
    calls: list[dict[str, str]]

    @property
    def env(self) -> dict[str, str]:
        return {
            "MSI_ENDPOINT": f"http://127.0.0.1:{self.server.server_address[1]}/msi/token",
            "MSI_SECRET": self.secret,
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def managed_identity_endpoint() -> ManagedIdentityEndpoint:
    calls: list[dict[str, str]] = []
    secret = secrets.token_hex(8)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            calls.append({**query, "secret": self.headers.get("secret", "")})
            if self.headers.get("secret") != secret or query.get("api-version") != "2017-09-01":
                self._answer(400, {"error": "invalid_request"})
                return
            token, expires = bearer_token(query.get("resource", STORAGE_AUDIENCE))
            self._answer(
                200,
                {
                    "access_token": token,
                    "expires_on": expires,
                    "resource": query.get("resource"),
                    "token_type": "Bearer",
                    "client_id": query.get("clientid", ""),
                },
            )

        def _answer(self, status: int, doc: dict[str, object]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return ManagedIdentityEndpoint(server, secret, calls)


def children(pid: int) -> list[int]:
    """The pids of the direct children of ``pid`` (Linux)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def endpoint_server_pid(supervisor_pid: int, timeout_s: float = 30.0, not_pid: int | None = None) -> int:
    """The pid of the scoring server a local endpoint's supervisor runs (a new one, if ``not_pid`` is given)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [pid for pid in children(supervisor_pid) if pid != not_pid]
        if found:
            return found[0]
        time.sleep(0.01)
    raise TimeoutError(f"supervisor {supervisor_pid} runs no server")
