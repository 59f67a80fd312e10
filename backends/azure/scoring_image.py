"""The scoring server as the image Azure ML builds: one build context, the same one the local endpoints run from.

The context (``scoring.build.stage_build_context``: the server's package and its Dockerfile, nothing else) is
uploaded through the app's own storage (by identity) to ``<datasets container>/scoring-build/<sha256>/`` and
registered as the environment ``AZUREML_SCORING_ENVIRONMENT`` whose version is the context's content hash, so an
unchanged context is registered (and built) once. The workspace builds the image into its container registry from
that blob URL; the deployments run it with these routes and the model mounted at ``AZUREML_MODEL_DIR``.

The server's command-line and environment contract inside the container:
``python -m scoring.server --host 0.0.0.0 --port 5001 --model-dir $AZUREML_MODEL_DIR --auth platform``
(the endpoint's front end checks the key), with ``SCORING_ENDPOINT_NAME``, ``SCORING_MODEL_VERSION``,
``SCORING_LOGS_CONTAINER`` and the prediction log's storage by identity, ``SCORING_LOGS__blobServiceUri`` +
``SCORING_LOGS__credential=managedidentity`` (+ ``SCORING_LOGS__clientId`` for a user-assigned identity).
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.ai.ml import MLClient
from azure.ai.ml.entities import BuildContext, Environment
from azure.core.exceptions import ResourceNotFoundError

from backends.ports import Storage
from backends.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PORT = 5001
ROUTES = {
    "liveness_route": {"path": "/", "port": PORT},
    "readiness_route": {"path": "/health", "port": PORT},
    "scoring_route": {"path": "/score", "port": PORT},
}
PREFIX = "scoring-build"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")

Stager = Callable[[Path], Path]


def stage_build_context(dest: Path) -> Path:
    """The scoring package's own staging (``scoring/build.py``) when it has one; else the server's files as its
    Dockerfile copies them today (``scoring/`` and the ``ml`` schema modules, the Dockerfile at the root)."""
    try:
        module = importlib.import_module("scoring.build")
    except ModuleNotFoundError:
        module = None
    if module is not None and hasattr(module, "stage_build_context"):
        staged: Path = module.stage_build_context(dest)
        return staged
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "scoring", dest / "scoring", ignore=_IGNORED, dirs_exist_ok=True)
    (dest / "ml").mkdir(exist_ok=True)
    for name in ("__init__.py", "schema.py", "drift.py"):
        shutil.copy2(ROOT / "ml" / name, dest / "ml" / name)
    shutil.copy2(ROOT / "scoring" / "Dockerfile", dest / "Dockerfile")
    return dest


def content_hash(folder: Path) -> str:
    """SHA-256 over every file's relative path and bytes, in path order: equal contexts, equal hashes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class ScoringImage:
    """Registers the scoring environment once per content hash and answers its ARM id."""

    def __init__(
        self, ml: MLClient, storage: Storage, settings: Settings, workspace_id: str, stage: Stager = stage_build_context
    ) -> None:
        self.ml, self.storage, self.settings, self.workspace_id = ml, storage, settings, workspace_id
        self.stage = stage
        self._lock = threading.Lock()
        self._known: str | None = None

    def environment_id(self) -> str:
        with self._lock:
            if self._known is None:
                self._known = self._ensure()
            return self._known

    def _ensure(self) -> str:
        name = self.settings.AZUREML_SCORING_ENVIRONMENT
        with tempfile.TemporaryDirectory(prefix="scoring-context-") as tmp:
            context = self.stage(Path(tmp) / "context")
            digest = content_hash(context)
            version = digest[:16]
            env_id = f"{self.workspace_id}/environments/{name}/versions/{version}"
            try:
                self.ml.environments.get(name, version)
                return env_id
            except ResourceNotFoundError:
                pass
            url = self._upload(context, digest)
        build = BuildContext(path=url, dockerfile_path="Dockerfile")
        environment = Environment(
            name=name,
            version=version,
            build=build,
            inference_config=ROUTES,
            tags={"content_sha256": digest},
            description="the scoring server (python -m scoring.server), built from its context",
        )
        self.ml.environments.create_or_update(environment)
        return env_id

    def _upload(self, context: Path, digest: str) -> str:
        """Upload the context under a folder named by its hash (never overwritten: same name, same bytes)."""
        container = self.settings.DATASETS_CONTAINER
        prefix = f"{PREFIX}/{digest}"
        self.storage.ensure_containers((container,))
        for path in sorted(p for p in context.rglob("*") if p.is_file()):
            self.storage.write(container, f"{prefix}/{path.relative_to(context).as_posix()}", path.read_bytes())
        return self.storage.url(container, prefix) + "/"


def server_environment(settings: Settings, storage: Storage, endpoint: str, version: str) -> dict[str, Any]:
    """The environment variables the scoring server reads in the container (see the module docstring)."""
    container = settings.SCORING_LOGS_CONTAINER
    blob_service = storage.url(container, "x").rsplit(f"/{container}/", 1)[0]
    env = {
        "SCORING_ENDPOINT_NAME": endpoint,
        "SCORING_MODEL_VERSION": version,
        "SCORING_LOGS_CONTAINER": container,
        "SCORING_LOGS__blobServiceUri": blob_service,
        "SCORING_LOGS__credential": "managedidentity",
    }
    if settings.AZUREML_ENDPOINT_IDENTITY_CLIENT_ID:
        env["SCORING_LOGS__clientId"] = settings.AZUREML_ENDPOINT_IDENTITY_CLIENT_ID
    if settings.APPLICATIONINSIGHTS_CONNECTION_STRING:  # scoring metrics reach the Application Insights the alerts read
        env["APPLICATIONINSIGHTS_CONNECTION_STRING"] = settings.APPLICATIONINSIGHTS_CONNECTION_STRING
    return env
