"""Instance ids: derived from what started a run, so the same cause never starts two runs."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def retrain_id_for_blob(name: str, etag: str) -> str:
    """One blob version (name + etag) → one retrain, ever (HTTP retrains of that blob reuse the id)."""
    return "retrain-" + hashlib.sha1(f"{name}|{etag}".encode()).hexdigest()[:20]


def retrain_id_scheduled(model: str, occurrence: datetime) -> str:
    """One occurrence of a model's retrain schedule (UTC, to the second) → one retrain, however often it is seen."""
    return f"retrain-schedule-{_UNSAFE.sub('-', model)}-{occurrence.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def retrain_id_manual(token: str) -> str:
    return "retrain-manual-" + _UNSAFE.sub("-", token)


def release_id(model: str, version: str) -> str:
    """One release per model version, however often the registration event is delivered."""
    return f"release-{_UNSAFE.sub('-', model)}-{_UNSAFE.sub('-', str(version))}"


def batch_id_for_blob(name: str, etag: str) -> str:
    """One version (name + etag) of a batch input → one batch run, ever."""
    return "batch-" + hashlib.sha1(f"{name}|{etag}".encode()).hexdigest()[:20]


def run_kind(instance_id: str) -> str:
    for kind in ("release", "batch"):
        if instance_id.startswith(kind + "-"):
            return kind
    return "retrain"


def training_job_name(instance_id: str) -> str:
    """A job name valid on Azure ML (letters, digits, '-', '_'; starts with a letter) and stable per run."""
    return "train-" + hashlib.sha1(instance_id.encode()).hexdigest()[:16]
