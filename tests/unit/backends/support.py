"""Test helpers for the local backends: a real MLflow model folder and a tiny recording HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def save_ridge(dest: Path, alpha: float = 1.0) -> Path:
    """A real MLflow sklearn model (Ridge on the raw diabetes data) saved at ``dest``."""
    import mlflow.sklearn
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    features, target = load_diabetes(return_X_y=True, as_frame=True, scaled=False)
    model = Ridge(alpha=alpha).fit(features, target)
    mlflow.sklearn.save_model(model, str(dest), pip_requirements=["scikit-learn"])
    return dest


@dataclass
class Recorder:
    """What a ``recording_server`` received; ``statuses`` are answered in turn (then 200)."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@contextmanager
def recording_server() -> Iterator[Recorder]:
    """An HTTP server on a free 127.0.0.1 port recording each POST's path, headers and JSON body."""
    recorder = Recorder("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            recorder.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            status = recorder.statuses.pop(0) if recorder.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
