"""The Event Grid webhook's body: subscription validation, Event Grid schema arrays and CloudEvents.

Each event is decoded by the worker's own converter, so the function receives exactly the
``func.EventGridEvent`` (or ``func.CloudEvent``) the Azure Functions Python worker would build.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from devhost import jsonio

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
EVENTGRID_REQUIRED = ("id", "eventType", "subject", "eventTime", "data", "dataVersion")
CLOUDEVENT_REQUIRED = ("id", "source", "type", "specversion")


@dataclass
class Delivery:
    validation_response: dict[str, Any] | None = None
    events: list[object] = field(default_factory=list)
    error: str | None = None


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def _missing(event: Any, required: tuple[str, ...], index: int) -> str | None:
    if not isinstance(event, dict):
        return f"event {index} is not a JSON object"
    absent = [key for key in required if key not in event]
    return f"event {index} lacks {', '.join(absent)}" if absent else None


def _decode(event: dict[str, Any]) -> object:
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata=None)


def handle_delivery(headers: Mapping[str, str], body: bytes) -> Delivery:
    """Parse one webhook POST: a validation handshake, or the events to invoke the function with (one each)."""
    try:
        payload = jsonio.parse(body or b"null", "the delivery")
    except jsonio.BadJson as exc:
        return Delivery(error=str(exc))
    content_type = _header(headers, "content-type").lower()
    if isinstance(payload, dict) and "specversion" in payload:
        return _cloud_events([payload])
    if not isinstance(payload, list):
        return Delivery(error="an Event Grid delivery is a JSON array of events (or one CloudEvent object)")
    if "cloudevents" in content_type or (payload and isinstance(payload[0], dict) and "specversion" in payload[0]):
        return _cloud_events(payload)
    return _eventgrid_events(payload, _header(headers, "aeg-event-type"))


def _eventgrid_events(payload: list[Any], event_type_header: str) -> Delivery:
    if not payload:
        return Delivery(error="the delivery holds no event")
    first = payload[0]
    if event_type_header == "SubscriptionValidation" or (
        isinstance(first, dict) and first.get("eventType") == VALIDATION_EVENT
    ):
        code = first.get("data", {}).get("validationCode") if isinstance(first, dict) else None
        if not code:
            return Delivery(error="subscription validation event without data.validationCode")
        return Delivery(validation_response={"validationResponse": code})
    for index, event in enumerate(payload):
        problem = _missing(event, EVENTGRID_REQUIRED, index)
        if problem:
            return Delivery(error=problem)
    return Delivery(events=[_decode(event) for event in payload])


def _cloud_events(payload: list[Any]) -> Delivery:
    if not payload:
        return Delivery(error="the delivery holds no event")
    for index, event in enumerate(payload):
        problem = _missing(event, CLOUDEVENT_REQUIRED, index)
        if problem:
            return Delivery(error=problem)
    return Delivery(events=[_decode(event) for event in payload])
