"""Regressions of the attacks on the scoring server, over real HTTP: overflowing predictions, several Authorization
headers, slow clients, and the prediction log of rejected requests (through a storage outage and SIGTERM)."""

from __future__ import annotations

import json
import selectors
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from azure.storage.blob import BlobServiceClient
from sklearn.linear_model import Ridge

from ml.sample import diabetes_frame
from scoring.storage import API_VERSION
from tests.support.azurite import Azurite, free_port, start_azurite
from tests.support.scoring import Server, save_model, start_server

ROWS = diabetes_frame().drop(columns=["target"]).head(20).to_numpy().tolist()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(Ridge(alpha=1.0), tmp_path_factory.mktemp("hardening") / "ridge")


@pytest.fixture
def server(tmp_path: Path, model: Path) -> Iterator[Server]:
    running = start_server(tmp_path / "state", None, "--read-timeout", "2")
    running.deploy("blue", "1", model)
    yield running
    running.stop()


@pytest.mark.parametrize("count", [1, 20])  # the plain-Python path and the numpy path
def test_an_overflowing_prediction_is_a_422_naming_the_row(server: Server, count: int) -> None:
    rows = [list(r) for r in ROWS[:count]]
    rows[-1] = [1e308] * 10
    with server.client() as client:
        answer = client.post("/score", json={"data": rows})
    assert answer.status_code == 422
    assert answer.json()["error"].startswith(f"row {count - 1}: the prediction is not a finite number")
    assert answer.json()["detail"] == {"row": count - 1}
    assert b"null" not in answer.content and b"predictions" not in answer.content


def test_one_rule_for_the_authorization_header_on_every_route(server: Server) -> None:
    good, admin, bad = f"Bearer {server.key}", f"Bearer {server.admin_key}", "Bearer nope"
    routes = [("POST", "/score", good), ("GET", "/metrics", good), ("GET", "/admin/state", admin)]
    for method, path, key in routes:
        for pair in ((key, bad), (bad, key), (key, key)):
            answer = httpx.request(
                method,
                server.url + path,
                json={"data": [ROWS[0]]},
                headers=[("Authorization", pair[0]), ("Authorization", pair[1])],
            )
            assert answer.status_code == 400, (path, pair)
            assert answer.json()["error"] == "the request has 2 Authorization headers: send exactly one"
        one = httpx.request(method, server.url + path, json={"data": [ROWS[0]]}, headers={"Authorization": key})
        assert one.status_code == 200, path
        assert httpx.request(method, server.url + path, headers={"Authorization": bad}).status_code == 401


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except BlockingIOError:
        return False


def test_slow_clients_are_cut_off_and_do_not_stop_the_server(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    slow: list[socket.socket] = []
    try:
        for i in range(200):
            sock = socket.create_connection(("127.0.0.1", port))
            kind = i % 4
            if kind == 1:  # half the headers
                sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
            elif kind == 2:  # the headers, a tenth of the declared body
                sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"{" * 100)
            elif kind == 3:  # a complete request, then a second one begun and left hanging (keep-alive)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHo")
            slow.append(sock)  # kind 0: connected, says nothing
        trickle = socket.create_connection(("127.0.0.1", port))
        stop = threading.Event()

        def drip() -> None:  # one header byte every 0.3 s: never idle long enough for a keep-alive timeout
            for byte in b"POST /score HTTP/1.1\r\nX-Slow: " + b"a" * 1000:
                if stop.wait(0.3):
                    return
                try:
                    trickle.send(bytes([byte]))
                except OSError:
                    return

        dripping = threading.Thread(target=drip)
        dripping.start()
        opened = time.monotonic()
        with server.client() as client:  # the server keeps serving everyone else meanwhile
            for row in ROWS:
                began = time.monotonic()
                assert client.post("/score", json={"data": [row]}).status_code == 200
                assert time.monotonic() - began < 1.0
        for sock in (*slow, trickle):
            sock.setblocking(False)
        selector = selectors.DefaultSelector()
        for sock in (*slow, trickle):
            selector.register(sock, selectors.EVENT_READ)
        open_ = set(selector.get_map())
        while open_ and time.monotonic() - opened < 2 + 5:
            for key, _ in selector.select(timeout=0.5):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                if _closed(ready):
                    selector.unregister(ready)
                    open_.discard(ready.fileno())
        stop.set()
        dripping.join()
        assert not open_, f"{len(open_)} slow connections still open {time.monotonic() - opened:.1f} s after opening"
        assert time.monotonic() - opened >= 2 - 0.1  # and none before its bound
    finally:
        for sock in slow:
            sock.close()


