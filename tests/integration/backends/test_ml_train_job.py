"""A real ``python -m ml.train`` job through LocalJobs, its run in the local MLflow store, its model registered."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from backends.local.jobs import LocalJobs
from backends.local.registry import TRAINING_EXPERIMENT, MlflowRegistry
from backends.ports import TrainingRequest
from backends.storage import BlobStorage
from ml.sample import diabetes_frame
from tests.support.azurite import Azurite
from tests.unit.backends import contracts


@pytest.fixture(scope="module")
def storage(azurite: Azurite) -> BlobStorage:
    storage = BlobStorage(azurite.connection_string)
    storage.ensure_containers(("mltrain",))
    storage.write("mltrain", "diabetes.csv", diabetes_frame().to_csv(index=False).encode())
    storage.write("mltrain", "bad.csv", b"age,sex\n1,2\n")
    return storage


def test_ml_train_job_end_to_end(tmp_path: Path, storage: BlobStorage) -> None:
    registry = MlflowRegistry(tmp_path / "home")
    jobs = LocalJobs(tmp_path / "home", storage, env=registry.job_environment())
    request = TrainingRequest(f"train-{uuid.uuid4().hex[:8]}", "1", ["mltrain/diabetes.csv"], {"alpha": "1.0"})
    jobs.submit(request)
    contracts.jobs_completed_outputs(jobs, request.job_name, tmp_path / "outputs")
    outputs = jobs.fetch_outputs(request.job_name, tmp_path / "outputs")
    assert 30 < outputs.metrics["rmse"] < 80 and outputs.metrics["r2"] > 0.3
    version = registry.register("job-model", jobs.model_source(request.job_name), {"job_id": request.job_name})
    assert version.stage == "qa"
    client = MlflowClient(tracking_uri=registry.tracking_uri)
    experiment = client.get_experiment_by_name(TRAINING_EXPERIMENT)
    assert experiment is not None and experiment.artifact_location.startswith(registry.artifact_root)
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["rmse"] == pytest.approx(outputs.metrics["rmse"])


def test_ml_train_rejects_bad_data(tmp_path: Path, storage: BlobStorage) -> None:
    jobs = LocalJobs(tmp_path / "home", storage)
    request = TrainingRequest(f"train-{uuid.uuid4().hex[:8]}", "1", ["mltrain/bad.csv"])
    jobs.submit(request)
    status = contracts.wait_finished(jobs, request.job_name, timeout=120)
    assert status.state == "failed"
    assert "exited with code 2" in status.message
    assert "training data rejected" in status.log_tail
