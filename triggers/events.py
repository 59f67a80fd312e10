"""Model registered (Event Grid or CloudEvents schema) → one release per model version, ever.

Deliveries are at least once and unordered; ``ModelVersion`` may be a string or a number. Events of
another type or for another model are ignored with a log line; a malformed event is logged and
dropped (redelivering it cannot make it valid).
"""

import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from backends.settings import current
from orchestrators.ids import release_id
from orchestrators.names import MODEL_REGISTERED, RELEASE
from services.catalog import catalog, spec_of
from triggers.durable import DurableClient, start_once
from triggers.inputs import release_input
from triggers.names import ON_MODEL_REGISTERED

log = logging.getLogger(__name__)
bp = df.Blueprint()

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SUBJECT = re.compile(r"^models/(?P<name>[^:/]+):(?P<version>[^:/]+)$")


class InvalidEvent(ValueError):
    """An event of the right type that cannot be acted on; the message says what is wrong."""


@dataclass(frozen=True)
class ModelRegistered:
    model: str
    version: str
    event_id: str


def _version(raw: Any) -> str:
    if isinstance(raw, bool) or raw is None:
        raise InvalidEvent(f"ModelVersion must be a string or a number, got {raw!r}")
    if isinstance(raw, float):
        if not raw.is_integer():
            raise InvalidEvent(f"ModelVersion must be a whole number, got {raw!r}")
        raw = int(raw)
    version = str(raw).strip()
    if not _VERSION.match(version):
        raise InvalidEvent(f"ModelVersion {raw!r} is not a valid version (letters, digits, '.', '_', '-')")
    return version


def parse_model_registered(
    event_type: str | None, event_id: str | None, subject: str | None, data: Any, released: str | Collection[str]
) -> ModelRegistered | None:
    """The registration this event announces, or None when it is not ours (another type, or a model not among
    ``released``: the app's runnable models)."""
    names = {released} if isinstance(released, str) else set(released)
    if event_type != MODEL_REGISTERED:
        log.info("event %s of type %r ignored: only %s is handled", event_id, event_type, MODEL_REGISTERED)
        return None
    payload: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
    from_subject = _SUBJECT.match(subject or "")
    name = payload.get("ModelName") or (from_subject["name"] if from_subject else None)
    raw_version = payload.get("ModelVersion", from_subject["version"] if from_subject else None)
    if not name:
        raise InvalidEvent(f"event {event_id}: no ModelName in data nor a models/<name>:<version> subject")
    if name not in names:
        log.info("event %s for model %r ignored: this app releases %s", event_id, name, ", ".join(sorted(names)))
        return None
    if not event_id:
        raise InvalidEvent("event without an id")
    return ModelRegistered(str(name), _version(raw_version), str(event_id))


def parse_event(
    event: func.EventGridEvent | func.CloudEvent, released: str | Collection[str]
) -> ModelRegistered | None:
    """``parse_model_registered`` for either schema the Event Grid trigger delivers."""
    if isinstance(event, func.CloudEvent):
        return parse_model_registered(event.type, event.id, event.subject, event.get_json(), released)
    return parse_model_registered(event.event_type, event.id, event.subject, event.get_json(), released)


def runnable_models() -> list[str]:
    """The models the app releases: the default one and every model whose spec loaded."""
    models = catalog()
    return sorted({models.default, *(spec.name for spec in models.usable())})


async def start_release(client: DurableClient, registered: ModelRegistered) -> str:
    """Start (once) the release of a registered version; returns the instance id."""
    instance_id = release_id(registered.model, registered.version)
    payload = release_input(current(), registered.version, registered.event_id, spec_of(registered.model))
    started = await start_once(client, RELEASE, instance_id, payload)
    log.info("event %s: release %s %s", registered.event_id, instance_id, "started" if started else "already exists")
    return instance_id


@bp.function_name(ON_MODEL_REGISTERED)
@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def on_model_registered(event: func.EventGridEvent, client: DurableClient) -> None:
    try:
        registered = parse_event(event, runnable_models())
    except InvalidEvent as exc:
        log.error("model registered event dropped: %s", exc)
        return
    if registered is not None:
        await start_release(client, registered)
