"""A Durable client fake implementing ``triggers.durable.DurableClient`` over an in-memory instance table.

Statuses are the SDK's own ``DurableOrchestrationStatus`` and the check-status response is built by
the SDK's own ``DurableOrchestrationClient`` from a binding payload like the host's. The listing of instances is
served over HTTP on 127.0.0.1 at the binding's ``rpcBaseUrl``, paged as the Durable extension pages it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from tests.support.azurite import Azurite

BASE = "http://127.0.0.1:7999/runtime/webhooks/durabletask"
BINDING = json.dumps(
    {
        "taskHubName": "TestHub",
        "creationUrls": {},
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{BASE}/instances/INSTANCEID?code=k",
            "sendEventPostUri": f"{BASE}/instances/INSTANCEID/raiseEvent/{{eventName}}?code=k",
            "terminatePostUri": f"{BASE}/instances/INSTANCEID/terminate?reason={{text}}&code=k",
            "purgeHistoryDeleteUri": f"{BASE}/instances/INSTANCEID?code=k",
        },
        "rpcBaseUrl": "http://127.0.0.1:7999/durabletask/",
    }
)


#: the extension's page of the listing when ``top`` is not given
EXTENSION_PAGE = 100


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Listing(BaseHTTPRequestHandler):
    """``GET instances/`` as the extension answers it: ``createdTimeFrom``, ``top`` (default 100) a page, and the
    offset of the next page in ``x-ms-continuation-token``."""

    instances: dict[str, dict[str, Any]]
    requests: list[dict[str, Any]]

    def do_GET(self) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        self.requests.append(query)
        since = _parse_time(query["createdTimeFrom"]) if "createdTimeFrom" in query else None
        rows = [i for i in self.instances.values() if since is None or _parse_time(i["createdTime"]) >= since]
        top, offset = int(query.get("top", EXTENSION_PAGE)), int(self.headers.get("x-ms-continuation-token") or 0)
        body = json.dumps(rows[offset : offset + top]).encode()
        self.send_response(200)
        if offset + top < len(rows):
            self.send_header("x-ms-continuation-token", str(offset + top))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeDurable:
    """Instances by id; ``start_new`` refuses an existing id like a host with NonRunningStates would."""

    def __init__(self, rpc_base_url: str = "http://127.0.0.1:7999/durabletask/") -> None:
        self.instances: dict[str, dict[str, Any]] = {}
        self.started: list[tuple[str, str, Any]] = []
        self.events: list[tuple[str, str, Any]] = []
        self.race_on_start = False
        self.fail_start = False
        self._sdk = df.DurableOrchestrationClient(BINDING)
        self._orchestration_bindings = SimpleNamespace(rpc_base_url=rpc_base_url)  # where the SDK keeps it

    def add(
        self,
        instance_id: str,
        name: str,
        status: str = "Running",
        *,
        custom: Any = None,
        created: str = "2026-01-01T00:00:00Z",
        output: Any = None,
        input: Any = None,
    ) -> None:
        self.instances[instance_id] = {
            "name": name,
            "instanceId": instance_id,
            "runtimeStatus": status,
            "createdTime": created,
            "lastUpdatedTime": created,
            "customStatus": custom,
            "output": output,
            "input": input,
        }

    async def start_new(
        self, orchestration_function_name: str, instance_id: str | None = None, client_input: Any | None = None
    ) -> str:
        assert instance_id is not None
        if self.race_on_start:  # another delivery got there between our check and our start
            self.add(instance_id, orchestration_function_name)
        if self.fail_start or instance_id in self.instances:
            raise Exception(f"An instance with ID '{instance_id}' already exists.")  # what the SDK raises
        self.started.append((orchestration_function_name, instance_id, client_input))
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.add(instance_id, orchestration_function_name, "Pending", created=now)
        return instance_id

    async def get_status(
        self, instance_id: str, show_history: bool = False, show_history_output: bool = False, show_input: bool = False
    ) -> Any:
        raw = self.instances.get(instance_id)
        return DurableOrchestrationStatus.from_json(raw if raw else {})

    def create_check_status_response(self, request: func.HttpRequest, instance_id: str) -> func.HttpResponse:
        return self._sdk.create_check_status_response(request, instance_id)

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None:
        self.events.append((instance_id, event_name, event_data))


@pytest.fixture
def listing_requests() -> list[dict[str, Any]]:
    """The query of every listing request the fake's extension answered."""
    return []


@pytest.fixture
def durable(listing_requests: list[dict[str, Any]]) -> Iterator[FakeDurable]:
    instances: dict[str, dict[str, Any]] = {}
    handler = type("Handler", (Listing,), {"instances": instances, "requests": listing_requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake = FakeDurable(f"http://127.0.0.1:{server.server_address[1]}/durabletask/")
    fake.instances = instances
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def app_settings(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, tmp_path: Path) -> Any:
    """The default settings on the session's Azurite, read fresh for each test (the session's env must not leak in)."""
    from backends import settings

    for spec in settings.SPECS:
        monkeypatch.delenv(spec.name, raising=False)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    settings.current.cache_clear()
    yield settings.current()
    settings.current.cache_clear()
