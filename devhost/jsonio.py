"""JSON in and out of devhost's HTTP surfaces: strict on the way in, standard on the way out.

In: UTF-8 only, no ``NaN``/``Infinity`` (not JSON, RFC 8259 §6), at most ``JSON_MAX_DEPTH`` levels of nesting; any
of these is a ``BadJson`` naming the problem, never a ``RecursionError`` or a 500.
Out: never ``NaN``/``Infinity`` literals. A non-finite float that reached devhost some other way (an orchestration
output computed by the app) is written the way Json.NET writes it by default (``FloatFormatHandling.String``):
``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from devhost.errors import DevhostError
from devhost.limits import JSON_MAX_DEPTH


class BadJson(DevhostError, ValueError):
    """A request body or value that is not acceptable JSON; the message says why."""


def _reject_constant(name: str) -> Any:
    raise BadJson(f"{name} is not a JSON value (only finite numbers are)")


def parse(raw: bytes | str, what: str = "the request body") -> Any:
    """Parse ``raw`` as strict JSON; ``BadJson`` with a message naming ``what`` otherwise."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadJson(f"{what} is not UTF-8 (invalid byte at offset {exc.start})") from None
    else:
        text = raw
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadJson(f"{what} is nested deeper than {JSON_MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise BadJson(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if _depth_over(value, JSON_MAX_DEPTH):
        raise BadJson(f"{what} is nested deeper than {JSON_MAX_DEPTH} levels")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _standard(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _standard(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_standard(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Standard JSON text of ``value`` (non-finite floats as Json.NET's strings)."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(_standard(value), allow_nan=False)


def loads_stored(text: str | None) -> Any:
    """A JSON value devhost stored (or the SDK wrote); lenient, since the app may have produced NaN."""
    return None if text is None else json.loads(text)
