"""The Storage port on azure-storage-blob (sync): the same code talks to Azurite offline and Azure Storage in the cloud.

Decisions:

- The account is reached as the Functions host reaches it (``backends.storage_connection``): a connection string
  (``UseDevelopmentStorage=true`` resolves to Azurite's ``http://127.0.0.1:10000/devstoreaccount1``), or the service
  endpoint and a token credential (``AzureWebJobsStorage__accountName`` …: managed identity on Azure).
- Every client pins ``api_version=API_VERSION``: Azurite rejects the SDK's newest version; Azure accepts this one.
- ``BlobInfo.etag`` is the service's ETag with the surrounding quotes stripped (``0x8DC…``), the same spelling from
  ``read``, ``info``, ``write`` and ``list``. Callers needing the HTTP form add the quotes back.
- Metadata keys must be identifiers (an HTTP header name); values must be ASCII, so a non-ASCII value is stored as an
  RFC 2047 encoded word (``=?utf-8?b?…?=``, as Azure's docs suggest) and decoded again when read.
- Transient failures (connection errors, timeouts, 5xx) raise ``TransientBackendError``; a missing blob or container
  ``NotFoundError``; a create-only write onto an existing blob ``BlobExistsError``.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobProperties, BlobServiceClient, ContentSettings

from backends.errors import (
    BackendError,
    BlobChangedError,
    BlobExistsError,
    InvalidMetadataError,
    NotFoundError,
    TransientBackendError,
)
from backends.ports import BlobInfo
from backends.settings import Settings
from backends.storage_connection import StorageConnection

log = logging.getLogger(__name__)

#: Azurite 3.35+ accepts up to this version; Azure Storage accepts it too.
API_VERSION = "2025-11-05"

#: Azure Storage's limit on the total size of a blob's metadata (names and values)
METADATA_MAX_BYTES = 8 * 1024
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENCODED = re.compile(r"^=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=$")
_T = TypeVar("_T")
_CONTENT_TYPES = (
    (".csv", "text/csv"),
    (".jsonl", "application/x-ndjson"),
    (".json", "application/json"),
    (".parquet", "application/vnd.apache.parquet"),
    (".txt", "text/plain"),
)


def encode_metadata_value(value: str) -> str:
    """Printable ASCII values unchanged; others (non-ASCII, newlines) as an RFC 2047 encoded word (HTTP headers)."""
    if value.isascii() and value.isprintable() and not _ENCODED.match(value):
        return value
    return "=?utf-8?b?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def decode_metadata_value(value: str) -> str:
    match = _ENCODED.match(value)
    if not match:
        return value
    try:
        return base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except ValueError:
        return value


def _encode_metadata(metadata: dict[str, str] | None) -> dict[str, str] | None:
    if not metadata:
        return None
    bad = [key for key in metadata if not _KEY.match(key)]
    if bad:
        raise InvalidMetadataError(f"blob metadata keys must be identifiers (letters, digits, '_'); got {bad!r}")
    encoded = {key: encode_metadata_value(str(value)) for key, value in metadata.items()}
    size = sum(len(key) + len(value) for key, value in encoded.items())
    if size > METADATA_MAX_BYTES:
        raise InvalidMetadataError(
            f"blob metadata is {size} bytes once encoded; Azure Storage allows "
            f"{METADATA_MAX_BYTES} (keys: {', '.join(encoded)})"
        )
    return encoded


def _etag(raw: str | None) -> str:
    return (raw or "").strip().strip('"')


def _info(container: str, props: BlobProperties) -> BlobInfo:
    modified = props.last_modified.isoformat() if props.last_modified else ""
    metadata = {key: decode_metadata_value(value) for key, value in (props.metadata or {}).items()}
    return BlobInfo(container, str(props.name), _etag(props.etag), int(props.size or 0), modified, metadata)


def _call(what: str, action: Callable[[], _T]) -> _T:
    """Run one SDK call, translating its errors into the backends' typed errors."""
    try:
        return action()
    except ResourceNotFoundError as exc:
        raise NotFoundError(f"{what}: not found") from exc
    except (ResourceExistsError, ResourceModifiedError):
        raise  # the caller turns these into BlobExistsError / BlobChangedError
    except (ServiceRequestError, ServiceResponseError, TimeoutError, ConnectionError) as exc:
        raise TransientBackendError(f"{what}: {type(exc).__name__}: {exc}") from exc
    except HttpResponseError as exc:
        if exc.status_code is not None and (exc.status_code >= 500 or exc.status_code in (408, 429)):
            raise TransientBackendError(f"{what}: HTTP {exc.status_code}: {exc.reason}") from exc
        raise BackendError(f"{what}: HTTP {exc.status_code}: {exc.reason}") from exc


def blob_service(connection: StorageConnection | str, *, credential: Any = None, **options: Any) -> BlobServiceClient:
    """A ``BlobServiceClient`` for ``connection`` (a connection string, or endpoint + token credential).

    ``credential`` overrides the connection's own token credential (tests inject one; nothing else should).
    """
    if isinstance(connection, str):
        connection = StorageConnection("connection", connection_string=connection)
    options.setdefault("api_version", API_VERSION)
    if connection.connection_string:
        return BlobServiceClient.from_connection_string(connection.connection_string, **options)
    return BlobServiceClient(
        connection.service_uri("blob"), credential=credential or connection.credential(), **options
    )


