"""Dropping a file into the incoming container with azure-storage-blob (Azurite offline, Azure Storage online)."""

from __future__ import annotations

import contextlib

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

#: Azurite (node_modules) rejects newer API versions than this; Azure Storage accepts it too.
API_VERSION = "2025-11-05"


def upload(connection_string: str, container: str, name: str, data: bytes) -> str:
    """Upload ``data`` as ``container/name`` (creating the container if needed); returns the new etag, unquoted."""
    with BlobServiceClient.from_connection_string(connection_string, api_version=API_VERSION) as service:
        box = service.get_container_client(container)
        if not box.exists():
            with contextlib.suppress(ResourceExistsError):  # created meanwhile by the app or another drop
                box.create_container()
        result = box.get_blob_client(name).upload_blob(data, overwrite=True)
        return str(result["etag"]).strip('"')
