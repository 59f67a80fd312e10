"""Blue/green on any ``Endpoints`` port: pick the free slot, deploy, shift traffic, remove — each idempotent."""

from __future__ import annotations

from typing import Any

from backends.ports import Endpoints, ModelRegistry

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


def deploy(endpoints: Endpoints, registry: ModelRegistry, endpoint: str, model_name: str, version: str, *,
           exclusive: bool) -> dict[str, Any]:
    """Deploy beside the current version; ``exclusive`` (QA) also moves all traffic and drops the other slot."""
    state = endpoints.state(endpoint)
    slot = pick_slot(state.deployments, state.traffic, version)
    others = {s: v for s, v in state.deployments.items() if s != slot}
    previous_slot = max(others, key=lambda s: state.traffic.get(s, 0)) if others else None
    if state.deployments.get(slot) != version:
        state = endpoints.deploy(endpoint, slot, registry.get(model_name, version))
    if exclusive:
        state = endpoints.set_traffic(endpoint, {slot: 100, **dict.fromkeys(others, 0)})
        for other in others:
            state = endpoints.remove(endpoint, other)
    return {"slot": slot, "previous_slot": None if exclusive else previous_slot,
            "previous_version": others.get(previous_slot) if previous_slot else None, "state": state.public()}


def set_traffic(endpoints: Endpoints, endpoint: str, traffic: dict[str, int]) -> dict[str, Any]:
    state = endpoints.state(endpoint)
    wanted = {slot: int(pct) for slot, pct in traffic.items() if slot in state.deployments}
    if {s: state.traffic.get(s, 0) for s in wanted} != wanted:
        state = endpoints.set_traffic(endpoint, wanted)
    return state.public()


def remove(endpoints: Endpoints, endpoint: str, slot: str) -> dict[str, Any]:
    state = endpoints.state(endpoint)
    if slot in state.deployments:
        state = endpoints.remove(endpoint, slot)
    return state.public()
