"""Builds the four backends once from settings: local stand-ins or Azure ML (``MLOPS_BACKEND``).

``backends.azure`` (and with it azure-ai-ml) is imported only when ``MLOPS_BACKEND=azureml``. Results are cached
per settings object, so the app builds its backends once per process, under a lock (functions run on several
threads at once, and building the registry imports MLflow, which takes a second). Storage alone is cheap and has
its own cache, so a trigger that only needs blobs never waits for the rest.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backends.ports import BatchScoring, Endpoints, ModelRegistry, Storage, TrainingJobs
from backends.settings import Settings
from backends.storage import BlobStorage

AzureBuilder = Callable[[Settings, Storage], tuple[TrainingJobs, ModelRegistry, Endpoints]]


@dataclass(frozen=True)
class Backends:
    storage: Storage
    jobs: TrainingJobs
    registry: ModelRegistry
    endpoints: Endpoints


_building = threading.Lock()


@functools.cache
def build_storage(settings: Settings) -> BlobStorage:
    return BlobStorage.from_settings(settings)


#: an HTTP caller waits on these: one attempt, a few seconds each (``RETRY`` policies and triggers retry the rest)
REQUEST_TIMEOUT_S = 3.0


@functools.cache
def build_request_storage(settings: Settings) -> BlobStorage:
    return BlobStorage.from_settings(settings, retry_total=0, timeout=REQUEST_TIMEOUT_S)


def build_backends(settings: Settings) -> Backends:
    """The backends ``settings`` ask for (the same object for equal settings, built once)."""
    with _building:
        return _build(settings)


@functools.cache
def _build(settings: Settings) -> Backends:
    storage = build_storage(settings)
    if settings.MLOPS_BACKEND == "azureml":
        jobs, registry, endpoints = _azure_builder()(settings, storage)
        return Backends(storage, jobs, registry, endpoints)
    return build_local_backends(settings, storage)


def _azure_builder() -> AzureBuilder:
    """``backends.azure.factory.build_azure_backends``, imported only now (azure-ai-ml is heavy to import)."""
    module = importlib.import_module("backends.azure.factory")
    builder: AzureBuilder = module.build_azure_backends
    return builder


def build_local_backends(settings: Settings, storage: Storage) -> Backends:
    from backends.local.endpoints import LocalEndpoints
    from backends.local.events import ModelEventSink
    from backends.local.jobs import LocalJobs
    from backends.local.registry import MlflowRegistry

    home = Path(settings.MLOPS_HOME).resolve()
    registry = MlflowRegistry(home, ModelEventSink.for_home(settings.MODEL_EVENTS_URL, home))
    slots = settings.LOCAL_TRAINING_SLOTS if isinstance(settings.LOCAL_TRAINING_SLOTS, int) else None
    jobs = LocalJobs(home, storage, env=registry.job_environment(), slots=slots)
    endpoints = LocalEndpoints(
        home,
        registry,
        {"qa": settings.QA_ENDPOINT_PORT, "production": settings.PROD_ENDPOINT_PORT},
        settings.storage,
        settings.SCORING_LOGS_CONTAINER,
    )
    return Backends(storage, jobs, registry, endpoints)


@functools.cache
def build_batch_scoring(settings: Settings) -> BatchScoring:
    """Batch scoring for ``settings``: chunks scored by this app's activities (local), or an Azure ML batch
    endpoint job (``azureml``); built once per settings, over the same storage and registry as the rest."""
    built = build_backends(settings)
    if settings.MLOPS_BACKEND == "azureml":
        module = importlib.import_module("backends.azure.batch")
        scoring: BatchScoring = module.build_azure_batch(settings, built.storage)
        return scoring
    from backends.local.batch import LocalBatchScoring

    return LocalBatchScoring(built.storage, built.registry)
