"""The Durable client as the triggers use it: a narrow Protocol, start-once, and status → plain dict.

The SDK's ``DurableOrchestrationClient`` satisfies ``DurableClient``; unit tests pass a fake that
implements the same Protocol. Starting is idempotent: the instance id is derived from the event
(one blob version, one model version, one night), and an existing instance means nothing to do.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

import aiohttp

from triggers.runs import iso

log = logging.getLogger(__name__)


#: instances asked for per page of the extension's listing (it answers 100 a page when not told)
LIST_PAGE = 1000
LIST_TIMEOUT_S = 60.0


class StartFailed(RuntimeError):
    """The orchestration could not be started and does not exist."""


class ListingFailed(RuntimeError):
    """The Durable extension did not answer the listing of instances (a retry may help)."""


class DurableClient(Protocol):
    """The part of ``DurableOrchestrationClient`` the triggers use."""

    async def start_new(
        self, orchestration_function_name: str, instance_id: str | None = None, client_input: Any | None = None
    ) -> str: ...

    async def get_status(
        self, instance_id: str, show_history: bool = False, show_history_output: bool = False, show_input: bool = False
    ) -> Any: ...

    def create_check_status_response(self, request: Any, instance_id: str) -> Any: ...

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None: ...


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


def _rpc_base(client: DurableClient) -> str:
    """The worker's channel to the Durable extension: the client binding's ``rpcBaseUrl``, which the SDK's client
    keeps as ``_orchestration_bindings.rpc_base_url``."""
    base = getattr(getattr(client, "_orchestration_bindings", None), "rpc_base_url", None)
    if not isinstance(base, str) or not base:
        raise ListingFailed("the Durable client binding gave no rpcBaseUrl")
    return base if base.endswith("/") else base + "/"


async def list_instances(
    client: DurableClient, created_from: datetime | None = None, cap: int = 10_000
) -> list[dict[str, Any]]:
    """The statuses (the extension's JSON, with inputs) of the instances created since ``created_from``, at most
    ``cap`` of them, in the extension's order.

    Why not the SDK's ``get_status_all``: it reads one answer of the extension's listing, and the extension pages
    that listing (100 instances unless ``top`` says otherwise, the rest behind ``x-ms-continuation-token``), so past
    100 instances it silently returns some of them. This follows the continuation token to the end, or to ``cap``.
    """
    url = _rpc_base(client) + "instances/"
    params = {"top": str(min(LIST_PAGE, cap)), "showInput": "true"}
    if created_from is not None:
        params["createdTimeFrom"] = created_from.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    found: list[dict[str, Any]] = []
    token = ""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=LIST_TIMEOUT_S)) as session:
        while len(found) < cap:
            headers = {"x-ms-continuation-token": token} if token else {}
            try:
                async with session.get(url, params=params, headers=headers) as response:
                    if response.status != 200:
                        text = (await response.text())[:300]
                        raise ListingFailed(f"listing orchestration instances: HTTP {response.status}: {text}")
                    page = await response.json(content_type=None)
                    token = response.headers.get("x-ms-continuation-token", "")
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise ListingFailed(f"listing orchestration instances: {type(exc).__name__}: {exc}") from exc
            if not isinstance(page, list):
                raise ListingFailed(f"listing orchestration instances: expected a JSON list, got {type(page).__name__}")
            found.extend(status for status in page if isinstance(status, dict))
            if not page or token in ("", "null"):
                break
    return found[:cap]
