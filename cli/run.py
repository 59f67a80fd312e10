"""`make run`: devhost with this app, the sample data dropped into incoming/, every stage shown as it happens.

It starts devhost (which starts Azurite when nothing answers on 127.0.0.1:10000), waits until the
API answers, uploads the diabetes sample, prints each stage of the runs it causes, and once a
release is deployed: the production endpoint, where its key is, a sample prediction and the
dashboard URL. It keeps running (new drops are picked up) until Ctrl-C, which stops devhost and the
endpoint servers — nothing it started is left running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from backends.local.endpoints import stop_all
from backends.settings import Settings
from cli import config
from cli.client import ApiClient, ApiError, score
from cli.commands import sample_rows
from cli.follow import RunPrinter, finished
from cli.storage import upload
from ml.sample import diabetes_frame
from orchestrators.ids import retrain_id_for_blob

SAMPLE_BLOB = "diabetes-sample.csv"
READY_TIMEOUT_S = 180.0
POLL_S = 1.0
STOP_TIMEOUT_S = 60.0
ENDPOINT_WAIT_S = 60.0


def say(line: str) -> None:
    print(line, flush=True)


class Stop(Exception):
    """Raised by the SIGTERM handler so shutdown runs as it does on Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Stop


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def devhost_env(port: int) -> dict[str, str]:
    """The environment for devhost: ours, plus the Event Grid webhook URL on the port we chose."""
    env = dict(os.environ)
    if "MODEL_EVENTS_URL" not in env and port != config.DEFAULT_PORT:
        env["MODEL_EVENTS_URL"] = f"http://127.0.0.1:{port}/runtime/webhooks/eventgrid?functionName=on_model_registered"
    return env


def start_devhost(root: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """devhost in its own session (a terminal's Ctrl-C reaches only us; we stop it with SIGTERM)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "devhost", "start", "--script-root", str(root), "--port", str(port)],
            cwd=root,
            env=devhost_env(port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(process: subprocess.Popen[bytes], root: Path, base_url: str, log_path: Path) -> str:
    """Poll until the API answers with the master key; returns the key. Fails with the log's tail."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise config.CliError(f"devhost exited with code {process.returncode}; {log_path}:\n{log_tail(log_path)}")
        key = config.master_key(root)
        if key:
            try:
                with ApiClient(base_url, key, timeout=5) as api:
                    api.runs(1)
                return key
            except (ApiError, httpx.HTTPError) as exc:  # 401 with a stale key, or not listening yet
                last = str(exc)
        time.sleep(0.25)
    raise config.CliError(
        f"devhost did not answer within {READY_TIMEOUT_S:.0f}s ({last}); {log_path}:\n{log_tail(log_path)}"
    )


def stop_devhost(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        say("devhost did not stop within a minute: killing it")
        process.kill()
        process.wait()


@dataclass
class Session:
    """The launcher's view of the app while it runs."""

    root: Path
    settings: Settings
    base_url: str
    key: str
    printer: RunPrinter = field(default_factory=RunPrinter)
    known: set[str] = field(default_factory=set)
    sample_run: str | None = None

    def announce(self, out: Callable[[str], None] = say, wait_s: float = ENDPOINT_WAIT_S) -> None:
        """Where production is, where its key is, a sample prediction and the dashboard.

        After a restart the app's supervisor brings production back within seconds: wait up to ``wait_s`` for it.
        """
        deadline = time.monotonic() + wait_s
        while True:
            try:
                url, key = config.endpoint(self.root, self.settings, "production")
                result = score(url, key, sample_rows(2))
                break
            except (config.CliError, ApiError, httpx.HTTPError) as exc:
                if time.monotonic() >= deadline:
                    out(f"production endpoint not reachable: {exc}")
                    return
                time.sleep(0.5)
        out(f'production endpoint: {url}/score  (POST {{"data": [[10 numbers], ...]}}, Authorization: Bearer <key>)')
        out(f'its key: {config.endpoints_file(self.root, self.settings)} ("production" → "key")')
        out(f"sample prediction: {result.get('predictions')} from model version {result.get('model_version')}")
        out(f"dashboard: {self.base_url}/api/dashboard?code={self.key}")
        out(
            f"drop more data: python -m cli drop FILE.csv  (or upload to {self.settings.INCOMING_CONTAINER}/)  "
            "· Ctrl-C stops everything"
        )

    def tick(self, api: ApiClient, out: Callable[[str], None] = say) -> None:
        """One poll: print what changed in the runs that are new since start-up."""
        for summary in reversed(api.runs(50)):
            run_id = summary["id"]
            if run_id in self.known or run_id in self.printer.done:
                continue
            run = api.run(run_id)
            for line in self.printer.update(run):
                out(line)
            if finished(run):
                self._on_finished(run, api, out)

    def _on_finished(self, run: dict[str, Any], api: ApiClient, out: Callable[[str], None]) -> None:
        if run.get("kind") == "release" and run.get("outcome") == "deployed":
            self.announce(out)
        elif run["id"] == self.sample_run and run.get("outcome") != "registered":
            champion = [m for m in api.versions(api.default_model()) if m.get("stage") == "champion"]
            if champion:
                out(f"version {champion[0]['version']} stays champion; it serves production:")
                self.announce(out)


def run(root: Path, port: int) -> int:
    """The launcher; returns the exit code."""
    if config.ensure_local_settings(root):
        say(f"created {root / config.LOCAL_SETTINGS} from {config.SAMPLE_SETTINGS}")
    settings = config.load_settings(root, devhost_env(port))
    if port_in_use(port):
        raise config.CliError(f"something already answers on 127.0.0.1:{port}: stop it or pass --port")
    home = config.mlops_home(root, settings)
    log_path = home / "devhost.log"
    base_url = f"http://127.0.0.1:{port}"
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C even when started with SIGINT ignored
    say(f"starting devhost on {base_url} (log: {log_path})")
    process = start_devhost(root, port, log_path)
    try:
        key = wait_ready(process, root, base_url, log_path)
        say(f"devhost is ready: {base_url}")
        with ApiClient(base_url, key) as api:
            session = Session(root, settings, base_url, key, known={r["id"] for r in api.runs(500)})
            csv = diabetes_frame().to_csv(index=False).encode()
            etag = upload(settings.storage, settings.INCOMING_CONTAINER, SAMPLE_BLOB, csv)
            say(
                f"uploaded the diabetes sample ({len(csv)} bytes) to {settings.INCOMING_CONTAINER}/{SAMPLE_BLOB}; "
                "waiting for the blob trigger…"
            )
            session.sample_run = retrain_id_for_blob(SAMPLE_BLOB, etag)
            while True:
                if process.poll() is not None:
                    raise config.CliError(
                        f"devhost stopped (code {process.returncode}); {log_path}:\n{log_tail(log_path)}"
                    )
                session.tick(api)
                time.sleep(POLL_S)
    except (KeyboardInterrupt, Stop):
        say("\nstopping…")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_devhost(process)
        stop_all(home)
        say("stopped devhost and the endpoint servers")
