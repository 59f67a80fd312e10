"""The real Azure Monitor exporter pipeline, offline: an ingestion endpoint on 127.0.0.1 receives what the app and
the scoring server send, and shows the names and dimensions the alert queries read.

The app side runs in a subprocess (``configure_azure_monitor`` sets process-wide providers once). Both sides run with
what would call Microsoft's own endpoints switched off (statsbeat, SDK stats, the control-plane configuration worker,
the Azure VM resource detector) and a socket guard that records any connection not to the loopback address.
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from backends import telemetry as app_telemetry
from scoring import telemetry as scoring_telemetry

ROOT = Path(__file__).resolve().parents[2]
OFFLINE_ENV = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
}


class Ingestion:
    """A stand-in for the Application Insights ingestion endpoint (``POST /v2.1/track``, a JSON array)."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.paths: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                items = json.loads(body)
                owner.paths.append(self.path)
                owner.items.extend(items)
                answer = json.dumps({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def connection_string(self) -> str:
        return (
            "InstrumentationKey=00000000-0000-0000-0000-000000000001;"
            f"IngestionEndpoint=http://127.0.0.1:{self.server.server_port}/"
        )

    def of_type(self, base_type: str) -> list[dict]:
        return [i["data"]["baseData"] for i in self.items if i["data"]["baseType"] == base_type]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def ingestion() -> Iterator[Ingestion]:
    endpoint = Ingestion()
    yield endpoint
    endpoint.close()


APP_SIDE = r"""
import json, os, socket, sys, threading
attempts = []
_connect = socket.socket.connect
def guarded(sock, address):
    if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1"):
        attempts.append(str(address))
        raise OSError("offline test: no connection to " + str(address))
    return _connect(sock, address)
socket.socket.connect = guarded
_resolve = socket.getaddrinfo
def resolve(host, *args, **kwargs):
    if host not in ("127.0.0.1", "::1", "localhost"):
        attempts.append(str(host))
        raise socket.gaierror("offline test: no name resolution of " + str(host))
    return _resolve(host, *args, **kwargs)
socket.getaddrinfo = resolve

from backends import telemetry
from activities.outcomes import record_outcome
from opentelemetry._logs import get_logger_provider
configured = telemetry.configure_telemetry("mlops-functions", dict(os.environ))
record_outcome({"run_id": "release-diabetes-ridge-7", "kind": "release", "outcome": "rolled_back",
                "model": "diabetes-ridge", "version": "7", "trigger": "event", "duration_s": 42.5,
                "reason": "production API tests failed: p99 612 ms > 500 ms"})
flushed = get_logger_provider().force_flush(10000)
workers = sorted(t.name for t in threading.enumerate() if t.name == "ConfigurationWorker")
print(json.dumps({"configured": configured, "flushed": flushed, "attempts": attempts, "workers": workers}))
"""


def test_run_finished_reaches_application_insights_as_a_custom_event(ingestion: Ingestion) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(ROOT),
        "PYTHONPATH": str(ROOT),
        **OFFLINE_ENV,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string,
    }
    done = subprocess.run(
        [sys.executable, "-c", APP_SIDE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"configured": True, "flushed": True, "attempts": [], "workers": []}
    assert set(ingestion.paths) == {"/v2.1/track"}
    events = [e for e in ingestion.of_type("EventData") if e["name"] == app_telemetry.RUN_FINISHED_EVENT]
    assert len(events) == 1
    properties = events[0]["properties"]
    assert {k: properties[k] for k in app_telemetry.RUN_FINISHED_DIMENSIONS} == {
        "run_id": "release-diabetes-ridge-7",
        "kind": "release",
        "outcome": "rolled_back",
        "model": "diabetes-ridge",
        "version": "7",
        "trigger": "event",
        "duration_s": "42.500",
        "reason": "production API tests failed: p99 612 ms > 500 ms",
    }
    assert app_telemetry.CUSTOM_EVENT_NAME_ATTRIBUTE not in properties
    assert events[0]["measurements"] == {"duration_s": 42.5}
    assert not [m for m in ingestion.of_type("MessageData") if "rolled_back" in m.get("message", "")], (
        "the event must not also arrive as a trace"
    )


def _guard_sockets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    attempts: list[str] = []
    connect, resolve = socket.socket.connect, socket.getaddrinfo

    def guarded(sock: socket.socket, address: object) -> None:
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1"):
            attempts.append(str(address))
            raise OSError(f"offline test: no connection to {address}")
        connect(sock, address)  # type: ignore[arg-type]

    def resolving(host: object, *args: object, **kwargs: object) -> object:
        if host not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(str(host))
            raise socket.gaierror(f"offline test: no name resolution of {host}")
        return resolve(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "getaddrinfo", resolving)
    return attempts


def test_scoring_metrics_reach_application_insights_with_their_dimensions(
    ingestion: Ingestion, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)
    attempts = _guard_sockets(monkeypatch)
    telemetry = scoring_telemetry.ScoringTelemetry.to_azure_monitor(
        "production", ingestion.connection_string, export_interval_s=3600, disable_offline_storage=True
    )
    try:
        for latency in range(1, 101):
            telemetry.observe("7", 200, float(latency))
        telemetry.observe("7", 503, 250.0)
        telemetry.observe("none", 401, 0.2)
        assert telemetry.flush()
    finally:
        telemetry.shutdown()
    assert attempts == []
    assert not [
        t for t in threading.enumerate() if t.name in ("OtelPeriodicExportingMetricReader", "ConfigurationWorker")
    ], "a telemetry thread is left"
    points: dict[tuple[str, tuple[tuple[str, str], ...]], dict] = {}
    for data in ingestion.of_type("MetricData"):
        for metric in data["metrics"]:
            points[(metric["name"], tuple(sorted(data["properties"].items())))] = metric
    for name, dims in scoring_telemetry.METRIC_DIMENSIONS.items():
        keys = [k for k in points if k[0] == name]
        assert keys, f"{name} was not exported"
        assert all(tuple(d for d, _ in props) == tuple(sorted(dims)) for _, props in keys), name
    ok = (("endpoint", "production"), ("model_version", "7"), ("status_class", "2xx"))
    errors = (("endpoint", "production"), ("model_version", "7"), ("status_class", "5xx"))
    assert points[(scoring_telemetry.REQUESTS_TOTAL, ok)]["value"] == 100
    assert points[(scoring_telemetry.REQUESTS_TOTAL, errors)]["value"] == 1
    duration = points[(scoring_telemetry.REQUEST_DURATION_MS, ok)]
    assert (duration["value"], duration["count"], duration["min"], duration["max"]) == (5050.0, 100, 1.0, 100.0)
    p99 = points[(scoring_telemetry.LATENCY_P99_MS, (("endpoint", "production"), ("model_version", "7")))]
    assert p99["value"] == 100.0  # nearest rank over 1..100 ms and one 250 ms: the 100th of 101
