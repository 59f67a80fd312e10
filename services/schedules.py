"""Which models' scheduled retrains are due: each model's own NCRONTAB schedule, looked at on every timer tick.

A timer trigger's schedule is fixed when the app starts, so one timer ticks often (``triggers/timer.py``) and asks
here, for the window since the tick before, which models had an occurrence of their own schedule in it. The default
model (``MODEL_NAME``) retrains on ``RETRAIN_SCHEDULE``, as its other policies come from the settings; every other
model on its spec's ``schedule`` (``RETRAIN_SCHEDULE`` when the spec has none). Each due model is given its latest
occurrence in the window only: after downtime a model retrains once, on the newest occurrence it missed. A disabled
model (its spec has problems) is never due; it is listed apart so the caller can say so. Pure: the caller gives the
clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ml.ncrontab import Schedule
from ml.spec import ModelSpec
from services.catalog import Catalog, ModelEntry


@dataclass(frozen=True)
class Due:
    """One model's retrain to start: its name, its spec (None for the default model) and the occurrence."""

    model: str
    spec: ModelSpec | None
    occurrence: datetime


@dataclass(frozen=True)
class Plan:
    """What one tick starts (in model order), and the models skipped because their spec is disabled."""

    due: tuple[Due, ...]
    disabled: tuple[ModelEntry, ...]


def schedules(models: Catalog, default_schedule: str) -> dict[str, tuple[Schedule, ModelSpec | None]]:
    """Every enabled model's schedule (and spec, None for the default model), by model name."""
    found: dict[str, tuple[Schedule, ModelSpec | None]] = {models.default: (Schedule.parse(default_schedule), None)}
    for spec in models.usable():
        if spec.name != models.default:
            found[spec.name] = (Schedule.parse(spec.schedule), spec)
    return found


def due_retrains(models: Catalog, default_schedule: str, after: datetime, until: datetime) -> Plan:
    """The models with an occurrence of their schedule in ``(after, until]``, each with its latest one."""
    due = []
    for name, (schedule, spec) in sorted(schedules(models, default_schedule).items()):
        occurrence = schedule.latest_between(after, until)
        if occurrence is not None:
            due.append(Due(name, spec, occurrence))
    disabled = tuple(entry for entry in models.disabled() if entry.name != models.default)
    return Plan(tuple(due), disabled)
