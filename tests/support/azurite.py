"""Throw-away Azurite instances on free 127.0.0.1 ports for tests: the plain blob service (shared key, in memory),
or the whole account (blob, queue, table) over HTTPS with OAuth, as an identity-only storage account.

``start_azurite(oauth=True)`` makes a CA and a certificate (``tests.support.tls``) and starts Azurite with
``--oauth basic``: then a bearer token (``tests.support.identity``) is accepted, and ``identity_settings()`` gives the
settings the Functions host reads for an identity-based connection (``<name>__blobServiceUri`` …) with no key in
them. Azurite still accepts its well-known shared key too, so a test that must prove no key was used reads Azurite's
debug log (``debug_log=``), where every request's authorization scheme is visible.
"""

from __future__ import annotations

import re
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devhost.azurite import AzuriteHandle
from tests.support.tls import TlsFiles, make_tls

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


_HANDED_OUT: set[int] = set()
#: how Azurite's debug log shows a request's Authorization header: "authorization":"<scheme> …"
_AUTHORIZATION = re.compile(r'"authorization"\s*:\s*"([A-Za-z]+) ', re.IGNORECASE)


def free_port() -> int:
    """A port nothing listens on now and that this test process has not handed out before: the kernel may give
    the same free port to two quick ``bind(0)`` calls, and a test that asks for three ports needs three."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process meant to listen on 127.0.0.1:{port} exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on 127.0.0.1:{port} within {timeout}s")


@dataclass
class Azurite(AzuriteHandle):
    """devhost's Azurite handle (``stop()``) plus how to reach the account: by key, or by identity over HTTPS."""

    queue_port: int | None = None
    table_port: int | None = None
    tls: TlsFiles | None = None
    location: Path | None = None
    debug_log: Path | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def service_url(self, service: str) -> str:
        port = {"blob": self.port, "queue": self.queue_port, "table": self.table_port}[service]
        if port is None:
            raise ValueError(f"this Azurite serves no {service} service")
        return f"{self.scheme}://127.0.0.1:{port}/{ACCOUNT}"

    @property
    def blob_url(self) -> str:
        return self.service_url("blob")

    @property
    def connection_string(self) -> str:
        """The account's shared-key connection string (for tests about keys, and for test set-up)."""
        parts = [
            f"DefaultEndpointsProtocol={self.scheme}",
            f"AccountName={ACCOUNT}",
            f"AccountKey={KEY}",
            f"BlobEndpoint={self.blob_url}",
        ]
        if self.queue_port:
            parts.append(f"QueueEndpoint={self.service_url('queue')}")
        if self.table_port:
            parts.append(f"TableEndpoint={self.service_url('table')}")
        return ";".join(parts) + ";"

    def identity_settings(self, name: str = "AzureWebJobsStorage") -> dict[str, str]:
        """The host's identity-based connection settings for connection ``name``: service URIs, no secret."""
        if self.tls is None:
            raise ValueError("identity-based access needs Azurite started with oauth=True (HTTPS)")
        settings = {f"{name}__blobServiceUri": self.blob_url}
        if self.queue_port:
            settings[f"{name}__queueServiceUri"] = self.service_url("queue")
        if self.table_port:
            settings[f"{name}__tableServiceUri"] = self.service_url("table")
        return settings

    def tls_env(self) -> dict[str, str]:
        return self.tls.env() if self.tls else {}

    def authorizations(self) -> dict[str, int]:
        """How requests authenticated, from the debug log: {"Bearer": n, "SharedKey": m, ...} (needs ``debug_log``)."""
        if self.debug_log is None or not self.debug_log.exists():
            raise ValueError("start Azurite with debug_log= to audit its requests")
        counts: dict[str, int] = {}
        for scheme in _AUTHORIZATION.findall(self.debug_log.read_text(encoding="utf-8", errors="replace")):
            counts[scheme] = counts.get(scheme, 0) + 1
        return counts

    def restart(self) -> Azurite:
        """Start Azurite again on the same ports and files (after ``stop()``; needs ``location``)."""
        if self.location is None:
            raise ValueError("an in-memory Azurite cannot be restarted with its data: start it with location=")
        return start_azurite(
            self.port,
            oauth=self.tls is not None,
            queue_port=self.queue_port,
            table_port=self.table_port,
            location=self.location,
            debug_log=self.debug_log,
            tls=self.tls,
        )


def start_azurite(
    port: int | None = None,
    *,
    oauth: bool = False,
    all_services: bool = False,
    queue_port: int | None = None,
    table_port: int | None = None,
    location: Path | None = None,
    debug_log: Path | None = None,
    tls: TlsFiles | None = None,
) -> Azurite:
    """Azurite on free ports: the blob service alone, or (``all_services``/``oauth``) blob, queue and table.

    ``oauth``: HTTPS with a certificate from a test CA (``Azurite.tls``) and ``--oauth basic``. ``location``: persist
    to that folder (so ``restart()`` finds the data) instead of memory. ``debug_log``: Azurite's debug log file.
    """
    whole = all_services or oauth
    binary = ROOT / "node_modules" / ".bin" / ("azurite" if whole else "azurite-blob")
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: run `npm ci` (make test does)")
    port = port or free_port()
    args = [
        str(binary),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--loose",
    ]
    if whole:
        queue_port, table_port = queue_port or free_port(), table_port or free_port()
        args += [
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(queue_port),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(table_port),
        ]
    if oauth:
        tls = tls or make_tls(Path(tempfile.mkdtemp(prefix="azurite-tls-")))
        args += ["--oauth", "basic", "--cert", str(tls.cert_file), "--key", str(tls.key_file)]
    else:
        tls = None
    if location is not None:
        location.mkdir(parents=True, exist_ok=True)
        args += ["--location", str(location)]
    else:
        args += ["--inMemoryPersistence"]
    args += ["--debug", str(debug_log)] if debug_log is not None else ["--silent"]
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(location) if location is not None else None
    )
    try:
        for listening in (port, queue_port, table_port):
            if listening:
                wait_for_port(listening, process=proc)
    except (TimeoutError, RuntimeError):
        proc.kill()
        proc.wait()
        raise
    return Azurite(proc, port, queue_port if whole else None, table_port if whole else None, tls, location, debug_log)
