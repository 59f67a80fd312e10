"""Worker-equivalent invocation: kwargs per binding, ``context``, async on the loop, sync in the thread pool."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import meta

from devhost import blobbindings, queues, tables
from devhost.connections import binding_connection
from devhost.context import InvocationContext, OutValue
from devhost.errors import FunctionNotFound
from devhost.limits import clip
from devhost.loader import FunctionInfo

log = logging.getLogger(__name__)

DEFAULT_CONNECTION = "AzureWebJobsStorage"
#: triggers the host applies ``@app.retry`` to (of those devhost runs; blob and queue triggers retry by themselves)
RETRY_TRIGGERS = ("timerTrigger",)
Invoke = Callable[[str, object], Awaitable[object]]


@dataclass
class InvocationResult:
    """The return value plus any ``func.Out`` values the function set."""

    value: Any
    outputs: dict[str, Any] = field(default_factory=dict)


def decode_trigger(binding_type: str, value: Any, data_type: str, metadata: dict[str, Any] | None = None) -> Any:
    """Decode a trigger payload with the worker's own converter for that binding type."""
    converter = meta.get_binding_registry().get(binding_type)
    if converter is None:
        raise FunctionNotFound(f"no converter for binding type '{binding_type}'")
    return converter.decode(meta.Datum(value, data_type), trigger_metadata=metadata or {})


def encode_activity_result(value: Any) -> str:
    """Encode an activity's return value as the worker does (``df_dumps``)."""
    converter = meta.get_binding_registry().get("activityTrigger")
    return str(converter.encode(value, expected_type=None).value)


class Invoker:
    """Calls user functions exactly as the Python worker would."""

    def __init__(
        self,
        functions: dict[str, FunctionInfo],
        script_root: Path,
        pool: ThreadPoolExecutor,
        client_json: Callable[[], str],
    ) -> None:
        self.functions = functions
        self.script_root = script_root
        self.pool = pool
        self.client_json = client_json

    def find(self, name: str) -> FunctionInfo | None:
        """The function called ``name``; the host looks function names up case-insensitively."""
        info = self.functions.get(name)
        if info is None:
            low = name.lower()
            info = next((f for n, f in self.functions.items() if n.lower() == low), None)
        return info

    def get(self, name: str) -> FunctionInfo:
        info = self.find(name)
        if info is None:
            raise FunctionNotFound(f"The function '{clip(name, 100)}' doesn't exist")
        return info

    def _kwargs(
        self, info: FunctionInfo, trigger_value: Any, invocation_id: str
    ) -> tuple[dict[str, Any], dict[str, OutValue]]:
        kwargs: dict[str, Any] = {}
        outs: dict[str, OutValue] = {}
        trigger_name = info.trigger.get("name")
        for binding in info.bindings:
            name = binding.get("name")
            if not name or name == "$return":
                continue
            if name == trigger_name:
                kwargs[name] = _as_annotated(info, name, trigger_value)
            elif binding.get("type") == "durableClient":
                kwargs[name] = self.client_json()
            elif str(binding.get("direction", "")).upper() == "OUT":
                outs[name] = kwargs[name] = OutValue()
            else:
                kwargs[name] = None  # an input binding, read in ``_read_inputs`` (the loader refused any other)
        params = inspect.signature(info.callable).parameters
        if "context" in params and "context" not in kwargs:
            kwargs["context"] = InvocationContext(invocation_id, info.name, str(self.script_root / info.name))
        return kwargs, outs

    async def call(self, info: FunctionInfo, trigger_value: Any, *, instance_id: str | None = None) -> InvocationResult:
        """Run one invocation; exceptions are logged with their traceback and re-raised."""
        invocation_id = str(uuid.uuid4())
        kwargs, outs = self._kwargs(info, trigger_value, invocation_id)
        tag = f"fn={info.name} inv={invocation_id}" + (f" instance={instance_id}" if instance_id else "")
        log.info("%s executing (trigger=%s)", tag, info.trigger_type)
        started = time.perf_counter()
        try:
            data = await self._read_inputs(info, trigger_value, kwargs)
        except Exception as exc:
            log.error("%s input bindings failed: %s: %s", tag, type(exc).__name__, clip(exc))
            raise
        try:
            fn = info.callable
            if inspect.iscoroutinefunction(fn):
                value = await fn(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                value = await loop.run_in_executor(self.pool, functools.partial(fn, **kwargs))
        except Exception:
            log.exception("%s failed after %.1f ms", tag, (time.perf_counter() - started) * 1000)
            raise
        log.info("%s succeeded in %.1f ms", tag, (time.perf_counter() - started) * 1000)
        outputs = {k: o.value for k, o in outs.items()}
        try:
            await self._write_outputs(info, data, outputs, value, tag)
        except Exception as exc:
            log.error("%s output bindings failed: %s: %s", tag, type(exc).__name__, clip(exc, 400))
            raise
        return InvocationResult(value, outputs)

    def _blob_bindings(self, info: FunctionInfo, direction: str) -> list[dict[str, Any]]:
        """The storage bindings (blob, queue, table) of ``direction``."""
        return [
            b
            for b in info.bindings
            if b.get("type") in ("blob", "queue", "table") and str(b.get("direction", "")).upper() == direction
        ]

    async def _read_inputs(self, info: FunctionInfo, trigger_value: Any, kwargs: dict[str, Any]) -> dict[str, str]:
        """Fill the blob input bindings; returns the invocation's binding data (for the outputs' paths)."""
        data = blobbindings.binding_data(info, trigger_value)
        inputs = self._blob_bindings(info, "IN")
        if inputs:
            params = inspect.signature(info.callable).parameters
            loop = asyncio.get_running_loop()
            for b in inputs:
                param = params.get(str(b["name"]))
                annotation = param.annotation if param is not None else None
                if b["type"] == "table":
                    kwargs[str(b["name"])] = await loop.run_in_executor(self.pool, tables.read_input, info, b, data)
                    continue
                kwargs[str(b["name"])] = await loop.run_in_executor(
                    self.pool, blobbindings.read_input, info, b, data, _annotation(info, annotation)
                )
        return data

    async def _write_outputs(
        self, info: FunctionInfo, data: dict[str, str], outputs: dict[str, Any], value: Any, tag: str
    ) -> None:
        loop = asyncio.get_running_loop()
        for b in self._blob_bindings(info, "OUT"):
            name = str(b["name"])
            out = value if name == "$return" else outputs.get(name)
            if b["type"] == "queue":
                queue = blobbindings.expand(str(b.get("queueName", "")), data, f"function {info.name}: {name}")
                sent = await loop.run_in_executor(self.pool, queues.send_output, binding_connection(b), queue, out)
                if sent:
                    log.info("%s queue output %s: %d message(s) to %s", tag, name, sent, clip(queue))
                continue
            if b["type"] == "table":
                rows = await loop.run_in_executor(self.pool, tables.write_output, info, b, data, out)
                if rows:
                    log.info("%s table output %s: %d entit(ies)", tag, name, rows)
                continue
            written = await loop.run_in_executor(self.pool, blobbindings.write_output, info, b, data, out)
            if written:
                log.info("%s blob output %s written to %s", tag, name, clip(written))

    async def invoke(self, name: str, trigger: object) -> object:
        """The ``Invoke`` the listeners use: (function name, decoded trigger object) -> return value. A function
        with ``@app.retry`` on a trigger the host applies retry policies to (timer) runs again after a failure."""
        info = self.get(name)
        policy = info.extra.get("retry") if info.trigger_type in RETRY_TRIGGERS else None
        retry = 0
        while True:
            try:
                result = await self.call(info, trigger)
                return result.value
            except Exception:
                if policy is None or (policy.max_retry_count != -1 and retry >= policy.max_retry_count):
                    raise
                retry += 1
                wait = policy.wait(retry)
                log.warning(
                    "fn=%s failed; retry %d of %s in %.1f s (%s)",
                    info.name,
                    retry,
                    policy.max_retry_count if policy.max_retry_count >= 0 else "unlimited",
                    wait,
                    policy.strategy,
                )
                await asyncio.sleep(wait)

    async def admin_trigger(self, info: FunctionInfo, text: str) -> Any:
        """Build the trigger object for ``POST /admin/functions/{name}`` from its ``input`` string."""
        kind = info.trigger_type
        if kind == "timerTrigger":
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            body = {
                "Schedule": {"AdjustForDST": True},
                "ScheduleStatus": {"Last": now, "Next": now, "LastUpdated": now},
                "IsPastDue": False,
            }
            return decode_trigger(kind, json.dumps(body), "json")
        if kind in ("eventGridTrigger", "activityTrigger"):
            return decode_trigger(kind, text, "json")
        if kind == "blobTrigger":
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.pool, read_blob_trigger, info, text)
        if kind == "queueTrigger":
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            return decode_trigger(
                kind,
                text,
                "string",
                {
                    "Id": meta.Datum(str(uuid.uuid4()), "string"),
                    "DequeueCount": meta.Datum(1, "int"),
                    "InsertionTime": meta.Datum(now, "string"),
                },
            )
        raise ValueError(f"devhost cannot build a '{kind}' trigger from the admin API")


