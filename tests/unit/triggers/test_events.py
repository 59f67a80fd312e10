from __future__ import annotations

import asyncio
import logging
from typing import Any

import azure.functions as func
import pytest

from backends.settings import Settings
from tests.unit.triggers.conftest import FakeDurable
from triggers.events import InvalidEvent, ModelRegistered, on_model_registered, parse_event
from triggers.inputs import release_input

TYPE = "Microsoft.MachineLearningServices.ModelRegistered"
handler = on_model_registered.build().get_user_function().client_function


def grid(
    version: Any = 3, *, event_type: str = TYPE, name: str = "diabetes-ridge", event_id: str = "e1", data: Any = None
) -> func.EventGridEvent:
    payload = {"ModelName": name, "ModelVersion": version, "ModelTags": {}, "ModelProperties": {}}
    return func.EventGridEvent(
        id=event_id,
        data=payload if data is None else data,
        topic="/ws",
        subject=f"models/{name}:{version}",
        event_type=event_type,
        event_time=None,
        data_version="",
    )


def cloud(version: Any = "4") -> func.CloudEvent:
    return func.CloudEvent(
        id="c1",
        source="/ws",
        type=TYPE,
        specversion="1.0",
        subject=f"models/diabetes-ridge:{version}",
        data={"ModelName": "diabetes-ridge", "ModelVersion": version},
    )


@pytest.mark.parametrize(("raw", "version"), [(3, "3"), ("3", "3"), (3.0, "3"), (" 12 ", "12"), ("1.0.2", "1.0.2")])
def test_version_as_string_or_number(raw: Any, version: str) -> None:
    assert parse_event(grid(raw), "diabetes-ridge") == ModelRegistered("diabetes-ridge", version, "e1")


def test_cloud_event_schema() -> None:
    assert parse_event(cloud(4), "diabetes-ridge") == ModelRegistered("diabetes-ridge", "4", "c1")


def test_other_types_and_models_are_ignored_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="triggers.events")
    assert parse_event(grid(event_type="Microsoft.MachineLearningServices.ModelDeployed"), "diabetes-ridge") is None
    assert parse_event(grid(name="other-model"), "diabetes-ridge") is None
    assert "ModelDeployed" in caplog.text and "other-model" in caplog.text


def test_subject_is_the_fallback_for_missing_data() -> None:
    event = grid(data={})
    assert parse_event(event, "diabetes-ridge") == ModelRegistered("diabetes-ridge", "3", "e1")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (True, "string or a number"),
        (None, "string or a number"),
        (2.5, "whole number"),
        ("a/b", "not a valid version"),
        ("", "not a valid version"),
    ],
)
def test_bad_versions_are_named(raw: Any, says: str) -> None:
    event = func.EventGridEvent(
        id="e",
        data={"ModelName": "diabetes-ridge", "ModelVersion": raw},
        topic="",
        subject="",
        event_type=TYPE,
        event_time=None,
        data_version="",
    )
    with pytest.raises(InvalidEvent, match=says):
        parse_event(event, "diabetes-ridge")


def test_redelivery_starts_one_release(durable: FakeDurable) -> None:
    for event in (grid(3), grid("3", event_id="e2"), cloud(3)):
        asyncio.run(handler(event, durable))
    assert len(durable.started) == 1
    name, instance_id, payload = durable.started[0]
    assert (name, instance_id) == ("release", "release-diabetes-ridge-3")
    assert payload["version"] == "3" and payload["event_id"] == "e1" and payload["model_name"] == "diabetes-ridge"
    assert payload["config"]["api_test"]["requests"] == 50


def test_production_p99_limit_defaults_to_the_qa_one() -> None:
    base = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "API_TEST_MAX_P99_MS": "300"}
    same = release_input(Settings.from_env(base), "3", "e")["config"]
    assert same["api_test"]["max_p99_ms"] == same["api_test_production"]["max_p99_ms"] == 300
    own = release_input(Settings.from_env({**base, "PROD_API_TEST_MAX_P99_MS": "20"}), "3", "e")["config"]
    assert (own["api_test"]["max_p99_ms"], own["api_test_production"]["max_p99_ms"]) == (300, 20)


def test_invalid_and_foreign_events_start_nothing(durable: FakeDurable, caplog: pytest.LogCaptureFixture) -> None:
    asyncio.run(handler(grid(True), durable))
    asyncio.run(handler(grid(3, name="other"), durable))
    assert durable.started == []
    assert "dropped" in caplog.text


def test_a_registration_of_another_model_starts_its_release_to_its_own_endpoints(durable: FakeDurable) -> None:
    asyncio.run(handler(grid(2, name="breast-cancer"), durable))
    ((name, instance_id, payload),) = durable.started
    assert (name, instance_id, payload["model_name"]) == ("release", "release-breast-cancer-2", "breast-cancer")
    config = payload["config"]
    assert config["endpoint_prefix"] == "breast-cancer-"
    assert config["api_test"] == {"requests": 50, "max_p99_ms": 500.0, "max_error_rate": 0.01}  # the spec's qa step
    default = release_input(Settings.from_env({}), "3", "e")["config"]
    assert default["endpoint_prefix"] == ""
