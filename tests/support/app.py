"""A copy of the function app as a script root, with settings on free ports, for devhost run as a subprocess
(the end-to-end tests and the pipeline benchmark)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from tests.support.azurite import free_port

ROOT = Path(__file__).resolve().parents[2]
APP_PARTS = (
    "function_app.py",
    "host.json",
    "local.settings.sample.json",
    "triggers",
    "orchestrators",
    "activities",
    "services",
    "messages",
    "backends",
    "ml",
    "scoring",
    "models",
)
KEY = "e2e-master-key"


def copy_app(dest: Path) -> Path:
    """The app as a deployment would see it: only its own files, no caches."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")
    for part in APP_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=ignore)
        else:
            shutil.copy2(source, dest / part)
    return dest


def app_values(connection_string: str, home: Path, port: int) -> dict[str, str]:
    """The sample settings (binding expressions like %RETRAIN_SCHEDULE% need them), on free ports and this storage."""
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    return {
        **sample,
        "AzureWebJobsStorage": connection_string,
        "DURABLE_TASK_HUB": "E2eHub",
        "MLOPS_HOME": str(home),
        "QA_ENDPOINT_PORT": str(free_port()),
        "PROD_ENDPOINT_PORT": str(free_port()),
        "MODEL_EVENTS_URL": f"http://127.0.0.1:{port}/runtime/webhooks/eventgrid?functionName=on_model_registered",
        "DEVHOST_MASTER_KEY": KEY,
        # the models' schedules (daily, at night) must never start a retrain in the middle of a scenario
        "AzureWebJobs.scheduled_retrains.Disabled": "true",
    }


def child_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """PATH and PYTHONPATH so `python -m ml.train` / `scoring.server` resolve from the script root and
    `python -m devhost` / `cli` from the repository; the test session's own app settings do not leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AzureWebJobs", "DEVHOST_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{root}{os.pathsep}{ROOT}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env