def _as_annotated(info: FunctionInfo, name: str, value: Any) -> Any:
    """A queue or blob trigger value as its parameter's annotation asks (``str`` or ``bytes``), as the worker
    converts it; any other annotation gets the worker's object (``func.QueueMessage``, ``func.InputStream``)."""
    param = inspect.signature(info.callable).parameters.get(name)
    annotation = _annotation(info, param.annotation) if param is not None else None
    if annotation not in (str, bytes):
        return value
    if isinstance(value, func.QueueMessage):
        body = value.get_body()
    elif isinstance(value, func.InputStream):
        body = value.read()
    else:
        return value
    return body.decode("utf-8") if annotation is str else body


def _annotation(info: FunctionInfo, annotation: Any) -> Any:
    """A parameter annotation as a type (string annotations resolved in the function's module)."""
    if isinstance(annotation, str):
        scope = getattr(info.callable, "__globals__", {})
        return {"str": str, "bytes": bytes}.get(annotation, scope.get(annotation.split(".")[-1], annotation))
    return annotation


def read_blob_trigger(info: FunctionInfo, blob_path: str) -> Any:
    """Download ``container/name`` and decode it as the worker's ``InputStream``."""
    container, _, name = blob_path.strip("/").partition("/")
    if not container or not name:
        raise ValueError(f"blob input must be 'container/name', got {blob_path!r}")
    service = binding_connection(info.trigger).blob_service()
    with service:
        blob = service.get_blob_client(container, name)
        data = blob.download_blob().readall()
        props = blob.get_blob_properties()
        meta_doc = {
            "BlobTrigger": meta.Datum(blob_path, "string"),
            "Uri": meta.Datum(blob.url, "string"),
            "Properties": meta.Datum(json.dumps({"ContentLength": props.size}), "json"),
            "Metadata": meta.Datum(json.dumps(dict(props.metadata or {})), "json"),
        }
    return decode_trigger("blobTrigger", data, "bytes", meta_doc)
