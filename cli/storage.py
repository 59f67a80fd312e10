"""Dropping a file into the incoming container with azure-storage-blob (Azurite offline, Azure Storage online)."""

from __future__ import annotations

import contextlib

from azure.core.exceptions import ResourceExistsError

from backends.storage import blob_service
from backends.storage_connection import StorageConnection


def upload(connection: StorageConnection | str, container: str, name: str, data: bytes) -> str:
    """Upload ``data`` as ``container/name`` (creating the container if needed); returns the new etag, unquoted.

    ``connection`` is the app's storage as its settings give it, or a connection string. When it is identity-based,
    the person's own identity (``az login``) uploads: it needs a data role such as Storage Blob Data Contributor.
    """
    with blob_service(connection) as service:
        box = service.get_container_client(container)
        if not box.exists():
            with contextlib.suppress(ResourceExistsError):  # created meanwhile by the app or another drop
                box.create_container()
        result = box.get_blob_client(name).upload_blob(data, overwrite=True)
        return str(result["etag"]).strip('"')
