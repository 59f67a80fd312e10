"""The drift check reads what the prediction log wrote (real Azurite) and asks a real HTTP API for a retrain."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from cli.__main__ import main as cli_main
from ml.sample import diabetes_frame
from scoring.predlog import PredictionLog
from scoring.storage import BlobTarget
from tests.support.azurite import Azurite

FEATURES = diabetes_frame().drop(columns=["target"])


class RetrainApi(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.calls: list[tuple[str, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/retrain"


class _Handler(BaseHTTPRequestHandler):
    server: RetrainApi

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.calls.append((self.path, self.headers.get("x-functions-key")))
        body = json.dumps({"id": "run-42"}).encode()
        self.send_response(202)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[RetrainApi]:
    server = RetrainApi()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def log_requests(azurite: Azurite, container: str, rows: list[list[float]]) -> None:
    log = PredictionLog(BlobTarget("logs", azurite.connection_string), container, "production")
    for start in range(0, len(rows), 20):
        request = orjson.dumps({"data": rows[start : start + 20]}, option=orjson.OPT_INDENT_2)
        log.record(f"r{start}", "7", 0.5, status=200, request=request, response=b'{"predictions":[1.0]}')
        # a rejected request is logged too, and must not count as what the endpoint sees
        rejected = orjson.dumps({"data": [[1e6] * 10] * 20})
        log.record(f"x{start}", "7", 0.5, status=422, request=rejected, response=b'{"error":"not finite"}')
    log.close()
    assert log.written == 2 * len(range(0, len(rows), 20))


@pytest.mark.parametrize("shift", [0.0, 12.0])
def test_drifted_inputs_start_a_retrain_and_steady_ones_do_not(
    azurite: Azurite, api: RetrainApi, shift: float, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    container = f"drift-{int(shift)}"
    shifted = FEATURES.assign(bmi=FEATURES["bmi"] + shift)
    log_requests(azurite, container, shifted.to_numpy().tolist())
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("SCORING_LOGS_CONTAINER", container)
    assert cli_main(["drift", "--endpoint", "production", "--retrain-url", api.url, "--key", "k3y"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed.strip().splitlines()[-2 if shift else -1])
    assert summary["rows"] == len(FEATURES)
    if shift:
        assert summary["drifted"] == ["bmi"]
        assert api.calls == [("/api/retrain", "k3y")] and "retrain started: run-42" in printed
    else:
        assert summary["drifted"] == [] and api.calls == []
