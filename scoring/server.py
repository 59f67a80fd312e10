"""``python -m scoring.server --name NAME --port PORT --state-dir DIR [--keys-file F] [--model-dir D --version V]``.

Serves one endpoint on uvicorn (uvloop + httptools, one worker). Deployments and traffic persist in
``<state-dir>/state.json`` and are restored at start, so a restarted server serves the same versions. With
``--model-dir`` (or ``AZUREML_MODEL_DIR``) it serves that single model (the AKS custom container). Prediction
logging goes to ``AzureWebJobsStorage`` / ``SCORING_LOGS_CONTAINER`` when the connection string is set.
SIGTERM/SIGINT: stop accepting, drain in-flight requests, flush the prediction log, exit 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import uvicorn

from scoring.app import ScoringApp, ServerConfig
from scoring.model import ModelLoadError, load_model
from scoring.predlog import PredictionLog
from scoring.slots import SlotError, Slots

log = logging.getLogger("scoring.server")


def read_keys(path: Path) -> dict[str, str]:
    """The endpoint's keys; generated (mode 0600) when the file does not exist yet."""
    if path.exists():
        keys = json.loads(path.read_text())
        if not keys.get("key") or not keys.get("admin_key"):
            raise ValueError(f"{path} must hold {{'key': ..., 'admin_key': ...}}")
        return {"key": str(keys["key"]), "admin_key": str(keys["admin_key"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = {"key": secrets.token_urlsafe(32), "admin_key": secrets.token_urlsafe(32)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(keys, out)
    return keys


def restore(slots: Slots, state_file: Path) -> None:
    """Reload the deployments a previous run persisted; a model that no longer loads is skipped and logged."""
    if not state_file.exists():
        return
    state = json.loads(state_file.read_text())
    for slot, spec in state.get("deployments", {}).items():
        try:
            slots.install(slot, load_model(Path(spec["model_dir"]), str(spec["version"])))
        except (ModelLoadError, SlotError, KeyError) as exc:
            log.error("cannot restore slot %s: %s", slot, exc)
    traffic = {s: p for s, p in state.get("traffic", {}).items() if s in slots.routing.models}
    if traffic and sum(traffic.values()) == 100:
        slots.set_traffic(traffic)


def build_app(args: argparse.Namespace) -> ScoringApp:
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    keys = read_keys(Path(args.keys_file) if args.keys_file else state_dir / "keys.json")
    slots = Slots(state_dir / "state.json")
    model_dir = args.model_dir or os.environ.get("AZUREML_MODEL_DIR")
    if model_dir:
        slots.install("blue", load_model(Path(model_dir), str(args.version)))
    else:
        restore(slots, state_dir / "state.json")
    storage = os.environ.get("AzureWebJobsStorage", "")  # noqa: SIM112 (the Functions setting name)
    predlog = PredictionLog(storage, os.environ.get("SCORING_LOGS_CONTAINER", "scoring-logs"), args.name) \
        if storage else None
    return ScoringApp(ServerConfig(args.name, keys["key"], keys["admin_key"], args.max_rows), slots, predlog)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scoring.server", description="serve a scoring endpoint")
    parser.add_argument("--name", required=True, help="endpoint name (qa, production): prefixes the prediction logs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--keys-file", default=None)
    parser.add_argument("--model-dir", default=None, help="serve this single MLflow model (AKS container)")
    parser.add_argument("--version", default="1", help="version label of --model-dir")
    parser.add_argument("--max-rows", type=int, default=1000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the SDK logs every storage request at INFO (headers included): noise, and a cost per prediction-log upload
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        app = build_app(args)
    except (ModelLoadError, ValueError, OSError) as exc:
        print(f"scoring server {args.name}: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(app, host=args.host, port=args.port, loop="uvloop", http="httptools",
                            access_log=False, log_level="warning", lifespan="on", timeout_graceful_shutdown=30)
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        # uvicorn drains, runs the lifespan shutdown (log flush), then re-raises the signal to this handler
        signal.signal(stop_signal, lambda *_: sys.exit(0))
    _Server(config, f"scoring server {args.name} listening on http://{args.host}:{args.port}").run()
    return 0


class _Server(uvicorn.Server):
    """Announces readiness only once the socket is bound (launchers wait for that line or for ``GET /``)."""

    def __init__(self, config: uvicorn.Config, ready_line: str) -> None:
        super().__init__(config)
        self.ready_line = ready_line

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            print(self.ready_line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
