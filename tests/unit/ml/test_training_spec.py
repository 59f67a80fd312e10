"""Training what a spec declares: the shipped classifier end to end (stratified holdout, probabilities scored,
the same split from the same data), the CLI with --spec, and specs whose estimator or data cannot train."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from ml import models
from ml.errors import DataValidationError, TrainingError
from ml.evaluate import PromotionRule, compare
from ml.sample import breast_cancer_frame
from ml.spec import Estimator, ModelSpec, SpecDefaults, load_spec
from ml.train import train_spec
from services.catalog import MODELS_ROOT

ROOT = Path(__file__).resolve().parents[3]
TRAIN = [sys.executable, "-m", "ml.train"]


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return load_spec(MODELS_ROOT / "breast-cancer", SpecDefaults())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "cancer.csv"
    breast_cancer_frame().to_csv(path, index=False)
    return path


def test_the_shipped_classifier_trains_and_is_scored_by_its_probabilities(
    spec: ModelSpec, data: Path, tmp_path: Path
) -> None:
    first = train_spec(spec, [data], tmp_path / "one")
    again = train_spec(spec, [data], tmp_path / "two")
    assert first.metrics == again.metrics and first.holdout_ids == again.holdout_ids
    metrics = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert set(metrics) >= {"auc", "log_loss", "accuracy", "n_train", "n_holdout", "data_sha256", "spec_sha256"}
    assert metrics["model"] == "breast-cancer" and metrics["task"] == "binary" and metrics["auc"] > 0.95
    holdout = pd.read_csv(tmp_path / "one" / "holdout.csv")
    frame = breast_cancer_frame()
    share = frame["target"].mean()
    assert abs(holdout["target"].mean() - share) < 0.02  # stratified: the classes in the same proportion
    loaded = models.load(tmp_path / "one" / "model")
    assert list(loaded.classes_) == [0.0, 1.0]
    assert (tmp_path / "one" / "model" / "schema.json").is_file()
    verdict = compare(
        tmp_path / "one" / "model", None, holdout, PromotionRule("log_loss", 0.95, 0.0, 0.8, "auc"), spec.schema
    )
    assert verdict.promote and verdict.challenger["auc"] == pytest.approx(metrics["auc"])


def test_the_cli_trains_a_spec_and_logs_its_task_metrics(data: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "cli"
    proc = subprocess.run(
        [*TRAIN, "--data", str(data), "--output", str(out), "--spec", str(MODELS_ROOT / "breast-cancer")],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["task"] == "binary" and summary["auc"] > 0.95
    run = mlflow.MlflowClient(tracking_uri=uri).search_runs(experiment_ids=["0"])[0]
    assert set(run.data.metrics) == {"auc", "log_loss", "accuracy"}
    assert run.data.params["C_requested"] == "1.0"


def test_the_cli_refuses_alpha_with_a_spec_and_names_a_bad_spec(data: Path, tmp_path: Path) -> None:
    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ml.train", "--data", str(data), "--output", str(tmp_path / "o"), *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    both = run("--spec", str(MODELS_ROOT / "breast-cancer"), "--alpha", "1")
    assert both.returncode == 1 and "--alpha is the default model's" in both.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.yaml").write_text("task: regresion\n")
    bad = run("--spec", str(tmp_path / "bad"))
    assert bad.returncode == 1 and "model.yaml" in bad.stderr and "regresion" in bad.stderr


def test_one_class_only_is_refused_by_the_specs_validation(spec: ModelSpec, tmp_path: Path) -> None:
    frame = breast_cancer_frame()
    frame[frame["target"] == 1].to_csv(tmp_path / "benign.csv", index=False)
    with pytest.raises(DataValidationError, match="the label 'target' is constant"):
        train_spec(spec, [tmp_path / "benign.csv"], tmp_path / "o")


def test_an_estimator_that_cannot_be_built_names_the_spec(spec: ModelSpec, data: Path, tmp_path: Path) -> None:
    wrong = replace(spec, estimator=Estimator("ml.estimators:logistic", {"penalty_strength": 2}))
    with pytest.raises(TrainingError, match=r"model.yaml: estimator ml.estimators:logistic cannot be built"):
        train_spec(wrong, [data], tmp_path / "o")
