"""Generated requests against every HTTP surface: devhost (the app's routes, the Durable management API, the admin
API, the webhooks, the host endpoints) and a scoring server. Bounded in count and time, loopback only.

Each request must get an answer below 500 within a bound; afterwards the hosts still serve, and their memory and
state grew by a bounded amount. ``derandomize`` makes the run the same every time (CI reproduces a failure), and
Hypothesis shrinks a failing request to a small one before reporting it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import Host, running_devhost
from tests.support.app import KEY, app_values, copy_app
from tests.support.azurite import Azurite, free_port
from tests.support.rawhttp import send
from tests.support.scoring import Server, save_model, start_server

ANSWER_WITHIN_S = 10.0
MAX_RSS_GROWTH_MB = 150
MAX_STATE_GROWTH_MB = 64
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- what is generated -----------------------------------------------------------------------------------------

NUMBERS = st.sampled_from(
    ["nan", "NaN", "inf", "-inf", "-1", "-2", "0", "1", "1e309", "99999999999999999999", "0x10", "1.5", "", " 3", "９"]
)
TEXT = st.text(max_size=40)
LONG = st.builds(lambda n: "x" * n, st.integers(300, 5000))
SEGMENT = st.one_of(
    TEXT,
    LONG,
    st.sampled_from(
        [
            "..",
            ".",
            "%2e%2e",
            "a/../b",
            "run-1",
            "retrain",
            "release",
            "on_blob_drop",
            "Host.Functions.on_blob_drop",
            "\u00e9\u00e8",
            "%00",
        ]
    ),
)
PARAM_NAMES = st.sampled_from(
    [
        "limit",
        "model",
        "top",
        "timeout",
        "pollingInterval",
        "showHistory",
        "showHistoryOutput",
        "showInput",
        "createdTimeFrom",
        "createdTimeTo",
        "runtimeStatus",
        "reason",
        "continuationToken",
        "functionName",
        "code",
        "instanceId",
        "model",
        "x",
    ]
)
QUERY = st.dictionaries(PARAM_NAMES, st.one_of(NUMBERS, TEXT), max_size=4)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
BODIES = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda n: b"[" * n + b"]" * n, st.integers(1000, 20000)),
    st.sampled_from(
        [
            b'{"data": NaN}',
            b'{"data": Infinity}',
            b"\xff\xfe{}",
            b'{"data": "incoming/../x"}',
            b'{"data": "incoming/a.csv"}',
            b'[{"eventType": "Microsoft.MachineLearningServices.ModelRegistered",'
            b' "id": "1", "subject": "models/diabetes-ridge:99", "data": {}, "eventTime": "2026-01-01T00:00:00Z",'
            b' "dataVersion": "1"}]',
            b'{"input": "x"}',
            b'{"data": [[1,2,3,4,5,6,7,8,9,1e308]]}',
        ]
    ),
)
KEYS = st.one_of(
    st.just(KEY.encode()),
    st.just(KEY.encode()),
    st.just(KEY.encode()),
    st.binary(max_size=40),
    st.just(b"\xff\xfe\x80"),
    st.just(b""),
)
CONTENT_TYPES = st.sampled_from(
    [
        b"application/json",
        b"text/plain",
        b"application/x-www-form-urlencoded",
        b"application/cloudevents-batch+json; charset=utf-8",
        b"\xff",
        b"",
    ]
)
METHODS = st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS"])

#: (route, the methods it answers): most requests use one of them, so they reach the handlers, not a 405
DEVHOST_ROUTES = [
    ("/api/retrain", "POST"),
    ("/api/runs", "GET"),
    ("/api/runs/{}", "GET"),
    ("/api/runs/{}/approve", "POST"),
    ("/api/runs/{}/reject", "POST"),
    ("/api/models", "GET"),
    ("/api/models/{}", "GET"),
    ("/api/models/{}/versions", "GET"),
    ("/api/dashboard", "GET"),
    ("/api/{}", "GET"),
    ("/runtime/webhooks/durabletask/instances", "GET DELETE"),
    ("/runtime/webhooks/durabletask/instances/{}", "GET DELETE"),
    ("/runtime/webhooks/durabletask/instances/{}/raiseEvent/{}", "POST"),
    ("/runtime/webhooks/durabletask/instances/{}/terminate", "POST"),
    ("/runtime/webhooks/durabletask/instances/{}/suspend", "POST"),
    ("/runtime/webhooks/durabletask/instances/{}/restart", "POST"),
    ("/runtime/webhooks/durabletask/orchestrators/{}", "POST"),
    ("/runtime/webhooks/durabletask/orchestrators/{}/{}", "POST"),
    ("/runtime/webhooks/eventgrid", "POST"),
    ("/runtime/webhooks/blobs", "POST"),
    ("/admin/functions/{}", "POST"),
    ("/admin/host/status", "GET"),
    ("/admin/host/ping", "POST"),
    ("/", "GET"),
    ("/durabletask/instances", "GET"),
    ("/durabletask/orchestrators/{}", "POST"),
    ("/{}", "GET"),
]
SCORING_ROUTES = [
    ("/score", "POST"),
    ("/", "GET"),
    ("/health", "GET"),
    ("/metrics", "GET"),
    ("/admin/state", "GET"),
    ("/admin/deployments/{}", "PUT DELETE"),
    ("/admin/traffic", "PUT"),
    ("/{}", "GET"),
]
#: segments that name real things (functions, instances, events) half the time, so handlers get past their look-ups
NAMES = st.sampled_from(
    [
        "retrain",
        "release",
        "on_blob_drop",
        "on_model_registered",
        "scheduled_retrains",
        "Host.Functions.on_blob_drop",
        "retrain-manual-x",
        "blue",
        "green",
        "approve",
    ]
)


@st.composite
def requests(draw: st.DrawFn, routes: list[tuple[str, str]], key_header: bytes) -> dict[str, Any]:
    template, allowed = draw(st.sampled_from(routes))
    method = draw(st.sampled_from(allowed.split())).encode() if draw(st.integers(0, 9)) else draw(METHODS)
    segments = [draw(st.one_of(NAMES, SEGMENT)) for _ in range(template.count("{}"))]
    path = template.format(*(quote(segment, safe="") for segment in segments))
    query = draw(QUERY)
    if template.endswith(("eventgrid", "blobs")) and draw(st.booleans()):
        query["functionName"] = draw(NAMES)
    target = path + ("?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items()) if query else "")
    headers = []
    if draw(st.integers(0, 9)):
        key = draw(KEYS)
        headers.append((key_header, b"Bearer " + key if key_header == b"Authorization" else key))
    if draw(st.booleans()):
        headers.append((b"Content-Type", draw(CONTENT_TYPES)))
    if draw(st.integers(0, 9)) == 0:
        headers.append((b"Origin", b"http://evil.example"))
    return {"method": method, "target": target.encode("ascii", "replace"), "headers": headers, "body": draw(BODIES)}


# --- the hosts under test --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    root = copy_app(tmp_path_factory.mktemp("fuzz-app"))
    port = free_port()
    with running_devhost(root, app_values(azurite.connection_string, root / ".mlops", port), port) as running:
        # steady state: the first /api/models builds the registry (imports MLflow), seconds on a loaded machine
        assert running.http.get("/api/models", timeout=120).status_code == 200
        yield running


@pytest.fixture(scope="module")
def scoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from sklearn.linear_model import Ridge

    folder = tmp_path_factory.mktemp("fuzz-scoring")
    server = start_server(folder / "state")
    model = save_model(Ridge(alpha=1.0), folder / "model")
    assert server.deploy("blue", "1", model).status_code == 200
    yield server
    server.stop()


def _state_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / ".devhost").glob("durable.db*"))


def _check(port: int, request: dict[str, Any], seen: dict[int, int]) -> None:
    answer = send(
        port, request["method"], request["target"], request["headers"], body=request["body"], timeout_s=ANSWER_WITHIN_S
    )
    assert 0 < answer.status < 500, (answer.status, request, answer.head[:300])
    seen[answer.status] = seen.get(answer.status, 0) + 1


def _reached_the_handlers(seen: dict[int, int]) -> None:
    """The generator is worth its time only if requests got past authentication to the handlers."""
    assert sum(n for status, n in seen.items() if 200 <= status < 300) > 0, seen
    assert sum(n for status, n in seen.items() if status not in (401, 403, 404, 405)) > 0.1 * sum(seen.values()), seen


def test_devhost_and_the_app_answer_every_generated_request_below_500(host: Host) -> None:
    process = psutil.Process(host.process.pid)
    rss, state = process.memory_info().rss, _state_bytes(host.root)
    seen: dict[int, int] = {}

    @FUZZ
    @given(requests(DEVHOST_ROUTES, b"x-functions-key"))
    def fuzz(request: dict[str, Any]) -> None:
        _check(host.port, request, seen)

    fuzz()
    _reached_the_handlers(seen)
    assert host.get("/api/runs").status_code == 200, "devhost stopped serving"
    assert (process.memory_info().rss - rss) / 2**20 < MAX_RSS_GROWTH_MB
    assert (_state_bytes(host.root) - state) / 2**20 < MAX_STATE_GROWTH_MB


def test_the_scoring_server_answers_every_generated_request_below_500(scoring: Server) -> None:
    port = int(scoring.url.rsplit(":", 1)[1])
    process = psutil.Process(scoring.process.pid)
    rss = process.memory_info().rss
    seen: dict[int, int] = {}

    @FUZZ
    @given(requests(SCORING_ROUTES, b"Authorization"))
    def fuzz(request: dict[str, Any]) -> None:
        request["headers"] = [
            (b"Authorization", b"Bearer " + scoring.key.encode())
            if name == b"Authorization" and value == b"Bearer " + KEY.encode()
            else (name, value)
            for name, value in request["headers"]
        ]
        _check(port, request, seen)

    fuzz()
    _reached_the_handlers(seen)
    with scoring.client() as client:
        answer = client.post("/score", json={"data": [[50, 1, 25, 90, 200, 100, 50, 4, 5, 90]]})
    assert answer.status_code == 200 and math.isfinite(answer.json()["predictions"][0])
    assert (process.memory_info().rss - rss) / 2**20 < MAX_RSS_GROWTH_MB


def test_a_request_that_never_finishes_its_headers_is_cut_off(host: Host, scoring: Server) -> None:
    """Slow headers hold no connection forever (devhost and the scoring server): the server closes it."""
    import socket
    import time

    for port in (host.port, int(scoring.url.rsplit(":", 1)[1])):
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            started = time.monotonic()
            sock.settimeout(60)
            try:
                while sock.recv(1024):
                    pass
            except ConnectionResetError:
                pass
            assert time.monotonic() - started < 30, f"port {port} kept a half-sent request open"
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code < 500
