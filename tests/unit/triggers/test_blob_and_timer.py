from __future__ import annotations

import asyncio
from datetime import date

from azure.functions.blob import InputStream
from azure.functions.timer import TimerRequest

from orchestrators.ids import retrain_id_for_blob, retrain_id_nightly
from tests.unit.triggers.conftest import FakeDurable
from triggers import blob, timer

on_blob_drop = blob.on_blob_drop.build().get_user_function().client_function
nightly_retrain = timer.nightly_retrain.build().get_user_function().client_function


def arrival(name: str, etag: str) -> InputStream:
    return InputStream(
        data=b"age,sex\n",
        name=f"incoming/{name}",
        uri=f"http://127.0.0.1/devstoreaccount1/incoming/{name}",
        length=8,
        blob_properties={"ETag": etag, "Length": 8},
        metadata={},
    )


def test_one_retrain_per_blob_version(durable: FakeDurable) -> None:
    for event in (arrival("a.csv", "0x1"), arrival("a.csv", '"0x1"'), arrival("a.csv", "0x2")):
        asyncio.run(on_blob_drop(event, durable))
    assert [started[1] for started in durable.started] == [
        retrain_id_for_blob("a.csv", "0x1"),
        retrain_id_for_blob("a.csv", "0x2"),
    ]
    _, _, payload = durable.started[0]
    assert payload["trigger"] == "blob"
    assert payload["data"] == "incoming/a.csv"
    assert payload["etag"] == "0x1"
    assert payload["config"]["incoming"] == "incoming" and payload["config"]["poll_seconds"] == 5.0


def test_nightly_retrain_once_per_day_on_the_dataset(durable: FakeDurable) -> None:
    day = date(2026, 3, 4)
    assert asyncio.run(timer.start_nightly(durable, day)) == "retrain-nightly-20260304" == retrain_id_nightly(day)
    asyncio.run(timer.start_nightly(durable, day))
    asyncio.run(nightly_retrain(TimerRequest(past_due=True), durable))
    assert len(durable.started) == 2
    assert durable.started[0][2]["data"] is None and durable.started[0][2]["trigger"] == "timer"
