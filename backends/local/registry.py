"""The ModelRegistry port on the MLflow model registry: SQLite store ``<home>/mlflow.db``, artifacts ``<home>/mlruns``.

Look at it with (from the project root, with the default ``MLOPS_HOME=.mlops``)::

    .venv/bin/mlflow ui --backend-store-uri sqlite:///.mlops/mlflow.db --port 5000

Stages live in the version tag ``stage`` (MLflow's own stages are deprecated) and move only along
``ports.STAGE_TRANSITIONS``; the champion also carries the alias ``champion``. Registering is idempotent per
training job (tag ``job_id``): the model folder is logged as the artifacts of an MLflow run in the experiment
``models`` and a version is created from them, then a ModelRegistered event is posted (events left in the
sink's outbox by an unreachable webhook are redelivered on the next ``register``). Every instance has its own
``MlflowClient`` with explicit URIs; nothing touches MLflow's global state.
"""

from __future__ import annotations

import builtins
import fcntl
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion as MlflowVersion
from mlflow.exceptions import MlflowException

from backends.errors import BackendError, NotFoundError, StageTransitionError
from backends.local.events import ModelEventSink
from backends.ports import MODEL_STAGES, STAGE_TRANSITIONS, ModelVersion

log = logging.getLogger(__name__)

EXPERIMENT = "models"
TRAINING_EXPERIMENT = "training"
CHAMPION_ALIAS = "champion"
STAGE_TAG = "stage"
JOB_TAG = "job_id"
FIRST_STAGE = "qa"
RUN_TAG_MAX = 8000


