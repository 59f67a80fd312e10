"""A stand-in orchestration core (names, ids, two trivial orchestrators, one activity) written into a test's
script root, so the edge can be exercised on devhost on its own, in seconds. Never imported by the app itself."""

from __future__ import annotations

import shutil
from pathlib import Path

NAMES = """
RETRAIN = "retrain"
RELEASE = "release"
BATCH = "batch"
MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"
APPROVAL_DECISION = "approval_decision"
"""

IDS = """
import hashlib
from datetime import UTC, datetime


def retrain_id_for_blob(name: str, etag: str) -> str:
    return "retrain-" + hashlib.sha1(f"{name}|{etag}".encode()).hexdigest()[:20]


def retrain_id_scheduled(model: str, occurrence: datetime) -> str:
    return f"retrain-schedule-{model}-" + occurrence.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def retrain_id_manual(token: str) -> str:
    return "retrain-manual-" + token


def release_id(model: str, version: str) -> str:
    return f"release-{model}-{version}"


def batch_id_for_blob(name: str, etag: str) -> str:
    return "batch-" + hashlib.sha1(f"{name}|{etag}".encode()).hexdigest()[:20]


def run_kind(instance_id: str) -> str:
    for kind in ("release", "batch"):
        if instance_id.startswith(kind + "-"):
            return kind
    return "retrain"
"""

BLUEPRINT = """
import azure.durable_functions as df

bp = df.Blueprint()


def _run(context, kind, stage, outcome, version):
    given = context.get_input() or {}
    now = context.current_utc_datetime.isoformat().replace("+00:00", "Z")
    status = {"kind": kind, "trigger": given.get("trigger"), "data": given.get("data"), "model_version": version,
              "stage": stage, "outcome": None, "reason": None, "related": None,
              "stages": [{"name": stage, "status": "running", "started": now, "finished": None, "detail": ""}]}
    context.set_custom_status(status)
    echoed = yield context.call_activity("echo", given.get("data") or given.get("version"))
    status["stages"][0].update(status="succeeded", finished=now, detail=f"echo {echoed}")
    status["outcome"] = outcome
    context.set_custom_status(status)
    return status


@bp.orchestration_trigger(context_name="context", orchestration="retrain")
def retrain(context):
    return (yield from _run(context, "retrain", "validate", "skipped_no_new_data", None))


@bp.orchestration_trigger(context_name="context", orchestration="release")
def release(context):
    return (yield from _run(context, "release", "deploy_qa", "deployed", (context.get_input() or {}).get("version")))
"""

ACTIVITIES = """
import azure.durable_functions as df

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload", activity="echo")
def echo(payload):
    return payload
"""


def write_standin_core(root: Path) -> None:
    """Replace orchestrators/ and activities/ in a script root with the stand-ins."""
    for package, files in (
        ("orchestrators", {"names.py": NAMES, "ids.py": IDS, "blueprint.py": BLUEPRINT}),
        ("activities", {"blueprint.py": ACTIVITIES}),
    ):
        folder = root / package
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
        for name, text in files.items():
            (folder / name).write_text(text.lstrip())
