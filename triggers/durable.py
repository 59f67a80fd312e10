"""The Durable client as the triggers use it: a narrow Protocol, start-once, and status → plain dict.

The SDK's ``DurableOrchestrationClient`` satisfies ``DurableClient``; unit tests pass a fake that
implements the same Protocol. Starting is idempotent: the instance id is derived from the event
(one blob version, one model version, one night), and an existing instance means nothing to do.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from triggers.runs import iso

log = logging.getLogger(__name__)


class StartFailed(RuntimeError):
    """The orchestration could not be started and does not exist."""


class DurableClient(Protocol):
    """The part of ``DurableOrchestrationClient`` the triggers use."""

    async def start_new(
        self, orchestration_function_name: str, instance_id: str | None = None, client_input: Any | None = None
    ) -> str: ...

    async def get_status(
        self, instance_id: str, show_history: bool = False, show_history_output: bool = False, show_input: bool = False
    ) -> Any: ...

    async def get_status_all(self) -> list[Any]: ...

    def create_check_status_response(self, request: Any, instance_id: str) -> Any: ...


def status_to_dict(status: Any) -> dict[str, Any]:
    """A ``DurableOrchestrationStatus`` as the plain dict ``triggers.runs`` reads."""
    runtime = getattr(status, "runtime_status", None)
    return {
        "name": getattr(status, "name", None),
        "instanceId": getattr(status, "instance_id", None),
        "runtimeStatus": getattr(runtime, "value", runtime),
        "input": getattr(status, "input_", None),
        "output": getattr(status, "output", None),
        "customStatus": getattr(status, "custom_status", None),
        "createdTime": iso(getattr(status, "created_time", None)),
        "lastUpdatedTime": iso(getattr(status, "last_updated_time", None)),
    }


async def exists(client: DurableClient, instance_id: str) -> bool:
    """True when an orchestration with this id exists, whatever its runtime status."""
    return bool(await client.get_status(instance_id))


async def start_once(client: DurableClient, orchestrator: str, instance_id: str, payload: dict[str, Any]) -> bool:
    """Start ``orchestrator`` as ``instance_id`` unless it already exists; True when this call started it.

    Not atomic: two deliveries can race between the check and the start. The host is configured with
    ``overridableExistingInstanceStates: NonRunningStates``, so the loser's ``start_new`` fails; the
    failure is then resolved by looking again (the instance exists: nothing to do).
    """
    if await exists(client, instance_id):
        log.info("orchestration %s already exists: nothing to do", instance_id)
        return False
    try:
        await client.start_new(orchestrator, instance_id, payload)
    except Exception as exc:  # the SDK raises bare Exception for every non-2xx answer
        if await exists(client, instance_id):
            log.info("orchestration %s was started concurrently: nothing to do", instance_id)
            return False
        raise StartFailed(f"could not start {orchestrator} as {instance_id}: {exc}") from exc
    log.info("started %s as %s", orchestrator, instance_id)
    return True
