"""The release's API tests against real HTTP servers: our scoring server, and a stand-in whose latency we choose."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sklearn.linear_model import Ridge

from backends.ports import EndpointState
from services import api_tests as endpoint_tests
from tests.support.scoring import Server, save_model, start_server

KEY = "stand-in-key"


@pytest.fixture(scope="module")
def scoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("api-tests")
    server = start_server(folder / "state")
    assert server.deploy("blue", "7", save_model(Ridge(alpha=1.0), folder / "model")).status_code == 200
    yield server
    server.stop()


def test_our_scoring_server_passes_and_a_wrong_version_fails(scoring: Server) -> None:
    state = EndpointState("qa", scoring.url, scoring.key, {"blue": "7"}, {"blue": 100})
    verdict = endpoint_tests.run(state, "7", {"requests": 20, "max_p99_ms": 2000, "max_error_rate": 0.0})
    assert verdict["passed"], verdict
    wrong = endpoint_tests.run(state, "8", {"requests": 5, "max_p99_ms": 2000, "max_error_rate": 0.0})
    assert not wrong["passed"] and "served version '7', expected '8'" in wrong["summary"]


class _StandIn(BaseHTTPRequestHandler):
    """The scoring contract with a chosen delay for the n-th scoring request (counted from 1)."""

    slow: set[int] = set()
    seen = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            self._answer(401, {"error": "key"})
            return
        try:
            rows = json.loads(body)["data"]
            assert isinstance(rows, list) and all(
                len(r) == 10 and all(isinstance(v, int | float) for v in r) for r in rows
            )
        except (ValueError, KeyError, AssertionError, TypeError):
            self._answer(400, {"error": "bad request"})
            return
        type(self).seen += 1
        if type(self).seen in self.slow:
            time.sleep(0.6)  # the latency under test, not synchronisation
        self._answer(200, {"predictions": [1.0] * len(rows), "model_version": "3"})

    def _answer(self, status: int, doc: object) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[tuple[str, type[_StandIn]]]:
    handler = type("Handler", (_StandIn,), {"slow": set(), "seen": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("slow", "passes"), [({1, 2, 3}, True), ({endpoint_tests.WARMUP_REQUESTS + 10}, False)])
def test_the_latency_limit_counts_measured_requests_only(
    stand_in: tuple[str, type[_StandIn]], slow: set[int], passes: bool
) -> None:
    url, handler = stand_in
    handler.slow = slow
    state = EndpointState("qa", url, KEY, {"blue": "3"}, {"blue": 100})
    verdict = endpoint_tests.run(state, "3", {"requests": 20, "max_p99_ms": 500, "max_error_rate": 0.0})
    assert verdict["passed"] is passes, verdict
    if not passes:
        assert "p99 latency" in verdict["summary"]