def _missing(exc: MlflowException) -> bool:
    return exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _path_of(uri: str) -> Path:
    """The local folder behind a ``file://`` artifact URI (or a plain path)."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return Path(unquote(parts.path))
    raise BackendError(f"model source {uri!r} is not a local folder")


class MlflowRegistry:
    """Model versions in a local MLflow registry; see the module docstring for the ``mlflow ui`` command."""

    def __init__(self, home: Path, events: ModelEventSink | None = None) -> None:
        self.home = home.resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        self.tracking_uri = f"sqlite:///{self.home / 'mlflow.db'}"
        self.artifact_root = (self.home / "mlruns").as_uri()
        self.events = events
        self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    # --- reads ---------------------------------------------------------------------------------

    def get(self, name: str, version: str) -> ModelVersion:
        try:
            return self._view(self._client.get_model_version(name, str(version)))
        except MlflowException as exc:
            if _missing(exc):
                raise NotFoundError(f"model {name} version {version} does not exist") from exc
            raise

    def list(self, name: str) -> builtins.list[ModelVersion]:
        """Every version of ``name``, newest first (an unknown name has none)."""
        found = self._client.search_model_versions(f"name='{_quoted(name)}'")
        return sorted((self._view(v) for v in found), key=lambda m: int(m.version), reverse=True)

    def champion(self, name: str) -> ModelVersion | None:
        try:
            return self._view(self._client.get_model_version_by_alias(name, CHAMPION_ALIAS))
        except MlflowException as exc:
            if _missing(exc):
                return None
            raise

    def download(self, name: str, version: str, dest: Path) -> Path:
        """Copy the version's MLflow model folder to ``dest`` (which then holds ``MLmodel``); returns ``dest``."""
        source = _path_of(self.get(name, version).source)
        if not (source / "MLmodel").exists():
            raise NotFoundError(f"model {name} version {version}: no MLmodel under {source}")
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return dest

    def job_environment(self) -> dict[str, str]:
        """Environment for training jobs so their MLflow runs land in this store (experiment ``training``)."""
        with self._lock():
            experiment_id = self._experiment_id(TRAINING_EXPERIMENT)
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, "MLFLOW_EXPERIMENT_ID": str(experiment_id)}

    # --- writes --------------------------------------------------------------------------------

    def register(self, name: str, source: str, tags: dict[str, str]) -> ModelVersion:
        """A new version (stage ``qa``) from the MLflow model folder ``source``; the same ``job_id`` → same version."""
        folder = _path_of(source)
        if not (folder / "MLmodel").exists():
            raise NotFoundError(f"cannot register {name}: {folder} is not an MLflow model folder (no MLmodel)")
        if self.events is not None and self.events.pending():
            self.events.redeliver()
        with self._lock():
            existing = self._by_job(name, tags.get(JOB_TAG))
            if existing is not None:
                return existing
            version = self._create(name, folder, tags)
        if self.events is not None:
            self.events.model_registered(name, version.version, version.tags)
        log.info("registered %s version %s from %s", name, version.version, folder)
        return version

    def set_stage(self, name: str, version: str, stage: str) -> ModelVersion:
        """Move a version along ``STAGE_TRANSITIONS``; moving to its current stage changes nothing."""
        if stage not in MODEL_STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(MODEL_STAGES)}")
        with self._lock():
            current = self.get(name, version)
            if current.stage == stage:
                return current
            if stage not in STAGE_TRANSITIONS.get(current.stage, ()):
                raise StageTransitionError(name, str(version), current.stage, stage)
            previous = self.champion(name) if stage == CHAMPION_ALIAS else None
            self._client.set_model_version_tag(name, str(version), STAGE_TAG, stage)
            if stage == CHAMPION_ALIAS:
                self._client.set_registered_model_alias(name, CHAMPION_ALIAS, str(version))
                if previous is not None and previous.version != str(version):
                    self._client.set_model_version_tag(name, previous.version, STAGE_TAG, "archived")
            elif current.stage == CHAMPION_ALIAS:
                self._drop_alias(name, str(version))
            return self.get(name, version)

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> ModelVersion:
        """Merge ``tags`` into the version's (a ``stage`` key is refused: stages move by ``set_stage``)."""
        if STAGE_TAG in tags:
            raise ValueError(f"tag {STAGE_TAG!r} moves by set_stage, not set_tags")
        with self._lock():
            self.get(name, version)
            for key, value in tags.items():
                self._client.set_model_version_tag(name, str(version), key, str(value))
            return self.get(name, version)

    # --- helpers -------------------------------------------------------------------------------

    def _create(self, name: str, folder: Path, tags: dict[str, str]) -> ModelVersion:
        run_id = self._log_run(folder, tags)
        run = self._client.get_run(run_id)
        try:
            self._client.get_registered_model(name)
        except MlflowException as exc:
            if not _missing(exc):
                raise
            self._client.create_registered_model(name)
        version_tags = {**{k: str(v) for k, v in tags.items()}, STAGE_TAG: FIRST_STAGE}
        created = self._client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run_id, tags=version_tags
        )
        return self._view(created)

    def _log_run(self, folder: Path, tags: dict[str, str]) -> str:
        experiment_id = self._experiment_id(EXPERIMENT)
        # run tags hold at most 8000 characters; the version's tags (100 000) keep the full lineage
        run = self._client.create_run(
            experiment_id, tags={k: str(v)[:RUN_TAG_MAX] for k, v in tags.items()}, run_name=tags.get(JOB_TAG) or None
        )
        self._client.log_artifacts(run.info.run_id, str(folder), artifact_path="model")
        for key, value in tags.items():
            metric = _number(value)
            if metric is not None and key in ("rmse", "mae", "r2"):
                self._client.log_metric(run.info.run_id, key, metric)
        self._client.set_terminated(run.info.run_id)
        return str(run.info.run_id)

    def _experiment_id(self, name: str) -> str:
        """The experiment's id, created with its artifacts under ``<home>/mlruns`` (call under ``_lock``)."""
        found = self._client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        return str(self._client.create_experiment(name, artifact_location=self.artifact_root))

    def _by_job(self, name: str, job_id: str | None) -> ModelVersion | None:
        if not job_id:
            return None
        return next((v for v in self.list(name) if v.tags.get(JOB_TAG) == job_id), None)

    def _drop_alias(self, name: str, version: str) -> None:
        holder = self.champion(name)
        if holder is not None and holder.version == version:
            self._client.delete_registered_model_alias(name, CHAMPION_ALIAS)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise registry writes across processes (the app's workers, `mlflow` CLI users)."""
        with (self.home / "registry.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _view(version: MlflowVersion) -> ModelVersion:
        tags = {str(k): str(v) for k, v in (version.tags or {}).items()}
        registered = datetime.fromtimestamp(int(version.creation_timestamp) / 1000, UTC).isoformat()
        return ModelVersion(
            str(version.name),
            str(version.version),
            tags.get(STAGE_TAG, ""),
            tags,
            str(version.source or ""),
            registered,
        )


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None
