"""A Durable client fake implementing ``triggers.durable.DurableClient`` over an in-memory instance table.

Statuses are the SDK's own ``DurableOrchestrationStatus`` and the check-status response is built by
the SDK's own ``DurableOrchestrationClient`` from a binding payload like the host's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


class FakeDurable:
    """Instances by id; ``start_new`` refuses an existing id like a host with NonRunningStates would."""

    def __init__(self) -> None:
        self.instances: dict[str, dict[str, Any]] = {}
        self.started: list[tuple[str, str, Any]] = []
        self.race_on_start = False
        self.fail_start = False
        self._sdk = df.DurableOrchestrationClient(BINDING)

    def add(
        self,
        instance_id: str,
        name: str,
        status: str = "Running",
        *,
        custom: Any = None,
        created: str = "2026-01-01T00:00:00Z",
        output: Any = None,
    ) -> None:
        self.instances[instance_id] = {
            "name": name,
            "instanceId": instance_id,
            "runtimeStatus": status,
            "createdTime": created,
            "lastUpdatedTime": created,
            "customStatus": custom,
            "output": output,
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

    async def get_status_all(self) -> list[Any]:
        return [DurableOrchestrationStatus.from_json(raw) for raw in self.instances.values()]

    def create_check_status_response(self, request: func.HttpRequest, instance_id: str) -> func.HttpResponse:
        return self._sdk.create_check_status_response(request, instance_id)


@pytest.fixture
def durable() -> FakeDurable:
    return FakeDurable()


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
