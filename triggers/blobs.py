"""Blob references and etags as the triggers see them (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class BadReference(ValueError):
    """A data reference that does not name a blob of the incoming container."""


def canonical_etag(etag: str) -> str:
    """One spelling of an etag whatever the source (trigger metadata or storage): without quotes, as ``BlobInfo``.

    The blob trigger and ``POST /api/retrain`` must derive the same instance id from the same blob version.
    """
    bare = etag.strip().strip('"')
    if not bare:
        raise ValueError("empty etag")
    return bare


def etag_from_properties(properties: Mapping[str, Any] | None) -> str | None:
    """The ETag among a blob trigger's properties (the key's case varies between hosts)."""
    for key, value in (properties or {}).items():
        if key.lower() == "etag" and value:
            return canonical_etag(str(value))
    return None


def blob_name(trigger_name: str, container: str) -> str:
    """The blob's name inside its container; the trigger gives ``<container>/<name>``."""
    prefix = container + "/"
    return trigger_name[len(prefix):] if trigger_name.startswith(prefix) else trigger_name


def parse_reference(reference: object, incoming: str) -> str:
    """``"<incoming>/<blob>"`` → the blob name; anything else raises ``BadReference`` saying why."""
    if not isinstance(reference, str) or not reference.strip():
        raise BadReference(f'"data" must be a string "{incoming}/<blob name>", got {reference!r}')
    container, _, name = reference.strip().partition("/")
    if container != incoming:
        raise BadReference(f'"data" must name a blob of the {incoming!r} container, got container {container!r}')
    if not name or name.endswith("/"):
        raise BadReference(f'"data" must name a blob: "{incoming}/<blob name>", got {reference!r}')
    if any(ord(ch) < 32 for ch in name) or len(name) > 1024:
        raise BadReference(f'"data" holds an invalid blob name: {reference!r}')
    return name
