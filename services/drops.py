"""A data drop's way in: validate it against the contract and the champion's data, accept it, or quarantine it.

The drift reference is the training data of the current champion (its ``dataset_version`` tag), or the shipped
sample when there is no champion yet.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd

from backends.errors import NotFoundError
from backends.ports import ModelRegistry, Storage
from ml.drift import DriftThresholds
from ml.sample import reference_frame
from ml.schema import ACTIVE_SCHEMA, Schema
from ml.spec import ModelSpec
from ml.validation import Problem, ValidationReport, validate
from services.catalog import spec_of
from services.datasets import Datasets, DatasetVersion, split_ref

log = logging.getLogger(__name__)
_MESSAGES = 20
_METADATA_REASON = 1000


def champion_reference(
    datasets: Datasets, registry: ModelRegistry, model_name: str, spec: ModelSpec | None = None
) -> pd.DataFrame | None:
    """The drift reference: the champion's training data, else the model's sample (None: the spec names none)."""
    champion = registry.champion(model_name)
    version = champion.tags.get("dataset_version") if champion else None
    if version:
        try:
            return datasets.frame(version)
        except NotFoundError:
            log.warning("champion %s's dataset %s is gone; using the shipped sample as reference", model_name, version)
    return reference_frame() if spec is None else spec.sample_frame()


def contract(cfg: dict[str, Any]) -> tuple[ModelSpec | None, Schema]:
    """The spec a run's model runs by (None: the default model) and the data contract its drops must meet."""
    spec = spec_of(str(cfg["model_name"]))
    return spec, (spec.schema if spec is not None else ACTIVE_SCHEMA)


def datasets_of(storage: Storage, cfg: dict[str, Any]) -> Datasets:
    return Datasets(storage, cfg["datasets"], str(cfg.get("dataset_prefix") or ""))


def check_drop(storage: Storage, registry: ModelRegistry, cfg: dict[str, Any], ref: str) -> dict[str, Any]:
    """Validate the blob ``ref``; keep the full report in the datasets container and return its summary."""
    container, name = split_ref(ref)
    spec, schema = contract(cfg)
    datasets = datasets_of(storage, cfg)
    try:
        data, info = storage.read(container, name)
    except NotFoundError:
        report = ValidationReport(ref, problems=[Problem("missing_blob", f"{ref}: the blob no longer exists")])
        return _result(report, "", datasets.save_report(ref, "", report.to_dict()))
    thresholds = DriftThresholds(psi=float(cfg["drift"]["psi"]), ks_pvalue=float(cfg["drift"]["ks_pvalue"]))
    reference = champion_reference(datasets, registry, cfg["model_name"], spec)
    report = validate(data, name, schema=schema, reference=reference, thresholds=thresholds)
    return _result(report, info.etag, datasets.save_report(ref, info.etag, report.to_dict()))


def _result(report: ValidationReport, etag: str, report_ref: str) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "summary": report.summary(),
        "messages": report.messages()[:_MESSAGES],
        "rows": report.rows,
        "etag": etag,
        "report": report_ref,
    }


def accept_drop(storage: Storage, cfg: dict[str, Any], ref: str, etag: str) -> DatasetVersion:
    """Add a validated drop to the accumulated dataset (re-validated here, so only contract rows get in)."""
    container, name = split_ref(ref)
    data, info = storage.read(container, name)
    report = validate(data, name, schema=contract(cfg)[1])
    if not report.ok or report.frame is None:
        raise ValueError(f"{ref} no longer passes validation: {report.summary()}")
    return datasets_of(storage, cfg).accept(ref, etag or info.etag, report.frame)


def quarantine_drop(storage: Storage, cfg: dict[str, Any], ref: str, report_ref: str) -> dict[str, Any]:
    """Move the blob to the quarantine container with its reason (metadata) and report (``<blob>.report.json``)."""
    container, name = split_ref(ref)
    report_container, report_path = split_ref(report_ref)
    report = json.loads(storage.read(report_container, report_path)[0])
    target = cfg["quarantine"]
    reason = str(report.get("summary", "rejected"))[:_METADATA_REASON]
    storage.write(target, f"{name}.report.json", json.dumps(report, indent=1).encode())
    try:
        data, info = storage.read(container, name)
    except NotFoundError:
        log.info("%s already moved to %s/%s", ref, target, name)
        return {"quarantined": f"{target}/{name}", "report": f"{target}/{name}.report.json"}
    storage.write(target, name, data, metadata={"reason": reason, "source": ref, "etag": info.etag})
    storage.delete(container, name)
    return {"quarantined": f"{target}/{name}", "report": f"{target}/{name}.report.json"}
