"""Blob arrival on the incoming container → one retrain per blob version (name + etag), ever.

The trigger is the Event Grid kind (``source=EventGrid``), the only one Flex Consumption runs: the storage account's
system topic posts ``BlobCreated`` to the host's blob webhook (``/runtime/webhooks/blobs?functionName=
Host.Functions.on_blob_drop``, subscription in ``infra/main.bicep``), the host reads the blob and calls this function.
Offline, devhost serves the same webhook and stands in for the system topic. Deliveries are at least once: the
instance id from name + etag makes a repeat a no-op.
"""

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from backends.settings import current
from orchestrators.ids import retrain_id_for_blob
from orchestrators.names import RETRAIN
from services.catalog import catalog
from triggers.blobs import blob_name, canonical_etag, etag_from_properties
from triggers.durable import DurableClient, start_once
from triggers.inputs import ModelDisabled, model_of_blob, retrain_input
from triggers.names import ON_BLOB_DROP, STORAGE_CONNECTION
from triggers.services import ensure_containers, storage

log = logging.getLogger(__name__)
bp = df.Blueprint()


async def start_retrain_for_blob(client: DurableClient, name: str, etag: str | None) -> str:
    """Start (once) the retrain of blob ``name`` of the incoming container, for the model its folder names;
    returns the instance id."""
    settings = current()
    spec = model_of_blob(name, catalog())
    await ensure_containers()
    if etag is None:  # a host that gives no properties: ask storage for the version we are looking at
        info = await asyncio.to_thread(storage().info, settings.INCOMING_CONTAINER, name)
        etag = info.etag
    etag = canonical_etag(etag)
    instance_id = retrain_id_for_blob(name, etag)
    data = f"{settings.INCOMING_CONTAINER}/{name}"
    started = await start_once(client, RETRAIN, instance_id, retrain_input(settings, "blob", data, etag, spec))
    log.info("blob %s (etag %s): retrain %s %s", data, etag, instance_id, "started" if started else "already exists")
    return instance_id


@bp.function_name(ON_BLOB_DROP)
@bp.blob_trigger(
    arg_name="blob",
    path="%INCOMING_CONTAINER%/{name}",
    connection=STORAGE_CONNECTION,
    source=func.BlobSource.EVENT_GRID,
)
@bp.durable_client_input(client_name="client")
async def on_blob_drop(blob: func.InputStream, client: DurableClient) -> None:
    settings = current()
    name = blob_name(blob.name or "", settings.INCOMING_CONTAINER)
    if not name:
        log.error("blob trigger without a blob name (uri %s): ignored", blob.uri)
        return
    try:
        await start_retrain_for_blob(client, name, etag_from_properties(getattr(blob, "blob_properties", None)))
    except (
        ModelDisabled
    ) as exc:  # the blob stays in place: it is trained once the spec is fixed and it is dropped again
        log.error("blob %s/%s not trained: %s", settings.INCOMING_CONTAINER, name, exc)
