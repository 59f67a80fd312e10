from __future__ import annotations

import asyncio

import pytest

from tests.unit.triggers.conftest import FakeDurable
from triggers.durable import StartFailed, start_once, status_to_dict


def test_starts_a_new_instance(durable: FakeDurable) -> None:
    assert asyncio.run(start_once(durable, "retrain", "retrain-1", {"x": 1})) is True
    assert durable.started == [("retrain", "retrain-1", {"x": 1})]


def test_an_existing_instance_is_left_alone_whatever_its_status(durable: FakeDurable) -> None:
    durable.add("retrain-1", "retrain", "Completed")
    assert asyncio.run(start_once(durable, "retrain", "retrain-1", {})) is False
    assert durable.started == []


def test_losing_a_race_is_nothing_to_do(durable: FakeDurable) -> None:
    durable.race_on_start = True
    assert asyncio.run(start_once(durable, "retrain", "retrain-1", {})) is False


def test_a_start_that_fails_without_an_instance_is_an_error(durable: FakeDurable) -> None:
    durable.fail_start = True
    with pytest.raises(StartFailed, match="retrain-1"):
        asyncio.run(start_once(durable, "retrain", "retrain-1", {}))


def test_status_to_dict_reads_the_sdk_status(durable: FakeDurable) -> None:
    durable.add(
        "retrain-1",
        "retrain",
        "Completed",
        custom={"stage": "register"},
        created="2026-01-01T00:00:00.5Z",
        output={"outcome": "registered"},
    )
    raw = status_to_dict(asyncio.run(durable.get_status("retrain-1")))
    assert raw["runtimeStatus"] == "Completed"
    assert raw["customStatus"] == {"stage": "register"}
    assert raw["createdTime"] == "2026-01-01T00:00:00.500000Z"
    assert raw["instanceId"] == "retrain-1"
