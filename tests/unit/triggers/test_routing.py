"""Which model a drop is for, and the retrain input a model's spec gives (its policies, its dataset folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backends.settings import Settings
from messages.runs import RetrainInput
from services.catalog import MODELS_ROOT, Catalog, ModelDisabled, load_catalog
from triggers.inputs import model_of_blob, retrain_input

SETTINGS = Settings.from_env({})


@pytest.fixture
def models(tmp_path: Path) -> Catalog:
    root = tmp_path / "models"
    for name in ("diabetes-ridge", "breast-cancer"):
        shutil.copytree(MODELS_ROOT / name, root / name)
    (root / "broken").mkdir()
    (root / "broken" / "model.yaml").write_text("task: regresion\n")
    return load_catalog(root, SETTINGS)


@pytest.mark.parametrize(
    ("blob", "model"),
    [
        ("drop.csv", None),
        ("2026/drop.csv", None),  # a folder that is not a model: the default model's, as before
        ("diabetes-ridge/drop.csv", None),  # the default model's own folder
        ("breast-cancer/drop.csv", "breast-cancer"),
        ("breast-cancer/2026/12/drop.csv", "breast-cancer"),
        ("breast-cancer", None),  # a blob named like a model, in no folder
    ],
)
def test_a_drops_first_folder_names_its_model(models: Catalog, blob: str, model: str | None) -> None:
    found = model_of_blob(blob, models)
    assert (found.name if found else None) == model


def test_a_drop_for_a_disabled_model_names_its_problems(models: Catalog) -> None:
    with pytest.raises(ModelDisabled, match=r"model 'broken' is disabled: its spec has problems: .*regresion"):
        model_of_blob("broken/drop.csv", models)


def test_a_spec_gives_its_policies_and_its_own_dataset_folder(models: Catalog) -> None:
    spec = model_of_blob("breast-cancer/drop.csv", models)
    assert spec is not None
    run = RetrainInput.from_dict(retrain_input(SETTINGS, "blob", "incoming/breast-cancer/drop.csv", "0x1", spec))
    config = run.config
    assert config.model_name == "breast-cancer" and config.dataset_prefix == "models/breast-cancer/"
    assert Path(config.spec).name == "breast-cancer" and (Path(config.spec) / "model.yaml").is_file()
    promotion = config.promotion
    assert (promotion.metric, promotion.floor_metric, promotion.r2_floor) == ("log_loss", "auc", 0.8)
    assert (config.drift.psi, config.drift.ks_pvalue) == (0.25, 0.001)
    default = RetrainInput.from_dict(retrain_input(SETTINGS, "blob", "incoming/drop.csv", "0x1")).config
    assert (default.model_name, default.spec, default.dataset_prefix) == ("diabetes-ridge", "", "")


def test_the_apps_own_specs_are_named_relative_to_the_app_for_the_job() -> None:
    shipped = load_catalog(MODELS_ROOT, SETTINGS)
    spec = model_of_blob("breast-cancer/x.csv", shipped)
    assert spec is not None
    config = RetrainInput.from_dict(retrain_input(SETTINGS, "http", "incoming/breast-cancer/x.csv", "1", spec)).config
    assert config.spec == "models/breast-cancer"  # what a job's --spec reads from its code (here and on Azure ML)
