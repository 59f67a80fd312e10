"""NCRONTAB occurrences and Event Grid / CloudEvents deliveries as the webhook receives them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from devhost.eventgrid import handle_delivery
from devhost.ncrontab import Schedule

T0 = datetime(2026, 11, 24, 1, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 0 2 * * *", T0, datetime(2026, 11, 24, 2, 0, 0, tzinfo=UTC)),
        ("0 0 2 * * *", datetime(2026, 11, 24, 2, 0, 0, tzinfo=UTC), datetime(2026, 11, 25, 2, 0, 0, tzinfo=UTC)),
        ("*/15 * * * * *", T0, datetime(2026, 11, 24, 2, 0, 0, tzinfo=UTC)),
        ("0 30 9 * * 1-5", T0, datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        ("0 30 9 * * SAT", T0, datetime(2026, 11, 28, 9, 30, tzinfo=UTC)),
        ("0 0 0 1 JAN *", T0, datetime(2027, 1, 1, tzinfo=UTC)),
        ("00:05:00", T0, datetime(2026, 11, 24, 2, 4, 59, tzinfo=UTC)),
    ],
)
def test_next_occurrence(expr: str, after: datetime, expected: datetime) -> None:
    assert Schedule.parse(expr).next_after(after) == expected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 2 * * *", "expected 6 NCRONTAB fields"),
        ("0 61 * * * *", "the minute field '61' is not valid"),
        ("0 0 25 * * *", "the hour field '25' is not valid"),
        ("00:00:00", "must be positive"),
    ],
)
def test_bad_schedule_is_named(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Schedule.parse(expr)


MODEL_REGISTERED: dict[str, Any] = {
    "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws",
    "subject": "models/diabetes-ridge:3",
    "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
    "eventTime": "2026-11-24T18:41:00.9584103Z",
    "id": "831e1650-001e-001b-66ab-eeb76e069631",
    "data": {"ModelName": "diabetes-ridge", "ModelVersion": 3, "ModelTags": {}, "ModelProperties": {}},
    "dataVersion": "",
    "metadataVersion": "1",
}


def test_event_grid_array_gives_one_event_each() -> None:
    second = {**MODEL_REGISTERED, "id": "x2", "data": {**MODEL_REGISTERED["data"], "ModelVersion": "4"}}
    delivery = handle_delivery({"aeg-event-type": "Notification"}, json.dumps([MODEL_REGISTERED, second]).encode())
    assert delivery.error is None and delivery.validation_response is None
    first, other = delivery.events
    assert isinstance(first, func.EventGridEvent)
    assert first.event_type == "Microsoft.MachineLearningServices.ModelRegistered"
    assert first.subject == "models/diabetes-ridge:3"
    assert first.get_json()["ModelVersion"] == 3
    assert isinstance(other, func.EventGridEvent) and other.get_json()["ModelVersion"] == "4"


def test_subscription_validation_handshake() -> None:
    event = {
        "id": "v",
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "subject": "",
        "eventTime": "2026-11-24T00:00:00Z",
        "dataVersion": "2",
        "data": {"validationCode": "512d38b6"},
    }
    delivery = handle_delivery({"aeg-event-type": "SubscriptionValidation"}, json.dumps([event]).encode())
    assert delivery.validation_response == {"validationResponse": "512d38b6"}
    assert delivery.events == []


def test_cloud_events_single_and_batch() -> None:
    event = {
        "specversion": "1.0",
        "id": "c1",
        "source": "/workspaces/ws",
        "type": MODEL_REGISTERED["eventType"],
        "subject": "models/diabetes-ridge:5",
        "time": "2026-11-24T00:00:00Z",
        "data": {"ModelVersion": "5"},
    }
    single = handle_delivery({"content-type": "application/cloudevents+json"}, json.dumps(event).encode())
    batch = handle_delivery({"content-type": "application/cloudevents-batch+json"}, json.dumps([event]).encode())
    for delivery in (single, batch):
        (decoded,) = delivery.events
        assert isinstance(decoded, func.CloudEvent)
        assert decoded.subject == "models/diabetes-ridge:5"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the delivery is not valid JSON"),
        (b'{"id": "x"}', "JSON array of events"),
        (b"[]", "holds no event"),
        (json.dumps([{"id": "1", "eventType": "t"}]).encode(), "event 0 lacks subject, eventTime, data, dataVersion"),
        (json.dumps([MODEL_REGISTERED, 5]).encode(), "event 1 is not a JSON object"),
        (json.dumps([{"specversion": "1.0", "id": "1"}]).encode(), "event 0 lacks source, type"),
    ],
)
def test_malformed_delivery_is_named(body: bytes, message: str) -> None:
    delivery = handle_delivery({}, body)
    assert delivery.events == []
    assert delivery.error is not None and message in delivery.error
