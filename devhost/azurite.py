"""Start Azurite (blob 10000, queue 10001, table 10002) when a setting is the local emulator and nothing answers on
127.0.0.1:10000, and stop it on exit."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEV_PORT = 10000
START_TIMEOUT_S = 30.0


class AzuriteMissing(RuntimeError):
    """Azurite is needed but not installed where devhost looks."""


QUEUE_PORT, TABLE_PORT = 10001, 10002


def wants_local_emulator(value: str) -> bool:
    """True for a connection string of the local emulator (``UseDevelopmentStorage=true`` or its endpoints)."""
    text = value.replace(" ", "").lower()
    return "usedevelopmentstorage=true" in text or any(
        f"endpoint=http://127.0.0.1:{p}" in text or f"endpoint=http://localhost:{p}" in text
        for p in (DEV_PORT, QUEUE_PORT, TABLE_PORT)
    )


def answers(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def find_binary(script_root: Path | None) -> Path | None:
    """``node_modules/.bin/azurite`` (all three services) in the script root, devhost's project, or above them."""
    starts = [p for p in (script_root, Path(__file__).resolve().parent) if p is not None]
    for start in starts:
        for folder in (start.resolve(), *start.resolve().parents):
            candidate = folder / "node_modules" / ".bin" / "azurite"
            if candidate.exists():
                return candidate
    return None


@dataclass
class AzuriteHandle:
    process: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        log.info("azurite stopped")


def ensure_azurite(
    settings: list[str], data_dir: Path, project_root: Path | None = None, *, port: int = DEV_PORT
) -> AzuriteHandle | None:
    """Start Azurite's blob, queue and table services unless something already answers on the blob port;
    ``settings`` are the names of the settings that point at the emulator (for the messages)."""
    if not settings or answers(port):
        return None
    binary = find_binary(project_root)
    if binary is None:
        raise AzuriteMissing(
            f"{', '.join(settings)} point(s) at the local storage emulator, nothing answers on "
            f"127.0.0.1:{port} and Azurite is not installed: run `npm ci` in the project"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = (data_dir / "azurite.log").open("ab")
    process = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(port + 1),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(port + 2),
            "--location",
            str(data_dir),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--loose",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(port):
        if process.poll() is not None:
            raise AzuriteMissing(f"Azurite exited with code {process.returncode}; see {data_dir / 'azurite.log'}")
        if time.monotonic() > deadline:
            process.kill()
            raise AzuriteMissing(f"Azurite did not answer on 127.0.0.1:{port} within {START_TIMEOUT_S:.0f}s")
        time.sleep(0.1)
    log.info("azurite started on 127.0.0.1:%d (data in %s)", port, data_dir)
    return AzuriteHandle(process, port)
