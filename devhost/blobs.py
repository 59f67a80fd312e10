"""Blob triggers: poll each watched container and fire once per blob version, keeping receipts as the host does.

A receipt is a blob in ``azure-webjobs-hosts`` at ``blobreceipts/{host}/Host.Functions.{function}/{etag}/{container}/
{blob}``, created only if absent, leased while the function runs, and marked ``Complete`` after it succeeded. A
failed run is retried on later scans up to ``MAX_ATTEMPTS``, then marked ``Poison``. Receipts live in storage, so
"once per version" holds across restarts; an overwrite has a new etag and fires again. Each watched container is
listed every ``poll_interval`` (0.25 s: one list call, so a drop fires about as fast as an Event Grid-driven trigger).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions import meta
from azure.functions.blob import BlobConverter
from azure.storage.blob import BlobServiceClient

from devhost.backoff import Outage
from devhost.connections import StorageConnection
from devhost.listener_types import Invoke

log = logging.getLogger(__name__)

HOSTS_CONTAINER = "azure-webjobs-hosts"
API_VERSION = "2025-11-05"
MAX_ATTEMPTS = 5
LEASE_SECONDS = 60


@dataclass(frozen=True)
class BlobFunction:
    name: str
    path: str
    connection: StorageConnection


@dataclass
class _Watch:
    function: BlobFunction
    container: str
    pattern: re.Pattern[str]
    done: set[tuple[str, str]] = field(default_factory=set)


def compile_path(path: str) -> tuple[str, re.Pattern[str]]:
    """``"container/prefix-{name}.csv"`` → (container, regex over the blob name with named groups)."""
    container, sep, rest = path.partition("/")
    if not container or "{" in container:
        raise ValueError(f"blob trigger path {path!r}: expected 'container/pattern' with a literal container name")
    if not sep or not rest:
        rest = "{name}"
    out, i = [], 0
    while i < len(rest):
        if rest.startswith("{{", i) or rest.startswith("}}", i):
            out.append(re.escape(rest[i]))
            i += 2
        elif rest[i] == "{":
            end = rest.find("}", i)
            if end < 0:
                raise ValueError(f"blob trigger path {path!r}: unclosed '{{'")
            out.append(f"(?P<{re.sub(r'[^A-Za-z0-9_]', '_', rest[i + 1 : end])}>.+)")
            i = end + 1
        else:
            out.append(re.escape(rest[i]))
            i += 1
    return container, re.compile("^" + "".join(out) + "$")


def receipt_name(host_id: str, function: str, etag: str, container: str, blob: str) -> str:
    return f"blobreceipts/{host_id}/Host.Functions.{function}/{etag}/{container}/{blob}"


class BlobListener:
    def __init__(
        self, functions: list[BlobFunction], invoke: Invoke, host_id: str, poll_interval: float = 0.25
    ) -> None:
        self.invoke, self.host_id, self.poll_interval = invoke, host_id, poll_interval
        self.watches = [_Watch(f, *compile_path(f.path)) for f in functions]
        self._clients: dict[str, BlobServiceClient] = {}

    def _client(self, connection: StorageConnection) -> BlobServiceClient:
        if connection.name not in self._clients:
            self._clients[connection.name] = connection.blob_service(
                api_version=API_VERSION, retry_total=1, connection_timeout=3, read_timeout=10
            )
        return self._clients[connection.name]

    async def run(self) -> None:
        """Scan until cancelled. Any error (storage down, a timeout, a bad answer) is survived: the scan backs off
        (capped, logged once per outage) and resumes when storage answers again."""
        outage = Outage("blob trigger listener", log)
        while True:
            try:
                await self.scan_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await asyncio.sleep(outage.failed(exc))
                continue
            outage.recovered()
            await asyncio.sleep(self.poll_interval)

    async def scan_once(self) -> int:
        """One pass over every watched container; returns how many invocations it made."""
        fired = 0
        for watch in self.watches:
            for blob in await asyncio.to_thread(self._candidates, watch):
                fired += await self._process(watch, blob)
        return fired

    def _candidates(self, watch: _Watch) -> list[dict[str, Any]]:
        box = self._client(watch.function.connection).get_container_client(watch.container)
        try:
            listed = list(box.list_blobs(include=["metadata"]))
        except ResourceNotFoundError:
            return []
        found = []
        for props in listed:
            etag = str(props.etag).strip('"')
            key = (str(props.name), etag)
            if key in watch.done or not watch.pattern.match(str(props.name)):
                continue
            found.append(
                {
                    "name": str(props.name),
                    "etag": etag,
                    "size": int(props.size or 0),
                    "last_modified": props.last_modified.isoformat() if props.last_modified else None,
                    "content_type": props.content_settings.content_type if props.content_settings else None,
                    "metadata": dict(props.metadata or {}),
                }
            )
        return found

    async def _process(self, watch: _Watch, blob: dict[str, Any]) -> int:
        client = self._client(watch.function.connection)
        receipt = client.get_blob_client(
            HOSTS_CONTAINER,
            receipt_name(self.host_id, watch.function.name, blob["etag"], watch.container, blob["name"]),
        )
        taken = await asyncio.to_thread(self._take, client, receipt, watch, blob)
        if taken is None:
            return 0
        lease, attempts = taken
        try:
            data = await asyncio.to_thread(
                lambda: client.get_blob_client(watch.container, blob["name"]).download_blob().readall()
            )
        except ResourceNotFoundError:
            await asyncio.to_thread(self._mark, receipt, lease, "Complete", 0)
            watch.done.add((blob["name"], blob["etag"]))
            return 0
        stream = input_stream(client, watch.container, blob, data)
        try:
            await self.invoke(watch.function.name, stream)
        except Exception:
            status = "Poison" if attempts >= MAX_ATTEMPTS else "Incomplete"
            log.exception(
                "blob trigger %s failed for %s/%s (attempt %d of %d)%s",
                watch.function.name,
                watch.container,
                blob["name"],
                attempts,
                MAX_ATTEMPTS,
                ": giving up (poison)" if status == "Poison" else "",
            )
            await asyncio.to_thread(self._mark, receipt, lease, status, attempts)
            if status == "Poison":
                watch.done.add((blob["name"], blob["etag"]))
            return 1
        await asyncio.to_thread(self._mark, receipt, lease, "Complete", attempts)
        watch.done.add((blob["name"], blob["etag"]))
        return 1

    def _take(
        self, client: BlobServiceClient, receipt: Any, watch: _Watch, blob: dict[str, Any]
    ) -> tuple[Any, int] | None:
        """Create (if absent) and lease the receipt → (lease, this attempt's number); None when it is finished
        or another host holds it."""
        with contextlib.suppress(ResourceExistsError):
            client.create_container(HOSTS_CONTAINER)
        attempts = 0
        try:
            receipt.upload_blob(b"", overwrite=False, metadata={"status": "Incomplete", "attempts": "0"})
        except ResourceExistsError:
            found = receipt.get_blob_properties().metadata
            if found.get("status") in ("Complete", "Poison"):
                watch.done.add((blob["name"], blob["etag"]))
                return None
            attempts = int(found.get("attempts", "0"))
        try:
            return receipt.acquire_lease(lease_duration=LEASE_SECONDS), attempts + 1
        except HttpResponseError:
            return None

    @staticmethod
    def _mark(receipt: Any, lease: Any, status: str, attempts: int) -> None:
        receipt.set_blob_metadata({"status": status, "attempts": str(attempts)}, lease=lease)
        lease.release()


def input_stream(client: BlobServiceClient, container: str, blob: dict[str, Any], data: bytes) -> object:
    """``func.InputStream`` built by the worker's converter (name ``container/blob``, length, uri, properties)."""
    properties = {
        "ContentLength": blob["size"],
        "ETag": blob["etag"],
        "LastModified": blob["last_modified"],
        "ContentType": blob["content_type"],
    }
    uri = client.get_blob_client(container, blob["name"]).url
    metadata = {
        "BlobTrigger": meta.Datum(f"{container}/{blob['name']}", "string"),
        "Uri": meta.Datum(uri, "string"),
        "Properties": meta.Datum(json.dumps(properties), "json"),
        "Metadata": meta.Datum(json.dumps(blob["metadata"]), "json"),
    }
    return BlobConverter.decode(meta.Datum(data, "bytes"), trigger_metadata=metadata)
