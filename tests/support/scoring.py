"""Train small models and run the scoring server as a real subprocess on a free port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml import models
from ml.sample import diabetes_frame
from tests.support.azurite import ROOT, free_port


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
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if k != "AzureWebJobsStorage"}
    full_env.update(env or {})
    process = subprocess.Popen([sys.executable, "-m", "scoring.server", "--name", "test", "--port", str(port),
                                "--state-dir", str(state_dir), *extra], cwd=ROOT, env=full_env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"scoring server exited with {process.returncode}: {output}")
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                keys = json.loads((state_dir / "keys.json").read_text())
                return Server(process, url, keys["key"], keys["admin_key"], state_dir)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise TimeoutError("scoring server did not answer within 60 s")
