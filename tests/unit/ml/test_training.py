"""Training: reproducible metrics and holdout from the same data, an MLflow model, MLflow logging."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from ml import models
from ml.errors import DataValidationError
from ml.sample import diabetes_frame, write_sample
from ml.train import train

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    write_sample(folder / "a.csv", slice(0, 300))
    write_sample(folder / "b.parquet", slice(300, None), "parquet")
    return folder


def test_same_data_gives_same_metrics_and_holdout(data: Path, tmp_path: Path) -> None:
    first = train([data], tmp_path / "one")
    second = train([data / "b.parquet", data / "a.csv"], tmp_path / "two")
    assert first.metrics == second.metrics
    assert first.holdout_ids == second.holdout_ids
    assert (tmp_path / "one" / "holdout_ids.json").read_text() == (tmp_path / "two" / "holdout_ids.json").read_text()
    assert first.metrics["n_train"] + first.metrics["n_holdout"] == 442
    assert first.metrics["r2"] > 0.3


def test_different_data_gives_a_different_split(tmp_path: Path) -> None:
    write_sample(tmp_path / "x.csv", slice(0, 400))
    write_sample(tmp_path / "y.csv", slice(20, 442))
    a = train([tmp_path / "x.csv"], tmp_path / "a")
    b = train([tmp_path / "y.csv"], tmp_path / "b")
    assert a.metrics["data_sha256"] != b.metrics["data_sha256"]
    assert a.holdout_ids != b.holdout_ids


def test_model_loads_and_predicts_like_the_trained_one(data: Path, tmp_path: Path) -> None:
    result = train([data], tmp_path / "out", alpha=1.0)
    model = models.load(tmp_path / "out" / "model")
    frame = diabetes_frame()
    predictions = model.predict(frame.drop(columns=["target"]).head(3))
    assert predictions.shape == (3,)
    assert result.metrics["alpha"] == 1.0
    assert result.metrics["estimator"] == "Ridge"


def test_saved_model_pins_what_it_needs_without_inferring(data: Path, tmp_path: Path) -> None:
    import sklearn
    import skops

    train([data], tmp_path / "out", alpha=1.0)
    pinned = (tmp_path / "out" / "model" / "requirements.txt").read_text().split()
    assert f"scikit-learn=={sklearn.__version__}" in pinned and f"skops=={skops.__version__}" in pinned

    class Local:  # an estimator from a module that is no installed distribution adds nothing
        pass

    assert models.requirements(Local()) == models.requirements(models.ridge(1.0))


def test_cli_runs_as_a_subprocess(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, "-m", "ml.train", "--data", str(data), "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    metrics = json.loads((out / "metrics.json").read_text())
    assert summary["rmse"] == metrics["rmse"]
    assert (out / "model" / "MLmodel").is_file()
    assert (out / "holdout.csv").read_text().startswith("row_id,age,sex")


def test_cli_rejects_bad_data_with_exit_2(tmp_path: Path) -> None:
    bad = diabetes_frame().drop(columns=["bmi"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "ml.train", "--data", str(tmp_path / "bad.csv"), "--output", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "missing column(s) bmi" in proc.stderr


def test_bad_data_raises_with_the_report(tmp_path: Path) -> None:
    frame = diabetes_frame().assign(target=1.0)
    frame.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(DataValidationError) as info:
        train([tmp_path / "c.csv"], tmp_path / "o")
    assert "constant" in str(info.value)


def test_logs_params_and_metrics_to_mlflow_when_tracking_uri_set(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    result = train([data], tmp_path / "out")
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs(experiment_ids=["0"])
    assert len(runs) == 1
    assert runs[0].data.metrics["rmse"] == pytest.approx(result.metrics["rmse"])
    assert runs[0].data.params["data_sha256"] == result.metrics["data_sha256"]
