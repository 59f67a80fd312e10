"""A file at ``<BATCH_CONTAINER>/<model>/in/<path>`` → one batch scoring run per blob version (name + etag), ever.

The Event Grid kind of blob trigger, like ``on_blob_drop``: the storage account's system topic posts
``BlobCreated`` to ``/runtime/webhooks/blobs?functionName=Host.Functions.on_batch_file`` (subscription in
``infra/events.bicep``, filtered to the batch container); devhost stands in offline. The outputs and reports the
runs write in the same container (``<model>/out/…``) are ignored here: only ``<model>/in/…`` starts a run. A model
that is unknown, disabled or without a champion still gets its run, which refuses the file with a report.
"""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from backends.settings import Settings, current
from messages.batch import BatchInput
from orchestrators.ids import batch_id_for_blob
from orchestrators.names import BATCH
from services.batch import batch_model
from triggers.blobs import blob_name, canonical_etag, etag_from_properties
from triggers.durable import DurableClient, start_once
from triggers.names import ON_BATCH_FILE, STORAGE_CONNECTION
from triggers.services import ensure_containers, storage

log = logging.getLogger(__name__)
bp = df.Blueprint()


def batch_input(settings: Settings, model: str, name: str, etag: str) -> BatchInput:
    return BatchInput(
        container=settings.BATCH_CONTAINER,
        model=model,
        name=name,
        etag=etag,
        chunk_bytes=settings.BATCH_CHUNK_MB << 20,
        parallel=settings.BATCH_PARALLEL_CHUNKS,
        poll_seconds=settings.training_poll_seconds,
        timeout_minutes=settings.TRAINING_TIMEOUT_MINUTES * 4,
    )


async def start_batch_for_blob(client: DurableClient, name: str, etag: str | None) -> str | None:
    """Start (once) the scoring of blob ``name`` of the batch container; None for a blob that is no input."""
    settings = current()
    model = batch_model(name)
    if model is None:
        log.info("batch blob %s/%s is not an input (<model>/in/<path>): ignored", settings.BATCH_CONTAINER, name)
        return None
    await ensure_containers()
    if etag is None:
        etag = (await asyncio.to_thread(storage().info, settings.BATCH_CONTAINER, name)).etag
    etag = canonical_etag(etag)
    instance_id = batch_id_for_blob(name, etag)
    payload = batch_input(settings, model, name, etag).to_dict()
    started = await start_once(client, BATCH, instance_id, payload)
    log.info(
        "batch %s/%s (etag %s): run %s %s",
        settings.BATCH_CONTAINER,
        name,
        etag,
        instance_id,
        "started" if started else "already exists",
    )
    return instance_id


@bp.function_name(ON_BATCH_FILE)
@bp.blob_trigger(
    arg_name="blob",
    path="%BATCH_CONTAINER%/{name}",
    connection=STORAGE_CONNECTION,
    source=func.BlobSource.EVENT_GRID,
)
@bp.durable_client_input(client_name="client")
async def on_batch_file(blob: func.InputStream, client: DurableClient) -> None:
    settings = current()
    name = blob_name(blob.name or "", settings.BATCH_CONTAINER)
    if not name:
        log.error("batch trigger without a blob name (uri %s): ignored", blob.uri)
        return
    await start_batch_for_blob(client, name, etag_from_properties(getattr(blob, "blob_properties", None)))
