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
    return trigger_name[len(prefix) :] if trigger_name.startswith(prefix) else trigger_name


#: Azure Storage's limits on a blob name: 1,024 characters, at most 254 path segments
MAX_BLOB_NAME = 1024
MAX_SEGMENTS = 254


def shown(value: object, limit: int = 120) -> str:
    """``repr`` of a value to echo in an error or a log line, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def parse_reference(reference: object, incoming: str) -> str:
    """``"<incoming>/<blob>"`` → the blob name; anything else raises ``BadReference`` saying why.

    The name must already be in its normal form: no empty, ``.`` or ``..`` segment (a URL would collapse them and
    address another blob, even another container), no backslash, no control character.
    """
    if not isinstance(reference, str) or not reference.strip():
        raise BadReference(f'"data" must be a string "{incoming}/<blob name>", got {shown(reference)}')
    container, _, name = reference.strip().partition("/")
    if container != incoming:
        raise BadReference(f'"data" must name a blob of the {incoming!r} container, got container {shown(container)}')
    if not name or name.endswith("/"):
        raise BadReference(f'"data" must name a blob: "{incoming}/<blob name>", got {shown(reference)}')
    if len(name) > MAX_BLOB_NAME or name.count("/") >= MAX_SEGMENTS:
        raise BadReference(f'"data": a blob name has at most {MAX_BLOB_NAME} characters and {MAX_SEGMENTS} segments')
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name) or "\\" in name:
        raise BadReference(f'"data" holds a control character or a backslash: {shown(reference)}')
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        raise BadReference(f'"data" must be a normalised blob name (no empty, "." or ".." segment): {shown(reference)}')
    return name
