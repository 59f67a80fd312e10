from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.functions.blob import InputStream
from azure.functions.timer import TimerRequest

from backends.settings import Settings
from messages.runs import RetrainInput
from ml.ncrontab import Schedule
from orchestrators.ids import retrain_id_for_blob, retrain_id_scheduled
from services.catalog import MODELS_ROOT, load_catalog
from tests.unit.triggers.conftest import FakeDurable
from triggers import blob, timer
from triggers.durable import StartFailed

on_blob_drop = blob.on_blob_drop.build().get_user_function().client_function
scheduled_retrains = timer.scheduled_retrains.build().get_user_function().client_function


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


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, app_settings: Settings) -> Path:
    """The timer's catalog: the shipped models (breast-cancer at 02:30), an hourly one and a broken one."""
    root = tmp_path / "models"
    for name in ("diabetes-ridge", "breast-cancer"):
        shutil.copytree(MODELS_ROOT / name, root / name)
    shutil.copytree(MODELS_ROOT / "breast-cancer", root / "hourly-cancer")
    spec = (root / "breast-cancer" / "model.yaml").read_text().replace('"0 30 2 * * *"', '"0 0 * * * *"')
    (root / "hourly-cancer" / "model.yaml").write_text(spec)
    (root / "broken").mkdir()
    (root / "broken" / "model.yaml").write_text("task: regresion\n")
    loaded = load_catalog(root, app_settings)
    monkeypatch.setattr(timer, "catalog", lambda: loaded)
    monkeypatch.setattr(timer, "_reported", set())
    return root


def started(durable: FakeDurable) -> dict[str, RetrainInput]:
    return {instance_id: RetrainInput.from_dict(payload) for _, instance_id, payload in durable.started}


def test_a_tick_starts_each_model_due_in_its_window_once(durable: FakeDurable, models: Path) -> None:
    ids = asyncio.run(timer.start_scheduled(durable, at("2026-03-04T02:28:00"), at("2026-03-04T02:30:00.2")))
    assert ids == ["retrain-schedule-breast-cancer-20260304T023000Z"]
    assert ids[0] == retrain_id_scheduled("breast-cancer", at("2026-03-04T02:30:00"))
    run = started(durable)[ids[0]]
    assert run.trigger == "timer" and run.data is None and run.etag is None
    assert run.config.model_name == "breast-cancer" and run.config.dataset_prefix == "models/breast-cancer/"
    # the next tick sees the same occurrence in its look-back: nothing new starts
    asyncio.run(timer.start_scheduled(durable, at("2026-03-04T02:29:00"), at("2026-03-04T02:31:00.1")))
    assert len(durable.started) == 1


def test_the_default_model_retrains_on_retrain_schedule(durable: FakeDurable, models: Path) -> None:
    asyncio.run(timer.start_scheduled(durable, at("2026-03-04T01:58:00"), at("2026-03-04T02:00:00")))
    runs = started(durable)
    assert sorted(runs) == [
        "retrain-schedule-diabetes-ridge-20260304T020000Z",
        "retrain-schedule-hourly-cancer-20260304T020000Z",
    ]
    default = runs["retrain-schedule-diabetes-ridge-20260304T020000Z"].config
    assert (default.model_name, default.spec, default.dataset_prefix) == ("diabetes-ridge", "", "")


def test_a_past_due_tick_after_downtime_starts_one_run_per_model(durable: FakeDurable, models: Path) -> None:
    last = datetime.now(UTC) - timedelta(days=3)
    before = datetime.now(UTC)
    status = {"Last": last.isoformat(), "Next": (last + timedelta(minutes=1)).isoformat()}
    asyncio.run(scheduled_retrains(TimerRequest(past_due=True, schedule_status=status), durable))
    after = datetime.now(UTC)
    runs = started(durable)
    assert sorted(run.config.model_name for run in runs.values()) == [
        "breast-cancer",
        "diabetes-ridge",
        "hourly-cancer",
    ]
    for model, schedule in (
        ("diabetes-ridge", "0 0 2 * * *"),
        ("breast-cancer", "0 30 2 * * *"),
        ("hourly-cancer", "0 0 * * * *"),
    ):  # the latest occurrence missed (the clock may have passed one during the call)
        latest = {retrain_id_scheduled(model, Schedule.parse(schedule).latest_at_or_before(t)) for t in (before, after)}
        assert next(i for i in runs if runs[i].config.model_name == model) in latest
    asyncio.run(scheduled_retrains(TimerRequest(past_due=True, schedule_status=status), durable))
    assert len(durable.started) in (3, 4)  # the same tick again starts nothing (unless an hour turned meanwhile)


def test_the_window_looks_back_two_ticks_or_to_the_last_recorded_tick() -> None:
    now = at("2026-03-04T10:00:00.5")
    assert timer.window_start({}, now) == at("2026-03-04T09:58:00.5")
    assert timer.window_start({"Last": "garbage"}, now) == at("2026-03-04T09:58:00.5")
    assert timer.window_start({"Last": "2026-03-04T09:59:00+00:00"}, now) == at("2026-03-04T09:58:00.5")
    assert timer.window_start({"Last": "2026-03-01T09:59:00"}, now) == at("2026-03-01T09:59:00")  # naive: UTC
    assert timer.window_start({"Last": "2026-03-05T00:00:00Z"}, now) == at("2026-03-04T09:58:00.5")


def test_a_disabled_model_is_skipped_and_logged_once(
    durable: FakeDurable, models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=timer.log.name):
        for _ in range(3):
            asyncio.run(timer.start_scheduled(durable, at("2026-03-04T02:58:00"), at("2026-03-04T03:00:00")))
    skipped = [r.getMessage() for r in caplog.records if "skip model broken" in r.getMessage()]
    assert len(skipped) == 1 and "regresion" in skipped[0]
    assert list(started(durable)) == ["retrain-schedule-hourly-cancer-20260304T030000Z"]


def test_a_model_that_cannot_start_does_not_stop_the_others(durable: FakeDurable, models: Path) -> None:
    durable.add("retrain-schedule-diabetes-ridge-20260304T020000Z", "retrain", "Completed")  # already ran
    durable.fail_start = True
    with pytest.raises(StartFailed, match="hourly-cancer-20260304T020000Z"):
        asyncio.run(timer.start_scheduled(durable, at("2026-03-04T01:58:00"), at("2026-03-04T02:00:00")))
    durable.fail_start = False
    asyncio.run(timer.start_scheduled(durable, at("2026-03-04T01:59:00"), at("2026-03-04T02:01:00")))
    assert list(started(durable)) == ["retrain-schedule-hourly-cancer-20260304T020000Z"]


def test_the_timer_ticks_every_minute() -> None:
    function = timer.scheduled_retrains.build()
    [trigger] = [b for b in function.get_bindings() if b.type == "timerTrigger"]
    assert trigger.schedule == timer.TICK_SCHEDULE == "0 * * * * *"
    assert trigger.use_monitor is True
