"""Values taken from requests: numbers that are finite and bounded, times, bodies read within a size limit.

Every failure is a ``RequestError`` whose message names the parameter; the routing layer answers it with its
status (400, 413, 415 …) and never lets the value reach a timer, a SQL statement or the log unclipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from aiohttp import web

from devhost.errors import DevhostError
from devhost.history import parse_time
from devhost.limits import clip


class RequestError(DevhostError, ValueError):
    """A request the caller must change; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def query_float(q: Mapping[str, str], name: str, default: float | None, low: float, high: float) -> float | None:
    """A finite number of ``low``..``high`` (inclusive) from the query, or ``default`` when absent."""
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise RequestError(f"{name} must be a number, got {clip(raw, 40)!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise RequestError(f"{name} must be a finite number from {low:g} to {high:g}, got {clip(raw, 40)!r}")
    return value


def query_int(q: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not (text.isdigit() or (text[:1] in "+-" and text[1:].isdigit())) or len(text) > 20:
        raise RequestError(f"{name} must be a whole number from {low} to {high}, got {clip(raw, 40)!r}")
    value = int(text)
    if not low <= value <= high:
        raise RequestError(f"{name} must be a whole number from {low} to {high}, got {clip(raw, 40)!r}")
    return value


def query_time(q: Mapping[str, str], name: str) -> datetime | None:
    """An ISO-8601 UTC time (``2024-01-31T12:00:00Z``) from the query, or None when absent."""
    raw = q.get(name)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except (ValueError, OverflowError):
        raise RequestError(
            f"{name} must be an ISO-8601 UTC time such as 2024-01-31T12:00:00Z, got {clip(raw, 40)!r}"
        ) from None


async def read_body(request: web.Request, limit: int, what: str = "The request body") -> bytes:
    """The whole body, or a 413 as soon as it is known to be over ``limit`` bytes (before reading it all)."""
    if request.content_length is not None and request.content_length > limit:
        raise RequestError(f"{what} is {request.content_length:,} bytes; the limit is {limit:,} bytes", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise RequestError(f"{what} is over the limit of {limit:,} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)
