"""services.schedules: which models a tick's window makes due, each with its latest occurrence."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backends.settings import Settings
from services.catalog import MODELS_ROOT, Catalog, load_catalog
from services.schedules import due_retrains

SETTINGS = Settings.from_env({"RETRAIN_SCHEDULE": "0 0 4 * * *"})  # not the default model's spec's 02:00


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def models(tmp_path: Path) -> Catalog:
    """The shipped models (breast-cancer at 02:30), one hourly copy, one with no schedule of its own, one broken."""
    root = tmp_path / "models"
    for name in ("diabetes-ridge", "breast-cancer"):
        shutil.copytree(MODELS_ROOT / name, root / name)
    spec = (MODELS_ROOT / "breast-cancer" / "model.yaml").read_text()
    assert 'schedule: "0 30 2 * * *"' in spec
    shutil.copytree(MODELS_ROOT / "breast-cancer", root / "hourly-cancer")
    (root / "hourly-cancer" / "model.yaml").write_text(spec.replace('"0 30 2 * * *"', '"0 0 * * * *"'))
    shutil.copytree(MODELS_ROOT / "breast-cancer", root / "plain-cancer")
    (root / "plain-cancer" / "model.yaml").write_text(spec.replace('schedule: "0 30 2 * * *"\n', ""))
    (root / "broken").mkdir()
    (root / "broken" / "model.yaml").write_text("task: regression\nschedule: '0 0 2 31 2 *'\n")
    return load_catalog(root, SETTINGS)


def due(models: Catalog, after: str, until: str) -> list[tuple[str, datetime]]:
    return [(d.model, d.occurrence) for d in due_retrains(models, SETTINGS.RETRAIN_SCHEDULE, at(after), at(until)).due]


def test_each_model_is_due_on_its_own_schedule(models: Catalog) -> None:
    assert due(models, "2026-03-04T02:28:00", "2026-03-04T02:30:00") == [("breast-cancer", at("2026-03-04T02:30:00"))]
    assert due(models, "2026-03-04T02:31:00", "2026-03-04T02:59:59") == []
    assert due(models, "2026-03-04T02:58:30", "2026-03-04T03:00:30") == [("hourly-cancer", at("2026-03-04T03:00:00"))]


def test_the_default_model_keeps_retrain_schedule_and_a_spec_without_one_takes_it(models: Catalog) -> None:
    assert due(models, "2026-03-04T01:59:00", "2026-03-04T02:01:00") == [
        ("hourly-cancer", at("2026-03-04T02:00:00"))  # diabetes-ridge's spec says 02:00, RETRAIN_SCHEDULE 04:00
    ]
    assert due(models, "2026-03-04T03:59:00", "2026-03-04T04:00:00") == [
        ("diabetes-ridge", at("2026-03-04T04:00:00")),
        ("hourly-cancer", at("2026-03-04T04:00:00")),
        ("plain-cancer", at("2026-03-04T04:00:00")),
    ]


def test_after_downtime_each_model_is_due_once_on_its_latest_missed_occurrence(models: Catalog) -> None:
    assert due(models, "2026-03-01T12:00:00", "2026-03-04T03:10:00") == [
        ("breast-cancer", at("2026-03-04T02:30:00")),
        ("diabetes-ridge", at("2026-03-03T04:00:00")),
        ("hourly-cancer", at("2026-03-04T03:00:00")),
        ("plain-cancer", at("2026-03-03T04:00:00")),
    ]


def test_a_disabled_model_is_never_due_and_is_listed(models: Catalog) -> None:
    plan = due_retrains(models, SETTINGS.RETRAIN_SCHEDULE, at("2026-01-01T00:00:00"), at("2026-03-04T03:10:00"))
    assert "broken" not in [d.model for d in plan.due]
    assert [entry.name for entry in plan.disabled] == ["broken"]
    assert any("never occurs" in problem for problem in plan.disabled[0].problems)
    specs = {d.model: d.spec for d in plan.due}
    assert specs["diabetes-ridge"] is None  # the default model runs by its own recipe
    breast = specs["breast-cancer"]
    assert breast is not None and breast.name == "breast-cancer"