class BlobStorage:
    """Blob storage of one account: Azurite's or an Azure Storage account's, by key or by identity."""

    def __init__(
        self,
        connection: StorageConnection | str,
        *,
        retry_total: int = 3,
        timeout: float = 20.0,
        credential: Any = None,
    ) -> None:
        self._service = blob_service(
            connection, credential=credential, retry_total=retry_total, connection_timeout=timeout, read_timeout=timeout
        )

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> BlobStorage:
        return cls(settings.storage, **options)

    @property
    def account_url(self) -> str:
        return str(self._service.url).rstrip("/")

    def close(self) -> None:
        self._service.close()

    def ensure_containers(self, names: tuple[str, ...]) -> None:
        """Create each container unless it exists (safe to call from several processes at once)."""
        for name in names:
            box = self._service.get_container_client(name)
            with contextlib.suppress(ResourceExistsError):
                _call(f"create container {name}", box.create_container)

    def read(self, container: str, name: str) -> tuple[bytes, BlobInfo]:
        blob = self._service.get_blob_client(container, name)
        what = f"read {container}/{name}"

        def download() -> tuple[bytes, BlobInfo]:
            stream = blob.download_blob()
            data = stream.readall()
            return data, _info(container, stream.properties)

        return _call(what, download)

    def info(self, container: str, name: str) -> BlobInfo:
        blob = self._service.get_blob_client(container, name)
        return _call(f"info {container}/{name}", lambda: _info(container, blob.get_blob_properties()))

    def write(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        metadata: dict[str, str] | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> BlobInfo:
        """Upload ``data``; ``overwrite=False`` writes only if the blob does not exist yet, ``if_match`` only if
        the blob still has that etag (optimistic concurrency: ``BlobChangedError`` otherwise)."""
        encoded = _encode_metadata(metadata)
        blob = self._service.get_blob_client(container, name)
        what = f"write {container}/{name}"
        settings = ContentSettings(content_type=_content_type(name))

        def upload() -> object:
            if if_match:  # only then: an etag=None keyword would reach the HTTP transport and fail there
                return blob.upload_blob(
                    data,
                    overwrite=True,
                    metadata=encoded,
                    content_settings=settings,
                    etag=f'"{_etag(if_match)}"',
                    match_condition=MatchConditions.IfNotModified,
                )
            return blob.upload_blob(data, overwrite=overwrite, metadata=encoded, content_settings=settings)

        try:
            _call(what, upload)
        except ResourceExistsError as exc:
            raise BlobExistsError(f"{container}/{name} already exists (create-only write)") from exc
        except ResourceModifiedError as exc:
            raise BlobChangedError(f"{container}/{name} changed since etag {if_match} (conditional write)") from exc
        return self.info(container, name)

    def list(self, container: str, prefix: str = "") -> builtins.list[BlobInfo]:
        box = self._service.get_container_client(container)

        def listing() -> builtins.list[BlobInfo]:
            found: Iterator[BlobProperties] = box.list_blobs(name_starts_with=prefix or None, include=["metadata"])
            return [_info(container, props) for props in found]

        return _call(f"list {container}/{prefix}", listing)

    def delete(self, container: str, name: str) -> None:
        """Delete the blob; deleting a blob (or container) that is not there is not an error."""
        blob = self._service.get_blob_client(container, name)
        with contextlib.suppress(NotFoundError):
            _call(f"delete {container}/{name}", lambda: blob.delete_blob(delete_snapshots="include"))

    def url(self, container: str, name: str) -> str:
        return str(self._service.get_blob_client(container, name).url)

    def read_range(self, container: str, name: str, offset: int, length: int, etag: str | None = None) -> bytes:
        """Bytes ``[offset, offset + length)`` of the blob; with ``etag``, only of that version
        (``BlobChangedError`` once it has been replaced)."""
        blob = self._service.get_blob_client(container, name)
        condition: dict[str, Any] = (
            {"etag": f'"{_etag(etag)}"', "match_condition": MatchConditions.IfNotModified} if etag else {}
        )

        def download() -> bytes:
            return bytes(blob.download_blob(offset=offset, length=length, max_concurrency=1, **condition).readall())

        try:
            return _call(f"read {container}/{name} bytes {offset}+{length}", download)
        except ResourceModifiedError as exc:
            raise BlobChangedError(f"{container}/{name} changed since etag {etag}") from exc

    def stage_block(self, container: str, name: str, block_id: str, data: bytes) -> None:
        """Stage ``data`` as the uncommitted block ``block_id`` of block blob ``name`` (staging the same id again
        replaces it: a retried chunk does not add a second copy)."""
        blob = self._service.get_blob_client(container, name)
        _call(f"stage block of {container}/{name}", lambda: blob.stage_block(block_id, data, length=len(data)))

    def commit_blocks(
        self, container: str, name: str, block_ids: Sequence[str], *, metadata: dict[str, str] | None = None
    ) -> BlobInfo:
        """Make the blob the staged blocks ``block_ids`` in this order (the service joins them: nothing passes
        through this process); uncommitted blocks not listed are discarded."""
        from azure.storage.blob import BlobBlock

        blob = self._service.get_blob_client(container, name)
        encoded = _encode_metadata(metadata)
        settings = ContentSettings(content_type=_content_type(name))
        blocks = [BlobBlock(block_id) for block_id in block_ids]
        _call(
            f"commit blocks of {container}/{name}",
            lambda: blob.commit_block_list(blocks, metadata=encoded, content_settings=settings),
        )
        return self.info(container, name)


def _content_type(name: str) -> str:
    lowered = name.lower()
    for suffix, kind in _CONTENT_TYPES:
        if lowered.endswith(suffix):
            return kind
    return "application/octet-stream"
