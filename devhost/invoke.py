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

from azure.functions import meta

from devhost.connections import binding_connection
from devhost.context import InvocationContext, OutValue
from devhost.errors import FunctionNotFound
from devhost.limits import clip
from devhost.loader import FunctionInfo

log = logging.getLogger(__name__)

DEFAULT_CONNECTION = "AzureWebJobsStorage"
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

    def _kwargs(self, info: FunctionInfo, trigger_value: Any,
                invocation_id: str) -> tuple[dict[str, Any], dict[str, OutValue]]:
        kwargs: dict[str, Any] = {}
        outs: dict[str, OutValue] = {}
        trigger_name = info.trigger.get("name")
        for binding in info.bindings:
            name = binding.get("name")
            if not name or name == "$return":
                continue
            if name == trigger_name:
                kwargs[name] = trigger_value
            elif binding.get("type") == "durableClient":
                kwargs[name] = self.client_json()
            elif str(binding.get("direction", "")).upper() == "OUT":
                outs[name] = kwargs[name] = OutValue()
            else:
                log.warning("fn=%s binding %s of type %s is not supported by devhost; passing None",
                            info.name, name, binding.get("type"))
                kwargs[name] = None
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
        for key, val in outputs.items():
            if val is not None:
                log.info("%s output binding %s set (not persisted by devhost): %s", tag, key, clip(val))
        return InvocationResult(value, outputs)

    async def invoke(self, name: str, trigger: object) -> object:
        """The ``Invoke`` the listeners use: (function name, decoded trigger object) -> return value."""
        result = await self.call(self.get(name), trigger)
        return result.value

    async def admin_trigger(self, info: FunctionInfo, text: str) -> Any:
        """Build the trigger object for ``POST /admin/functions/{name}`` from its ``input`` string."""
        kind = info.trigger_type
        if kind == "timerTrigger":
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            body = {"Schedule": {"AdjustForDST": True},
                    "ScheduleStatus": {"Last": now, "Next": now, "LastUpdated": now}, "IsPastDue": False}
            return decode_trigger(kind, json.dumps(body), "json")
        if kind in ("eventGridTrigger", "activityTrigger"):
            return decode_trigger(kind, text, "json")
        if kind == "blobTrigger":
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.pool, read_blob_trigger, info, text)
        if kind in ("queueTrigger", "serviceBusTrigger", "eventHubTrigger"):
            return decode_trigger(kind, text, "string")
        raise ValueError(f"devhost cannot build a '{kind}' trigger from the admin API")


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
        meta_doc = {"BlobTrigger": meta.Datum(blob_path, "string"), "Uri": meta.Datum(blob.url, "string"),
                    "Properties": meta.Datum(json.dumps({"ContentLength": props.size}), "json"),
                    "Metadata": meta.Datum(json.dumps(dict(props.metadata or {})), "json")}
    return decode_trigger("blobTrigger", data, "bytes", meta_doc)