def _records(connection_string: str, container: str) -> list[dict[str, object]]:
    box = BlobServiceClient.from_connection_string(connection_string, api_version=API_VERSION).get_container_client(
        container
    )
    return [
        json.loads(line) for blob in box.list_blobs() for line in box.download_blob(blob.name).readall().splitlines()
    ]


def test_rejected_requests_are_logged_with_their_status_and_error(
    tmp_path: Path, azurite: Azurite, model: Path
) -> None:
    container = "logs-rejected"
    running = start_server(
        tmp_path / "state", {"AzureWebJobsStorage": azurite.connection_string, "SCORING_LOGS_CONTAINER": container}
    )
    sent: list[tuple[str, bytes, int]] = [("no-model", json.dumps({"data": [ROWS[0]]}).encode(), 503)]
    with running.client() as client:
        answer = client.post("/score", content=sent[0][1], headers={"x-request-id": "no-model"})
        assert answer.status_code == 503
        running.deploy("blue", "4", model)
        sent += [
            ("good", json.dumps({"data": [ROWS[1]]}).encode(), 200),
            ("not-json", b"{oops\nline", 400),
            ("narrow", b'{"data": [[1, 2, 3]]}', 422),
            ("overflow", json.dumps({"data": [[1e308] * 10]}).encode(), 422),
            ("many-rows", json.dumps({"data": [ROWS[0]] * 1001}).encode(), 413),
            ("too-big", b'{"data": "' + b"x" * (1 << 20) + b'"}', 413),
        ]
        for request_id, body, status in sent[1:]:
            assert client.post("/score", content=body, headers={"x-request-id": request_id}).status_code == status
        assert httpx.post(running.url + "/score", json={"data": [ROWS[0]]}).status_code == 401  # no key: not logged
    assert running.stop(signal.SIGTERM) == 0
    records = {str(r["request_id"]): r for r in _records(azurite.connection_string, container)}
    assert sorted(records) == sorted(request_id for request_id, _, _ in sent)
    for request_id, _body, status in sent:
        record = records[request_id]
        assert record["status"] == status
        assert ("error" in record["response"]) is (status != 200)  # type: ignore[operator]
    assert records["no-model"]["model_version"] is None and records["narrow"]["model_version"] == "4"
    assert records["narrow"]["request"] == {"data": [[1, 2, 3]]}
    assert records["not-json"]["request"] == "{oops\nline"  # kept as text, one record per line still
    assert records["too-big"]["request"] is None  # not read past the limit
    assert "not a finite number" in records["overflow"]["response"]["error"]  # type: ignore[index]


def test_the_log_audit_stays_exact_through_a_storage_outage_and_sigterm(tmp_path: Path, model: Path) -> None:
    port = free_port()
    storage = start_azurite(port)
    connection = storage.connection_string
    running = start_server(
        tmp_path / "state", {"AzureWebJobsStorage": connection, "SCORING_LOGS_CONTAINER": "logs-outage"}
    )
    try:
        running.deploy("blue", "1", model)
        with running.client() as client:
            for i in range(10):
                assert (
                    client.post("/score", json={"data": [ROWS[i]]}, headers={"x-request-id": f"a{i}"}).status_code
                    == 200
                )
            deadline = time.monotonic() + 20
            while "prediction_log_written_total 10" not in client.get("/metrics").text:
                assert time.monotonic() < deadline, "the first records were never written"
                time.sleep(0.1)
            written = _records(connection, "logs-outage")
            storage.stop()  # storage goes away (and comes back empty: the emulator keeps nothing in memory)
            for i in range(20):
                assert (
                    client.post("/score", json={"data": [ROWS[i]]}, headers={"x-request-id": f"b{i}"}).status_code
                    == 200
                )
            deadline = time.monotonic() + 20
            while "prediction_log_write_failures_total 0" in client.get("/metrics").text:
                assert time.monotonic() < deadline, "the outage was never noticed"
                time.sleep(0.1)
            storage = start_azurite(port)
        assert running.stop(signal.SIGTERM) == 0
        after = _records(connection, "logs-outage")
        assert sorted(str(r["request_id"]) for r in written) == sorted(f"a{i}" for i in range(10))
        assert sorted(str(r["request_id"]) for r in after) == sorted(f"b{i}" for i in range(20))
    finally:
        running.stop(signal.SIGKILL)
        storage.stop()
