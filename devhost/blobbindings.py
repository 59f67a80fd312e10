"""Blob input and output bindings (``@app.blob_input``, ``@app.blob_output`` / ``func.Out``), on the binding's storage
connection, with the host's binding expressions in ``path``.

Binding data, as the host builds it from the trigger: an HTTP trigger's route parameters and ``Query.<name>``; a
blob trigger's named groups of its path (``{name}`` …) plus ``BlobTrigger``; ``{rand-guid}`` and ``{DateTime}``
(one value per invocation); ``%setting%`` references. An input blob that does not exist binds ``None``, as the
host binds null; its value is what the parameter's annotation asks for: ``str`` (UTF-8 text), ``bytes``, or
``func.InputStream`` (the worker's converter). An output value (``str``, ``bytes`` or a stream) is uploaded when the
function has returned successfully, overwriting the blob; ``None`` writes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import uuid
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions import meta
from azure.functions.blob import BlobConverter

from devhost.connections import binding_connection
from devhost.loader import FunctionInfo, resolve_setting_refs

_EXPR = re.compile(r"\{([^{}]+)\}")


def binding_data(info: FunctionInfo, trigger: Any) -> dict[str, str]:
    """The values a binding expression may name, from the trigger (case-insensitive names, as the host)."""
    from devhost.blobs import compile_path  # the blob trigger's own path rules

    data: dict[str, str] = {
        "rand-guid": str(uuid.uuid4()),
        "DateTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H-%M-%SZ"),
    }
    if isinstance(trigger, func.HttpRequest):
        data.update({k: str(v) for k, v in trigger.route_params.items()})
        data.update({f"Query.{k}": str(v) for k, v in trigger.params.items()})
    elif isinstance(trigger, func.InputStream) and info.trigger_type == "blobTrigger" and trigger.name:
        path = resolve_setting_refs(str(info.trigger.get("path", "")), f"function {info.name}: path")
        container, pattern = compile_path(path)
        blob = trigger.name[len(container) + 1 :] if trigger.name.startswith(container + "/") else trigger.name
        found = pattern.match(blob)
        if found:
            data.update({k: v for k, v in found.groupdict().items() if v is not None})
        data["BlobTrigger"] = trigger.name
    elif isinstance(trigger, func.QueueMessage):
        text = trigger.get_body().decode("utf-8", "replace")
        data["queueTrigger"] = text
        with contextlib.suppress(ValueError):
            doc = json.loads(text)
            if isinstance(doc, dict):
                data.update({k: str(v) for k, v in doc.items() if isinstance(v, str | int | float | bool)})
    return data


def expand(path: str, data: dict[str, str], where: str) -> str:
    lowered = {k.lower(): v for k, v in data.items()}

    def value(m: re.Match[str]) -> str:
        key = m.group(1).strip().lower()
        if key not in lowered:
            raise ValueError(
                f"{where}: the binding expression {{{m.group(1)}}} has no value in this invocation "
                f"(known: {', '.join(sorted(data))})"
            )
        return lowered[key]

    return _EXPR.sub(value, resolve_setting_refs(path, where))


def _split(path: str, where: str) -> tuple[str, str]:
    container, _, blob = path.strip("/").partition("/")
    if not container or not blob:
        raise ValueError(f"{where}: blob path {path!r} must be 'container/blob'")
    return container, blob


def read_input(info: FunctionInfo, binding: dict[str, Any], data: dict[str, str], annotation: Any) -> Any:
    where = f"function {info.name}: blob input '{binding.get('name')}'"
    container, name = _split(expand(str(binding.get("path", "")), data, where), where)
    with binding_connection(binding).blob_service() as service:
        blob = service.get_blob_client(container, name)
        try:
            props = blob.get_blob_properties()
            content = blob.download_blob().readall()
        except ResourceNotFoundError:
            return None
    data_type = str(binding.get("dataType") or "").lower()
    if annotation is str or data_type == "string":
        return content.decode("utf-8")
    if annotation is bytes or data_type == "binary":
        return content
    metadata = {
        "Uri": meta.Datum(blob.url, "string"),
        "Properties": meta.Datum(json.dumps({"ContentLength": props.size}), "json"),
        "BlobTrigger": meta.Datum(f"{container}/{name}", "string"),
    }
    return BlobConverter.decode(meta.Datum(content, "bytes"), trigger_metadata=metadata)


def write_output(info: FunctionInfo, binding: dict[str, Any], data: dict[str, str], value: Any) -> str | None:
    """Upload ``value``; returns ``container/blob`` written, or None when there was nothing to write."""
    if value is None:
        return None
    where = f"function {info.name}: blob output '{binding.get('name')}'"
    if isinstance(value, str):
        body = value.encode("utf-8")
    elif isinstance(value, bytes | bytearray):
        body = bytes(value)
    elif hasattr(value, "read"):
        body = value.read()
    else:
        raise ValueError(f"{where}: cannot write a {type(value).__name__}; set str, bytes or a stream")
    container, name = _split(expand(str(binding.get("path", "")), data, where), where)
    with binding_connection(binding).blob_service() as service:
        with contextlib.suppress(ResourceExistsError):
            service.create_container(container)
        service.get_blob_client(container, name).upload_blob(body, overwrite=True)
    return f"{container}/{name}"
