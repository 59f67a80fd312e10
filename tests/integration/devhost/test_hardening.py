"""devhost's HTTP surfaces under hostile input, over real HTTP: the worker-only rpc channel, numbers from requests,
size limits, keys that are not text, deep or non-standard JSON, slow headers, echoed values and a quick stop."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
import urllib.parse
from typing import Any

import pytest

from tests.support.devhost_proc import KEY, DevhostProcess, HttpResult

DEEP = b"[" * 5000 + b"]" * 5000
MIB = 1024 * 1024


def raw(
    host: DevhostProcess | str,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    *,
    port: int | None = None,
) -> HttpResult:
    """One request with headers sent as given (``http.client`` writes ``str`` values as latin-1 bytes)."""
    address = ("127.0.0.1", port) if port else ("127.0.0.1", host.port)  # type: ignore[union-attr]
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        conn.putrequest(method, path, skip_host="Host" in (headers or {}), skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return HttpResult(resp.status, resp.read(), dict(resp.getheaders()))
    finally:
        conn.close()


def binding(host: DevhostProcess) -> dict[str, Any]:
    res = host.request("GET", "/api/client-binding", headers={"x-functions-key": KEY})
    assert res.status == 200, res.body
    return dict(res.json())


# -- point 1: the rpc base -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize(
    "path",
    [
        "/durabletask/instances",
        "/durabletask/orchestrators/chain",
        "/DurableTask/instances/x",
        "/durabletask/instances?code=" + KEY,
    ],
)
def test_public_port_answers_nothing_under_the_rpc_base(durable_host: DevhostProcess, method: str, path: str) -> None:
    res = raw(
        durable_host,
        method,
        path,
        {"Content-Type": "application/json", "x-functions-key": KEY},
        b"1" if method == "POST" else None,
    )
    assert res.status == 404


def test_rpc_channel_is_a_separate_loopback_listener_with_a_secret_path(durable_host: DevhostProcess) -> None:
    rpc = urllib.parse.urlsplit(binding(durable_host)["rpcBaseUrl"])
    assert rpc.hostname == "127.0.0.1" and rpc.port != durable_host.port
    token, segment = rpc.path.strip("/").split("/")
    assert segment == "durabletask" and len(token) >= 40
    port = rpc.port
    assert port is not None
    ok = raw(
        "", "POST", f"/{token}/durabletask/orchestrators/chain", {"Content-Type": "application/json"}, b"2", port=port
    )
    assert ok.status == 202, ok.body
    # answers point at the public, keyed API, never at the channel
    assert ok.json()["statusQueryGetUri"].startswith(f"{durable_host.base}/runtime/webhooks/durabletask/")
    durable_host.wait_status(ok.json()["id"])

    no_token = raw("", "GET", "/durabletask/instances", port=port)
    wrong_token = raw("", "GET", f"/{token[:-1]}x/durabletask/instances", port=port)
    assert no_token.status == wrong_token.status == 404
    rebinding = raw("", "GET", f"/{token}/durabletask/instances", {"Host": f"evil.example:{port}"}, port=port)
    assert rebinding.status == 421
    browser = raw("", "GET", f"/{token}/durabletask/instances", {"Origin": "http://evil.example"}, port=port)
    assert browser.status == 403
    form = raw("", "POST", f"/{token}/durabletask/orchestrators/chain", {"Content-Type": "text/plain"}, b"2", port=port)
    assert form.status == 415
    assert raw("", "GET", f"/{token}/durabletask/instances?top=1", port=port).status == 200


def test_public_management_api_still_needs_the_key(durable_host: DevhostProcess) -> None:
    assert durable_host.request("POST", "/runtime/webhooks/durabletask/orchestrators/chain", 1).status == 401
    assert durable_host.request("GET", "/runtime/webhooks/durabletask/instances").status == 401


# -- points 2, 11, 12: numbers from requests -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("timeout=nan", "timeout"),
        ("timeout=inf", "timeout"),
        ("timeout=-1", "timeout"),
        ("timeout=1e309", "timeout"),
        ("timeout=99999999999", "timeout"),
        ("timeout=1&pollingInterval=nan", "pollingInterval"),
        ("timeout=5&pollingInterval=-Infinity", "pollingInterval"),
        ("timeout=5&pollingInterval=0", "pollingInterval"),
        ("timeout=1&pollingInterval=5", "pollingInterval"),
    ],
)
def test_start_and_wait_numbers_are_finite_and_bounded(durable_host: DevhostProcess, query: str, name: str) -> None:
    started = time.monotonic()
    res = durable_host.mgmt("POST", f"orchestrators/chain?{query}", json.dumps(1))
    assert res.status == 400 and name in res.json()["ExceptionMessage"], res.body
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("query", "token", "name"),
    [
        ("top=-2", None, "top"),
        ("top=0", None, "top"),
        ("top=1e30", None, "top"),
        ("top=99999999999999999999999999", None, "top"),
        ("top=nan", None, "top"),
        ("top=2", "-1", "x-ms-continuation-token"),
        ("top=2", "99999999999999999999999999", "x-ms-continuation-token"),
        ("top=2", "abc", "x-ms-continuation-token"),
        ("createdTimeFrom=99999-01-01T00:00:00Z", None, "createdTimeFrom"),
        ("createdTimeTo=nan", None, "createdTimeTo"),
        ("runtimeStatus=Sleeping", None, "runtimeStatus"),
    ],
)
def test_list_numbers_and_tokens_are_bounded(
    durable_host: DevhostProcess, query: str, token: str | None, name: str
) -> None:
    headers = {"x-ms-continuation-token": token} if token is not None else None
    res = durable_host.mgmt("GET", f"instances?{query}", headers=headers)
    assert res.status == 400 and name in res.json()["ExceptionMessage"], res.body


def test_host_timers_keep_running_after_hostile_numbers(durable_host: DevhostProcess) -> None:
    for query in ("timeout=nan", "timeout=1&pollingInterval=nan", "timeout=inf&pollingInterval=inf"):
        durable_host.mgmt("POST", f"orchestrators/chain?{query}", json.dumps(1))
    iid = durable_host.start_orchestration("with_timer", 0.5)
    assert durable_host.wait_status(iid, timeout=15)["runtimeStatus"] == "Completed"
    bounded = durable_host.mgmt("POST", "orchestrators/approval?timeout=0.3&pollingInterval=0.1")
    assert bounded.status == 202


# -- point 4: size limits ---------------------------------------------------------------------------------------------
def test_oversized_inputs_and_events_are_413(durable_host: DevhostProcess) -> None:
    big = json.dumps("x" * (MIB + 10)).encode()
    res = durable_host.mgmt("POST", "orchestrators/chain", raw=big)
    assert res.status == 413 and "limit" in res.json()["ExceptionMessage"]
    assert durable_host.mgmt("GET", "instances?top=10000").status == 200
    iid = durable_host.start_orchestration("approval")
    durable_host.wait_status(iid, ("Running",))
    event = durable_host.mgmt("POST", f"instances/{iid}/raiseEvent/Approve", raw=big)
    assert event.status == 413
    just_under = json.dumps("y" * (MIB - 100)).encode()
    assert durable_host.mgmt("POST", f"instances/{iid}/raiseEvent/Approve", raw=just_under).status == 202
    assert durable_host.wait_status(iid)["runtimeStatus"] == "Completed"


@pytest.mark.parametrize(
    ("what", "size", "expect"),
    [
        ("status", 9000, "custom status"),
        ("output", MIB + 1, "its output"),
        ("activity", MIB + 1, "caught:"),
    ],
)
def test_oversized_payloads_of_a_running_orchestration_fail_it_with_a_message(
    durable_host: DevhostProcess, what: str, size: int, expect: str
) -> None:
    iid = durable_host.start_orchestration("oversize", {"what": what, "size": size})
    doc = durable_host.wait_status(iid)
    if what == "activity":
        assert doc["runtimeStatus"] == "Completed" and doc["output"].startswith("caught:")
        assert "limit" in doc["output"]
    else:
        assert doc["runtimeStatus"] == "Failed" and expect in json.dumps(doc["output"])
    small = durable_host.start_orchestration("oversize", {"what": what, "size": 100})
    assert durable_host.wait_status(small)["runtimeStatus"] == "Completed"


# -- point 5: keys that are not UTF-8 ---------------------------------------------------------------------------------
PROTECTED = [
    ("GET", "/runtime/webhooks/durabletask/instances"),
    ("POST", "/runtime/webhooks/durabletask/orchestrators/chain"),
    ("GET", "/runtime/webhooks/durabletask/instances/x"),
    ("DELETE", "/runtime/webhooks/durabletask/instances/x"),
    ("POST", "/runtime/webhooks/durabletask/instances/x/raiseEvent/e"),
    ("POST", "/runtime/webhooks/durabletask/instances/x/terminate"),
    ("POST", "/runtime/webhooks/durabletask/instances/x/restart"),
    ("POST", "/admin/functions/add_one"),
    ("POST", "/runtime/webhooks/eventgrid?functionName=x"),
    ("GET", "/api/client-binding"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_non_utf8_keys_are_401(durable_host: DevhostProcess, method: str, path: str) -> None:
    body = b"{}" if method == "POST" else None
    for key in ("\xff\xfe\xfd", "caf\xe9", KEY + "\xff"):
        res = raw(durable_host, method, path, {"x-functions-key": key, "Content-Type": "application/json"}, body)
        assert res.status == 401, (key, res.status, res.body)
    sep = "&" if "?" in path else "?"
    res = raw(durable_host, method, f"{path}{sep}code=%FF%FE", {"Content-Type": "application/json"}, body)
    assert res.status == 401


@pytest.mark.parametrize(
    "path",
    [
        "/runtime/webhooks/durabletask/../../admin/functions/add_one",
        "/admin/functions/../functions/add_one",
        "/%61dmin/functions/add_one",
        "//admin/functions/add_one",
        "/admin//functions/add_one",
        "/runtime/webhooks/durabletask/instances/..%2f..%2fadmin",
        "/ADMIN/FUNCTIONS/add_one",
        "/runtime/webhooks/DurableTask/orchestrators/chain",
        "/admin/functions/add_one%00",
    ],
)
def test_path_tricks_never_pass_without_a_key(durable_host: DevhostProcess, path: str) -> None:
    res = raw(durable_host, "POST", path, {"Content-Type": "application/json"}, b'{"input": "1"}')
    assert res.status in (400, 401, 404), (path, res.status)


# -- points 7, 15: deep, non-UTF-8 and non-standard JSON --------------------------------------------------------------
@pytest.mark.parametrize("body", [DEEP, b'{"input": "\xff\xfe"}', b"NaN", b'{"a": Infinity}', b"[-Infinity]"])
@pytest.mark.parametrize(
    "path",
    [
        "/admin/functions/add_one",
        "/runtime/webhooks/eventgrid?functionName=on_event",
        "/runtime/webhooks/durabletask/orchestrators/chain",
    ],
)
def test_bad_json_bodies_are_400(durable_host: DevhostProcess, path: str, body: bytes) -> None:
    res = durable_host.request("POST", path, raw=body, headers={"x-functions-key": KEY})
    assert res.status == 400, (res.status, res.body[:300])
    assert len(res.body) < 1000


def test_bad_json_event_payloads_are_400(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("approval")
    durable_host.wait_status(iid, ("Running",))
    for body in (DEEP, b'"\xff"', b"NaN"):
        res = durable_host.mgmt("POST", f"instances/{iid}/raiseEvent/Approve", raw=body)
        assert res.status == 400, (res.status, res.body[:200])
    assert durable_host.mgmt("POST", f"instances/{iid}/terminate").status == 202


def test_non_finite_outputs_are_emitted_as_standard_json(durable_host: DevhostProcess) -> None:
    iid = durable_host.start_orchestration("non_finite")
    durable_host.wait_status(iid)
    for res in (durable_host.mgmt("GET", f"instances/{iid}"), durable_host.mgmt("GET", "instances?top=10000")):
        text = res.body.decode()
        json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    doc = durable_host.mgmt("GET", f"instances/{iid}").json()
    assert doc["output"] == {"values": ["NaN", "Infinity", "-Infinity", 1.5]}


# -- point 10: echoed and logged values are clipped -------------------------------------------------------------------
def test_long_values_are_clipped_in_answers_and_logs(durable_host: DevhostProcess) -> None:
    name = "n" * 5_000
    res = durable_host.mgmt("POST", f"orchestrators/{name}")
    assert res.status == 400 and len(res.body) < 1000 and "doesn't exist" in res.json()["ExceptionMessage"]
    long_line = durable_host.mgmt("POST", f"orchestrators/{'m' * 20_000}")
    assert long_line.status == 400 and len(long_line.body) < 1000
    admin = durable_host.request("POST", f"/admin/functions/{name}", {"input": ""}, headers={"x-functions-key": KEY})
    assert admin.status == 404 and len(admin.body) < 400
    assert "n" * 300 not in durable_host.output()


# -- point 16: slow headers -------------------------------------------------------------------------------------------
def test_slow_header_sockets_are_closed_and_do_not_stop_service(durable_host: DevhostProcess) -> None:
    socks = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", durable_host.port), timeout=5)
        s.sendall(b"GET /api/client-binding HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(s)
    try:
        started = time.monotonic()
        for _ in range(5):
            assert durable_host.mgmt("GET", "instances?top=1").status == 200
        assert time.monotonic() - started < 5
        deadline = time.monotonic() + 30
        open_socks = list(socks)
        while open_socks and time.monotonic() < deadline:
            for s in list(open_socks):
                s.settimeout(0.05)
                try:
                    if s.recv(1) == b"":
                        open_socks.remove(s)
                except TimeoutError:
                    pass
                except OSError:
                    open_socks.remove(s)
        assert not open_socks, f"{len(open_socks)} slow sockets still open"
        assert 8 <= time.monotonic() - started <= 30
    finally:
        for s in socks:
            s.close()


# -- point 2's aftermath: a graceful stop is quick -------------------------------------------------------------------
def test_graceful_stop_takes_seconds_whatever_is_in_flight(fresh_durable_host: DevhostProcess) -> None:
    host = fresh_durable_host
    host.start()
    waiting = host.start_orchestration("approval")
    host.wait_status(waiting, ("Running",))
    results: list[Any] = []
    calls = [
        lambda: host.mgmt("POST", "orchestrators/approval?timeout=600&pollingInterval=1"),
        lambda: host.request("GET", "/api/sleep/100"),
        lambda: host.mgmt("POST", "orchestrators/slow_fan_out", json.dumps({"n": 2, "sleep": 100})),
    ]

    def call(c: Any) -> None:
        try:
            results.append(c())
        except OSError as exc:  # the sleeping function's connection is closed by the stop: expected
            results.append(exc)

    threads = [threading.Thread(target=call, args=(c,), daemon=True) for c in calls]
    for t in threads:
        t.start()
    host.wait_for(lambda: host.count("slow_square-0") + host.count("slow_square-1") >= 1, what="activities running")
    assert host.proc is not None
    started = time.monotonic()
    host.proc.send_signal(signal.SIGTERM)
    assert host.proc.wait(timeout=20) == 0
    assert time.monotonic() - started < 8
    # the waiting start-and-wait call was answered (202 with the check-status payload), not cut
    for t in threads:
        t.join(timeout=5)
    assert any(isinstance(r, HttpResult) and r.status == 202 and b"statusQueryGetUri" in r.body for r in results)
    host.start()
    assert host.wait_status(waiting, ("Running",))["runtimeStatus"] == "Running"
