"""Challenger evaluation and registration with lineage, on any ``TrainingJobs`` + ``ModelRegistry`` pair."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from backends.ports import ModelRegistry, TrainingJobs
from ml.evaluate import PromotionRule, compare
from ml.metrics import DIRECTION
from ml.schema import ACTIVE_SCHEMA
from services.catalog import spec_of

#: tags hold strings of bounded size: lineage keeps the newest drops in full and counts the rest
_LINEAGE_DROPS = 50


@functools.cache
def code_version() -> str:
    """``MLOPS_CODE_VERSION`` (set by CI/CD to the commit), else a hash of the ML sources that trained the model."""
    given = os.environ.get("MLOPS_CODE_VERSION", "").strip()
    if given:
        return given
    root = Path(__file__).resolve().parents[1] / "ml"
    digest = hashlib.sha256()
    for source in sorted(root.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    return "ml-" + digest.hexdigest()[:12]


def evaluate(
    jobs: TrainingJobs, registry: ModelRegistry, job_id: str, model_name: str, rule: dict[str, Any]
) -> dict[str, Any]:
    """Score the job's model and the champion on the job's holdout rows; the promotion rule decides."""
    promotion = PromotionRule(
        metric=str(rule.get("metric", "rmse")),
        confidence=float(rule.get("confidence", 0.95)),
        min_improvement=float(rule.get("min_improvement", 0.0)),
        floor=float(rule.get("r2_floor", 0.3)),
        floor_metric=str(rule.get("floor_metric", "r2")),
    )
    spec = spec_of(model_name)
    champion = registry.champion(model_name)
    with tempfile.TemporaryDirectory(prefix="mlops-eval-") as tmp:
        outputs = jobs.fetch_outputs(job_id, Path(tmp) / "challenger")
        champion_dir = registry.download(model_name, champion.version, Path(tmp) / "champion") if champion else None
        holdout = pd.read_csv(outputs.holdout_path)
        result = compare(outputs.model_dir, champion_dir, holdout, promotion, spec.schema if spec else ACTIVE_SCHEMA)
    return {**result.to_dict(), "champion_version": champion.version if champion else None, "job_id": job_id}


def lineage_tags(payload: dict[str, Any]) -> dict[str, str]:
    drops = [{"blob": d["blob"], "etag": d["etag"]} for d in payload.get("drops", [])]
    data = json.dumps(drops[-_LINEAGE_DROPS:], separators=(",", ":"))
    metrics = {k: f"{float(v):.6g}" for k, v in (payload.get("metrics") or {}).items() if k in DIRECTION}
    return {
        "run_id": str(payload["run_id"]),
        "job_id": str(payload["job_id"]),
        "dataset_version": str(payload["dataset_version"]),
        "data": data,
        "data_drops": str(len(drops)),
        "code_version": code_version(),
        **metrics,
    }


def register(jobs: TrainingJobs, registry: ModelRegistry, payload: dict[str, Any]) -> dict[str, Any]:
    """Register the job's model with its lineage (idempotent per job: the registry dedupes on ``job_id``)."""
    version = registry.register(
        str(payload["model_name"]), jobs.model_source(str(payload["job_id"])), lineage_tags(payload)
    )
    return version.to_dict()


def describe(registry: ModelRegistry, model_name: str, version: str) -> dict[str, Any]:
    found = registry.get(model_name, version)
    return {**found.to_dict(), "run_id": found.tags.get("run_id")}


def move_stage(registry: ModelRegistry, model_name: str, version: str, stage: str) -> dict[str, Any]:
    return registry.set_stage(model_name, version, stage).to_dict()
