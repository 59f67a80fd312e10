"""Two deployment slots (blue/green) and the traffic split, swapped atomically.

Every change builds a new immutable ``Routing`` and replaces one reference, so a request in flight keeps the
model it started with and no request sees a half-made state. The split is a 100-entry table walked by a
counter: O(1) per request and exact over any 100 consecutive requests.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import LoadedModel

SLOTS = ("blue", "green")


class SlotError(ValueError):
    pass


@dataclass(frozen=True)
class Routing:
    models: dict[str, LoadedModel] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    table: tuple[LoadedModel, ...] = ()

    @classmethod
    def build(cls, models: dict[str, LoadedModel], traffic: dict[str, int]) -> Routing:
        table = tuple(
            itertools.chain.from_iterable(
                [models[s]] * pct for s, pct in sorted(traffic.items()) if pct > 0 and s in models
            )
        )
        return cls(dict(models), dict(traffic), table)

    def state(self) -> dict[str, Any]:
        return {
            "deployments": {
                s: {"version": m.version, "model_dir": m.model_dir, "fast_path": m.fast}
                for s, m in sorted(self.models.items())
            },
            "traffic": {s: self.traffic.get(s, 0) for s in sorted(self.models)},
        }


class Slots:
    def __init__(self, state_file: Path | None = None) -> None:
        self.routing = Routing()
        self.state_file = state_file
        self._counter = itertools.count()

    def pick(self) -> LoadedModel | None:
        table = self.routing.table
        return table[next(self._counter) % len(table)] if table else None

    def install(self, slot: str, model: LoadedModel) -> None:
        _check_slot(slot)
        current = self.routing
        models = {**current.models, slot: model}
        traffic = dict(current.traffic)
        if not any(pct > 0 for s, pct in traffic.items() if s in current.models):
            traffic = {slot: 100}
        traffic.setdefault(slot, 0)
        self._swap(Routing.build(models, traffic))

    def remove(self, slot: str) -> None:
        _check_slot(slot)
        current = self.routing
        models = {s: m for s, m in current.models.items() if s != slot}
        traffic = {s: p for s, p in current.traffic.items() if s != slot}
        if models and sum(traffic.values()) != 100:
            traffic = {s: (100 if i == 0 else 0) for i, s in enumerate(sorted(models))}
        self._swap(Routing.build(models, traffic))

    def set_traffic(self, traffic: dict[str, Any]) -> None:
        current = self.routing
        unknown = [s for s in traffic if s not in current.models]
        if unknown:
            raise SlotError(
                f"no deployment in slot(s) {', '.join(map(str, unknown))}; deployed: "
                f"{', '.join(sorted(current.models)) or 'none'}"
            )
        if not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 100 for p in traffic.values()):
            raise SlotError("traffic percentages must be integers from 0 to 100")
        merged = {s: int(traffic.get(s, 0)) for s in current.models}
        if sum(merged.values()) != 100:
            raise SlotError(f"traffic must add up to 100 over the deployed slots, got {sum(merged.values())}")
        self._swap(Routing.build(current.models, merged))

    def _swap(self, routing: Routing) -> None:
        self.routing = routing
        if self.state_file is not None:
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(routing.state(), indent=1))
            os.replace(tmp, self.state_file)


def _check_slot(slot: str) -> None:
    if slot not in SLOTS:
        raise SlotError(f"unknown slot {slot!r}; expected one of {', '.join(SLOTS)}")
