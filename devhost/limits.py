"""Size limits devhost enforces, taken from what Azure enforces, and the clipping of echoed or logged values.

- ``PAYLOAD_LIMIT`` (1 MiB of UTF-8 JSON) for orchestration inputs, outputs, activity inputs and results, and
  external-event payloads. The Durable Task Scheduler, the recommended Durable Functions backend, caps a message at
  1 MiB (its large-payload sample, Azure-Samples/Durable-Task-Scheduler ``samples/durable-task-sdks/dotnet/
  LargePayload``, offloads payloads at 900,000 bytes "before they approach the 1 MiB scheduler ceiling", and that
  offloading exists for .NET only, not for Python apps). The Azure Storage backend moves messages over 45 KB to
  blobs instead of failing, so 1 MiB is the strictest documented ceiling a Python app meets on Azure, and the one a
  local run should hold it to.
- ``CUSTOM_STATUS_LIMIT``: "The custom status payload is limited to 16 KB of UTF-16 JSON text" (Microsoft Learn,
  Durable Task custom orchestration status).
- ``HTTP_BODY_LIMIT`` (100 MiB): the Functions host's default request body limit for HTTP triggers
  (``FUNCTIONS_REQUEST_BODY_SIZE_LIMIT``, 104,857,600 bytes).
- ``EVENTGRID_BODY_LIMIT`` (1 MiB): Event Grid delivers events of at most 1 MB; a delivery larger than that did not
  come from Event Grid.
"""

from __future__ import annotations

PAYLOAD_LIMIT = 1024 * 1024
CUSTOM_STATUS_LIMIT = 16 * 1024
HTTP_BODY_LIMIT = 100 * 1024 * 1024
EVENTGRID_BODY_LIMIT = 1024 * 1024
ADMIN_BODY_LIMIT = PAYLOAD_LIMIT
#: JSON nesting accepted in request bodies: Json.NET's default ``MaxDepth`` (64), which the Functions host and the
#: Durable extension read bodies with; deeper documents never reach a function on Azure either.
JSON_MAX_DEPTH = 64
#: longest value devhost echoes in an error or writes to its log
ECHO_LIMIT = 200


def clip(value: object, limit: int = ECHO_LIMIT) -> str:
    """``str(value)`` cut to ``limit`` characters, saying how much was cut."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def payload_problem(what: str, text: str | None, limit: int = PAYLOAD_LIMIT) -> str | None:
    """A message when ``text`` (UTF-8 JSON) is over ``limit`` bytes, else None."""
    if text is None:
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= limit:
        return None
    return f"{what} is {size:,} bytes of JSON; the limit is {limit:,} bytes"


def custom_status_problem(text: str | None) -> str | None:
    if text is None:
        return None
    size = len(text.encode("utf-16-le", "surrogatepass"))
    if size <= CUSTOM_STATUS_LIMIT:
        return None
    return f"the custom status is {size:,} bytes of UTF-16 JSON; the limit is {CUSTOM_STATUS_LIMIT:,} bytes"
