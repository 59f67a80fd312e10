"""Blue/green on any ``Endpoints`` port: pick the slot, then begin each change (deploy, traffic, removal) as a long
operation that the release orchestration polls with durable timers. Every function is idempotent: called again (a
retried activity) it finds the operation already under way or done and returns its status instead of starting it
again.
"""

from __future__ import annotations

from typing import Any

from backends.ports import DeploymentRequest, Endpoints, ModelRegistry, Operation

SLOTS = ("blue", "green")


def pick_slot(deployments: dict[str, str], traffic: dict[str, int], version: str) -> str:
    """The slot already holding ``version``, else an empty slot, else the one taking less traffic."""
    for slot, deployed in deployments.items():
        if deployed == version:
            return slot
    for slot in SLOTS:
        if slot not in deployments:
            return slot
    return min(SLOTS, key=lambda s: (traffic.get(s, 0), s))


def begin_deploy(
    endpoints: Endpoints, registry: ModelRegistry, endpoint: str, model_name: str, version: str
) -> dict[str, Any]:
    """Begin deploying ``version`` beside what the endpoint serves; the answer names the slot, the slot serving
    now (if another) and the operation's status to poll."""
    state = endpoints.state(endpoint)
    slot = pick_slot(state.deployments, state.traffic, version)
    others = {s: v for s, v in state.deployments.items() if s != slot}
    previous_slot = max(others, key=lambda s: state.traffic.get(s, 0)) if others else None
    request = DeploymentRequest(endpoint, slot, model_name, version)
    status = endpoints.begin_deploy(request, registry.get(model_name, version))
    return {
        "slot": slot,
        "previous_slot": previous_slot,
        "previous_version": others.get(previous_slot) if previous_slot else None,
        "others": sorted(others),
        "status": status.to_dict(),
    }


def begin_traffic(endpoints: Endpoints, endpoint: str, traffic: dict[str, int]) -> dict[str, Any]:
    """Begin moving traffic; slots the endpoint does not hold are left out (a rollback after a removal)."""
    state = endpoints.state(endpoint)
    wanted = {slot: int(pct) for slot, pct in traffic.items() if slot in state.deployments}
    return endpoints.begin_traffic(endpoint, wanted).to_dict()


def begin_remove(endpoints: Endpoints, endpoint: str, slot: str) -> dict[str, Any]:
    return endpoints.begin_remove(endpoint, slot).to_dict()


def operation_status(endpoints: Endpoints, operation: dict[str, Any]) -> dict[str, Any]:
    return endpoints.operation_status(Operation.from_dict(operation)).to_dict()
