"""Models declared as data: the shipped specs load, and a bad spec names every problem and disables that model only."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backends.settings import Settings
from messages.enums import SpecStatus
from ml.sample import breast_cancer_frame, diabetes_frame
from ml.schema import DIABETES, Dtype, Task
from ml.spec import SpecError, load_spec
from services.catalog import MODELS_ROOT, load_catalog

SETTINGS = Settings.from_env({})


def test_the_two_shipped_models_load() -> None:
    catalog = load_catalog(MODELS_ROOT, SETTINGS)
    assert {s.name for s in catalog.usable()} == {"diabetes-ridge", "breast-cancer"}
    assert not catalog.disabled() and catalog.default == "diabetes-ridge"
    ridge, cancer = catalog.spec("diabetes-ridge"), catalog.spec("breast-cancer")
    assert ridge is not None and cancer is not None
    assert ridge.task is Task.REGRESSION and ridge.promotion.metric == "rmse"
    assert (ridge.promotion.floor_metric, ridge.promotion.floor) == ("r2", 0.3)
    assert cancer.task is Task.BINARY and cancer.promotion.metric == "log_loss"
    assert not cancer.promotion.higher_is_better
    assert (cancer.promotion.floor_metric, cancer.promotion.floor) == ("auc", 0.8)
    assert cancer.schema.classes == (0.0, 1.0) and cancer.schema.label.kind is Dtype.CATEGORY
    assert len(ridge.digest) == 16 and ridge.digest != cancer.digest


def test_the_default_models_spec_declares_the_contract_the_pipeline_runs() -> None:
    spec = load_spec(MODELS_ROOT / "diabetes-ridge")
    declared = [(c.name, c.low, c.high, c.integer) for c in (*spec.schema.features, spec.schema.label)]
    active = [(c.name, c.low, c.high, c.integer) for c in (*DIABETES.features, DIABETES.label)]
    assert declared == active
    assert spec.schema.min_rows == DIABETES.min_rows


@pytest.mark.parametrize(
    ("name", "frame"), [("diabetes-ridge", diabetes_frame), ("breast-cancer", breast_cancer_frame)]
)
def test_each_shipped_sample_fits_its_models_contract(name: str, frame: Callable[[], pd.DataFrame]) -> None:
    spec = load_spec(MODELS_ROOT / name)
    sample = spec.sample_frame()
    assert sample is not None and list(sample.columns) == spec.schema.columns
    assert sample.equals(frame())
    for column in spec.schema.checked:
        values = sample[column.name].to_numpy(dtype=float)
        if column.allowed:
            assert set(np.unique(values)) <= set(column.numeric_allowed), column.name
        if math.isfinite(column.low):
            assert values.min() >= column.low and values.max() <= column.high, column.name


def test_each_shipped_estimator_builds_and_fits_its_sample() -> None:
    for name in ("diabetes-ridge", "breast-cancer"):
        spec = load_spec(MODELS_ROOT / name)
        sample = spec.sample_frame()
        model = spec.estimator_factory()(**spec.estimator.params)
        model.fit(sample[spec.schema.feature_names], sample[spec.schema.label.name])
        assert len(model.predict(sample[spec.schema.feature_names].head(3))) == 3


BAD_SPEC = """\
task: clustering
schema:
  features:
    - {name: age, dtype: int, low: 90, high: 10}
    - {name: colour, dtype: category}
    - {name: age, dtype: float}
  label: {name: target, dtype: float, nullable: yes}
estimator: {factory: "no.such.module:build"}
promotion: {metric: auc, confidence: 2}
schedule: "every night"
colour: blue
"""


def _folder(root: Path, name: str, text: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.yaml").write_text(text, encoding="utf-8")
    return folder


def test_a_bad_spec_names_every_problem_with_file_key_line_expected_and_found(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "bad-model", BAD_SPEC)
    with pytest.raises(SpecError) as caught:
        load_spec(folder)
    problems = caught.value.problems
    path = str(folder / "model.yaml")
    assert all(p.startswith(path + ": ") and ": expected " in p and ", found " in p for p in problems), problems
    text = "\n".join(problems)
    for expected in [
        "task (line 1): expected one of regression, binary, multiclass, found 'clustering'",
        "schema.features[0].high (line 4): expected a value of at least low (90), found 10.0",
        "schema.features[1].allowed (line 5): expected the list of the category's values, found nothing",
        "schema (line 3): expected each column named once, found 'age'",
        "schema.label.nullable (line 7): expected false (every row needs its label), found True",
        "estimator.factory (line 8): expected an importable module, found 'no.such.module'",
        "promotion.confidence (line 9): expected a number from 0.5 to 0.999, found 2",
        "schedule (line 10): expected an NCRONTAB expression of 6 fields",
        "colour (line 11): expected one of the keys",
    ]:
        assert expected in text, f"{expected!r} not in:\n{text}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("task: [regression\n", "not readable YAML"),
        ("- a list\n", "the document: expected a mapping of keys (task, schema, estimator, …), found ['a list']"),
        ("", "the document: expected a mapping of keys (task, schema, estimator, …), found None"),
    ],
)
def test_an_unreadable_spec_is_a_problem_too(tmp_path: Path, text: str, expected: str) -> None:
    folder = _folder(tmp_path, "broken", text)
    with pytest.raises(SpecError) as caught:
        load_spec(folder)
    assert caught.value.problems == [f"{folder / 'model.yaml'}: {expected}"] or expected in str(caught.value)


def test_a_bad_spec_disables_that_model_only(tmp_path: Path) -> None:
    shutil.copytree(MODELS_ROOT / "diabetes-ridge", tmp_path / "diabetes-ridge")
    _folder(tmp_path, "bad-model", BAD_SPEC)
    (tmp_path / "empty-folder").mkdir()
    catalog = load_catalog(tmp_path, SETTINGS)
    assert catalog.models["diabetes-ridge"].status is SpecStatus.OK
    assert [e.name for e in catalog.disabled()] == ["bad-model", "empty-folder"]
    assert catalog.spec("bad-model") is None and catalog.spec("diabetes-ridge") is not None
    assert catalog.why_not("diabetes-ridge") == ""
    assert catalog.why_not("bad-model").startswith("model 'bad-model' is disabled: its spec has problems: ")
    assert "no model.yaml" in catalog.why_not("empty-folder")
    assert catalog.why_not("nope") == "no model 'nope' (models: bad-model, diabetes-ridge, empty-folder)"


def test_a_folder_name_that_cannot_name_a_model_is_a_problem(tmp_path: Path) -> None:
    shutil.copytree(MODELS_ROOT / "diabetes-ridge", tmp_path / "Diabetes_Ridge")
    with pytest.raises(SpecError, match="name: expected a folder name of 3-40 lowercase letters"):
        load_spec(tmp_path / "Diabetes_Ridge")


def test_the_settings_fill_what_a_spec_leaves_out(tmp_path: Path) -> None:
    minimal = (
        "task: regression\nschema:\n  features: [{name: x}]\n  label: {name: y}\n"
        "estimator: {factory: 'ml.estimators:ridge'}\n"
    )
    settings = Settings.from_env({"PROMOTION_CONFIDENCE": "0.9", "DRIFT_PSI_THRESHOLD": "0.4"})
    spec = load_catalog(_folder(tmp_path, "minimal", minimal).parent, settings).spec("minimal")
    assert spec is not None
    assert spec.promotion.confidence == 0.9 and spec.drift.psi == 0.4 and spec.schedule == "0 0 2 * * *"
    assert [s.step for s in spec.release] == ["qa", "full"]
