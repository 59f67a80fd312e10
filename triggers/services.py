"""The backends the triggers use: storage (blob look-ups, the app's containers) and the registry (models)."""

from __future__ import annotations

import asyncio
import logging

from backends.factory import Backends, build_backends, build_request_storage, build_storage
from backends.settings import Settings, current
from backends.storage import BlobStorage

log = logging.getLogger(__name__)
_containers_ready: set[Settings] = set()


def backends() -> Backends:
    """The process's backends (``build_backends`` builds them once per settings)."""
    return build_backends(current())


def storage() -> BlobStorage:
    """The process's blob storage alone (cheap: no registry, jobs or endpoints are built)."""
    return build_storage(current())


def request_storage() -> BlobStorage:
    """Storage for a caller who waits on an HTTP answer: fails in seconds when storage is down (→ 503), where
    ``storage()`` retries for the background work that nobody waits on."""
    return build_request_storage(current())


async def ensure_containers(through: BlobStorage | None = None) -> None:
    """Create the app's containers (incoming, quarantine, datasets, scoring logs) once per process.

    A run needs them all; creating them where every run starts means a fresh storage account (or Azurite)
    works without a separate set-up step.
    """
    settings = current()
    if settings in _containers_ready:
        return
    await asyncio.to_thread((through or storage()).ensure_containers, settings.containers)
    _containers_ready.add(settings)
    log.info("containers ready: %s", ", ".join(settings.containers))
