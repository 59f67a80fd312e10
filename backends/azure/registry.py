"""The model registry on Azure ML: MLflow-format model versions; stages and lineage as tags.

Azure ML itself emits ``Microsoft.MachineLearningServices.ModelRegistered`` to Event Grid when a version is
created, so registration here posts nothing (see infra/ for the system-topic subscription to the function app).
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

from azure.ai.ml import MLClient
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Model
from azure.core.exceptions import ResourceNotFoundError

from backends.azure.jobs import _call
from backends.errors import StageTransitionError
from backends.ports import MODEL_STAGES, STAGE_TRANSITIONS, ModelVersion

STAGE_TAG = "stage"


def _view(model: Any) -> ModelVersion:
    created = getattr(getattr(model, "creation_context", None), "created_at", None)
    return ModelVersion(
        str(model.name),
        str(model.version),
        str((model.tags or {}).get(STAGE_TAG, "")),
        {k: str(v) for k, v in (model.tags or {}).items()},
        str(model.path or ""),
        created.isoformat() if created else "",
    )


class AzureRegistry:
    def __init__(self, ml: MLClient) -> None:
        self.ml = ml

    def register(self, name: str, source: str, tags: dict[str, str]) -> ModelVersion:
        job_id = tags.get("job_id")
        for existing in self._models(name):
            if job_id and (existing.tags or {}).get("job_id") == job_id:
                return _view(existing)
        model = Model(
            name=name,
            path=source,
            type=AssetTypes.MLFLOW_MODEL,
            tags={**tags, STAGE_TAG: "qa"},
            properties={"job_id": job_id or "", "run_id": tags.get("run_id", "")},
            description=f"trained by job {job_id} on dataset {tags.get('dataset_version')}",
        )
        return _view(_call(lambda: self.ml.models.create_or_update(model), f"register {name}"))

    def get(self, name: str, version: str) -> ModelVersion:
        return _view(_call(lambda: self.ml.models.get(name, version), f"model {name}:{version}"))

    def list(self, name: str) -> builtins.list[ModelVersion]:
        return sorted((_view(m) for m in self._models(name)), key=lambda v: _number(v.version), reverse=True)

    def champion(self, name: str) -> ModelVersion | None:
        return next((v for v in self.list(name) if v.stage == "champion"), None)

    def set_stage(self, name: str, version: str, stage: str) -> ModelVersion:
        if stage not in MODEL_STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(MODEL_STAGES)}")
        model = _call(lambda: self.ml.models.get(name, version), f"model {name}:{version}")
        current = str((model.tags or {}).get(STAGE_TAG, ""))
        if current == stage:
            return _view(model)
        if stage not in STAGE_TRANSITIONS.get(current, ()):
            raise StageTransitionError(name, version, current, stage)
        previous = self.champion(name) if stage == "champion" else None
        updated = self._tag(model, stage)
        if previous is not None and previous.version != version:
            self._tag(_call(lambda: self.ml.models.get(name, previous.version), "previous champion"), "archived")
        return _view(updated)

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> ModelVersion:
        if STAGE_TAG in tags:
            raise ValueError(f"tag {STAGE_TAG!r} moves by set_stage, not set_tags")
        model = _call(lambda: self.ml.models.get(name, version), f"model {name}:{version}")
        model.tags = {**(model.tags or {}), **{k: str(v) for k, v in tags.items()}}
        return _view(_call(lambda: self.ml.models.create_or_update(model), f"tag {name}:{version}"))

    def download(self, name: str, version: str, dest: Path) -> Path:
        """Download the version's files, straight from the workspace storage (not through ARM) with the app's
        credential when the datastore is identity-based, as ``AzureJobs.fetch_outputs`` does."""
        _call(lambda: self.ml.models.download(name, version, download_path=str(dest)), f"download {name}:{version}")
        found = next((p.parent for p in dest.rglob("MLmodel")), None)
        if found is None:
            raise FileNotFoundError(f"model {name}:{version} downloaded to {dest} holds no MLmodel file")
        return found

    def _tag(self, model: Any, stage: str) -> Any:
        model.tags = {**(model.tags or {}), STAGE_TAG: stage}
        return _call(lambda: self.ml.models.create_or_update(model), f"tag {model.name}:{model.version}")

    def _models(self, name: str) -> builtins.list[Any]:
        try:
            return builtins.list(self.ml.models.list(name=name))
        except ResourceNotFoundError:  # a name with no versions yet
            return []


def _number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return -1.0
