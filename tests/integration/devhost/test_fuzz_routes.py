"""A bounded fuzz of devhost's host routes over real HTTP: generated paths, query values, headers and bodies.

Seeded (reproducible), 400 requests, each with a 10 s timeout; asserts no 5xx from a host route, no request hanging
past the bound, bounded growth of the host's memory and state, and that the host still serves afterwards.
"""

from __future__ import annotations

import http.client
import json
import random
import time
from pathlib import Path

import psutil

from tests.support.devhost_proc import KEY, DevhostProcess, serving

TEMPLATES = [
    "/runtime/webhooks/durabletask/orchestrators/{name}",
    "/runtime/webhooks/durabletask/orchestrators/{name}/{id}",
    "/runtime/webhooks/durabletask/instances",
    "/runtime/webhooks/durabletask/instances/{id}",
    "/runtime/webhooks/durabletask/instances/{id}/raiseEvent/{name}",
    "/runtime/webhooks/durabletask/instances/{id}/{action}",
    "/runtime/webhooks/durabletask/entities/{name}/{id}",
    "/admin/functions/{name}",
    "/runtime/webhooks/eventgrid",
    "/runtime/webhooks/blobs",
    "/admin/host/status",
    "/admin/host/ping",
    "/durabletask/instances",
    "/{name}",
    "/",
]
NAMES = [
    "chain",
    "approval",
    "CHAIN",
    "nope",
    "a" * 300,
    "%00",
    "%FF%FE",
    "..",
    "%2e%2e",
    "x%20y",
    "%C3%A9",
    "on_event",
]
ACTIONS = ["terminate", "suspend", "resume", "rewind", "restart", "purge", "%2F"]
VALUES = [
    "nan",
    "inf",
    "-inf",
    "1e309",
    "-1",
    "0",
    "99999999999999999999999",
    "1",
    "0.1",
    "",
    "true",
    "%FF",
    "2024-01-01T00:00:00Z",
    "99999-01-01T00:00:00Z",
    "a" * 500,
]
PARAMS = [
    "timeout",
    "pollingInterval",
    "top",
    "createdTimeFrom",
    "createdTimeTo",
    "runtimeStatus",
    "showHistory",
    "instanceIdPrefix",
    "functionName",
    "op",
    "reason",
    "restartWithNewInstanceId",
    "version",
]
BODIES = [
    b"",
    b"null",
    b"{}",
    b"[]",
    b"NaN",
    b"[Infinity]",
    b"\xff\xfe",
    b"[" * 5000 + b"]" * 5000,
    b'{"input": "x"}',
    b'"' + b"a" * 2000 + b'"',
    json.dumps([{"eventType": "x"}]).encode(),
    b"1e999999",
    b'{"a": ' * 70 + b"1" + b"}" * 70,
    bytes(range(256)),
]
HEADER_VALUES = [KEY, "wrong", "\xff\xfe", "caf\xe9", ""]


def _request(host: DevhostProcess, rnd: random.Random) -> tuple[int, str]:
    template = rnd.choice(TEMPLATES)
    path = template.format(name=rnd.choice(NAMES), id=rnd.choice(NAMES), action=rnd.choice(ACTIONS))
    query = "&".join(f"{rnd.choice(PARAMS)}={rnd.choice(VALUES)}" for _ in range(rnd.randint(0, 4)))
    if rnd.random() < 0.7:
        query += ("&" if query else "") + f"code={KEY}"
    target = path + ("?" + query if query else "")
    preferred = "GET" if template.endswith(("instances", "{id}", "status", "/")) else "POST"
    method = preferred if rnd.random() < 0.8 else rnd.choice(["GET", "POST", "DELETE", "PUT", "PATCH"])
    body = rnd.choice(BODIES)
    conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.putheader("Content-Type", rnd.choice(["application/json", "text/plain", "application/json; x=\xff"]))
        if rnd.random() < 0.5:
            conn.putheader("x-functions-key", rnd.choice(HEADER_VALUES))
        if rnd.random() < 0.3:
            conn.putheader("aeg-event-type", rnd.choice(["Notification", "SubscriptionValidation", "\xff"]))
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        return conn.getresponse().status, f"{method} {target[:120]}"
    finally:
        conn.close()


def test_fuzzed_requests_never_break_the_host(tmp_path: Path) -> None:
    with serving("durable_app", tmp_path) as host:
        assert host.proc is not None
        proc = psutil.Process(host.proc.pid)
        rss_before = proc.memory_info().rss
        rnd = random.Random(20261202)
        problems = []
        started = time.monotonic()
        for _ in range(400):
            began = time.monotonic()
            status, what = _request(host, rnd)
            if status >= 500:
                problems.append((status, what))
            assert time.monotonic() - began < 10, what
        assert not problems, problems[:10]
        assert time.monotonic() - started < 120
        assert proc.memory_info().rss - rss_before < 80 * 1024 * 1024
        assert (host.root / ".devhost" / "durable.db").stat().st_size < 20 * 1024 * 1024
        iid = host.start_orchestration("chain", 2)
        assert host.wait_status(iid)["output"] == 3
        assert "unhandled error" not in host.output()
