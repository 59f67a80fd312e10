"""The ModelRegistered sink against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from backends.local.events import EVENT_TYPE, ModelEventSink, with_code
from tests.support.azurite import free_port
from tests.unit.backends.support import recording_server


def test_posts_one_event_grid_event(tmp_path: Path) -> None:
    with recording_server() as server:
        sink = ModelEventSink(
            f"{server.url}/runtime/webhooks/eventgrid?functionName=on_model_registered",
            tmp_path / "outbox",
            key="s3cret",
        )
        assert sink.model_registered("diabetes-ridge", "3", {"job_id": "j1"})
    [request] = server.requests
    assert request["path"] == "/runtime/webhooks/eventgrid?functionName=on_model_registered&code=s3cret"
    assert request["headers"]["aeg-event-type"] == "Notification"
    [event] = request["body"]
    assert event["id"] == "diabetes-ridge:3"
    assert event["subject"] == "models/diabetes-ridge:3"
    assert event["eventType"] == EVENT_TYPE == "Microsoft.MachineLearningServices.ModelRegistered"
    assert event["topic"].endswith("/providers/Microsoft.MachineLearningServices/workspaces/local")
    assert event["data"] == {
        "ModelName": "diabetes-ridge",
        "ModelVersion": "3",
        "ModelTags": {"job_id": "j1"},
        "ModelProperties": {},
    }
    assert (event["dataVersion"], event["metadataVersion"]) == ("2", "1")
    assert event["eventTime"].endswith("Z")
    assert not (tmp_path / "outbox").exists()


def test_code_is_added_once() -> None:
    assert with_code("http://h/x?a=1", "k") == "http://h/x?a=1&code=k"
    assert with_code("http://h/x", "k") == "http://h/x?code=k"
    assert with_code("http://h/x?code=mine", "k") == "http://h/x?code=mine"
    assert with_code("http://h/x", None) == "http://h/x"


def test_retries_5xx_then_delivers(tmp_path: Path) -> None:
    with recording_server() as server:
        server.statuses = [503, 500]
        sink = ModelEventSink(server.url, tmp_path / "outbox", backoff_s=0.01)
        assert sink.model_registered("m", "1", {})
    assert len(server.requests) == 3
    assert sink.pending() == []


def test_4xx_is_not_retried_and_parks_the_event(tmp_path: Path) -> None:
    with recording_server() as server:
        server.statuses = [400]
        sink = ModelEventSink(server.url, tmp_path / "outbox", backoff_s=0.01)
        assert not sink.model_registered("m", "1", {})
    assert len(server.requests) == 1
    assert len(sink.pending()) == 1


def test_unreachable_webhook_goes_to_the_outbox_and_redelivers(tmp_path: Path) -> None:
    outbox = tmp_path / "events-outbox"
    down = ModelEventSink(f"http://127.0.0.1:{free_port()}/hook", outbox, attempts=2, backoff_s=0.01, timeout_s=2)
    assert not down.model_registered("m", "7", {"job_id": "j7"})
    [parked] = down.pending()
    assert json.loads(parked.read_text())["id"] == "m:7"
    with recording_server() as server:
        up = ModelEventSink(f"{server.url}/hook", outbox)
        assert up.redeliver() == 1
        assert up.redeliver() == 0
    [request] = server.requests
    assert request["body"][0]["subject"] == "models/m:7"
    assert up.pending() == []
