"""A fake Azure Resource Manager for the Azure ML backend: the real azure-ai-ml client (and our ARM client), fake
answers shaped like the recorded ones (``tests/fixtures/azure/``).

``ArmSimulator`` keeps ARM resources in memory (PUT stores the body, GET returns it) and runs the online endpoints'
long-running operations as ARM does: a PUT of an endpoint or deployment answers 201 with ``provisioningState``
``Creating``/``Updating`` and an ``Azure-AsyncOperation`` header; a DELETE answers 202; the async URL answers
``Updating`` for ``polls`` reads, then ``Succeeded`` (or ``Failed`` with an error for the paths in ``failures``),
and only then does the resource change (traffic applied, deployment ready or gone). Every request is logged in
order. ``FakeArm`` serves it in process at azure-core's transport boundary; ``arm_server`` serves it over HTTPS.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
import urllib3
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import BaseAdapter

WS = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
LONG = re.compile(r"/onlineendpoints/[^/]+(/deployments/[^/]+)?$")
Answer = tuple[int, Any, dict[str, str]]


class FakeCredential:
    """Any object with ``get_token``: no Azure credential ever runs in tests (no IMDS probe)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("fake-token", 9_999_999_999)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]
    status: int = 0
    answer: Any = None
    at: float = 0.0


@dataclass
class Pending:
    key: str
    delete: bool
    left: int
    apply: dict[str, Any]
    error: dict[str, str] | None
    preparing: threading.Thread | None = None


@dataclass
class ArmSimulator:
    polls: int = 0
    failures: dict[str, dict[str, str]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    operations: dict[str, Pending] = field(default_factory=dict)
    keys: dict[str, str] = field(
        default_factory=lambda: {"primaryKey": "primary-secret", "secondaryKey": "secondary-secret"}
    )
    #: the platform's work once an operation ran its polls (load a model, route traffic): it runs in the background
    #: and the operation answers ``Updating`` until it is done, as ARM reports success only when the change is live
    prepare: Callable[[str, dict[str, Any] | None], None] | None = None
    scoring_uri: Callable[[str], str] = lambda name: f"https://{name}.westeurope.inference.ml.azure.com/score"
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.resources.setdefault(
            WS.lower(),
            {"id": WS, "name": "ws", "location": "westeurope", "kind": "Default", "properties": {"friendlyName": "ws"}},
        )

    def handle(self, method: str, url: str, body: Any, headers: dict[str, str]) -> Answer:
        parsed = urlparse(url)
        seen = Seen(method, parsed.path, parse_qs(parsed.query), copy.deepcopy(body), headers, at=time.monotonic())
        with self._lock:
            self.seen.append(seen)
            answer = self.route(method, parsed.path, body)
            status, payload, extra = answer
            base = f"{parsed.scheme}://{parsed.netloc}"
            extra = {k: base + v if v.startswith("/subscriptions") else v for k, v in extra.items()}
            inner = payload.get("properties", {}).get("properties", {}) if isinstance(payload, dict) else {}
            if str(inner.get("AzureAsyncOperationUri", "")).startswith("/"):
                inner["AzureAsyncOperationUri"] = base + inner["AzureAsyncOperationUri"]
            seen.status, seen.answer = status, copy.deepcopy(payload)  # as it was then
            return status, payload, extra

    def route(self, method: str, path: str, body: Any) -> Answer:
        key = path.rstrip("/").lower()
        if "/mfeoperationsstatus/" in key:
            return self._operation_status(key.rsplit("/", 1)[-1])
        if method == "PUT" and LONG.search(key):
            return self._begin_put(key, path, body or {})
        if method == "DELETE" and LONG.search(key):
            return self._begin_delete(key)
        if method == "PUT":
            return 200, self._store(key, path, body), {}
        if method == "DELETE":
            return (200, {}, {}) if self.resources.pop(key, None) else (404, _not_found(), {})
        if method == "POST" and key.endswith("/listkeys"):
            return (
                (200, dict(self.keys), {})
                if key.removesuffix("/listkeys") in self.resources
                else (404, _not_found(), {})
            )
        if method == "POST" and key.endswith("/cancel"):
            return 202, {}, {}
        if key in self.resources:
            return 200, self.resources[key], {}
        depth = key.count("/") + 1
        children = [v for k, v in self.resources.items() if k.startswith(key + "/") and k.count("/") == depth]
        if method == "GET" and re.search(r"/(versions|deployments|codes)$", key):
            return 200, {"value": children}, {}
        return 404, _not_found(), {}

    # --- long-running operations ------------------------------------------------------------------

    def _begin_put(self, key: str, path: str, body: dict[str, Any]) -> Answer:
        existing = self.resources.get(key)
        if any(p.key == key for p in self.operations.values()):
            return 409, {"error": {"code": "Conflict", "message": "another operation is in progress"}}, {}
        if (
            "/deployments/" in key
            and self._endpoint_of(key).get("properties", {}).get("provisioningState") != "Succeeded"
        ):
            return 400, {"error": {"code": "BadArgument", "message": "the endpoint is not ready"}}, {}
        stored = self._store(key, path, body, keep=existing)
        props = stored["properties"]
        apply: dict[str, Any] = {"provisioningState": "Succeeded"}
        if "/deployments/" not in key:  # ARM applies the new traffic only when the operation succeeds
            apply["traffic"] = dict(props.get("traffic") or {})
            props["traffic"] = dict((existing or {}).get("properties", {}).get("traffic") or {})
            props.setdefault("scoringUri", self.scoring_uri(stored["name"]))
        props["provisioningState"] = "Updating" if existing or "/deployments/" in key else "Creating"
        url = self._start(key, delete=False, apply=apply)
        props.setdefault("properties", {})["AzureAsyncOperationUri"] = url
        return 201, stored, {"Azure-AsyncOperation": url, "Location": path, "x-ms-async-operation-timeout": "PT30M"}

    def _begin_delete(self, key: str) -> Answer:
        if key not in self.resources:
            return 204, None, {}
        self.resources[key]["properties"]["provisioningState"] = "Deleting"
        url = self._start(key, delete=True, apply={})
        return (
            202,
            None,
            {"Azure-AsyncOperation": url, "Location": url.replace("mfeOperationsStatus", "mfeOperationResults")},
        )

    def _start(self, key: str, *, delete: bool, apply: dict[str, Any]) -> str:
        op_id = f"od:ws:{next(self._ids):08d}"
        error = next((e for suffix, e in self.failures.items() if key.endswith(suffix.lower())), None)
        self.operations[op_id] = Pending(key, delete, self.polls, apply, None if delete else error)
        return (
            "/subscriptions/sub/providers/Microsoft.MachineLearningServices/locations/westeurope/"
            f"mfeOperationsStatus/{op_id}?api-version=2022-02-01-preview"
        )

    def _operation_status(self, op_id: str) -> Answer:
        pending = self.operations.get(op_id) or self.operations.get(op_id.replace("od%3a", "od:"))
        if pending is None:
            done = self._finished.get(op_id)
            return (200, done, {}) if done else (404, _not_found(), {})
        body: dict[str, Any] = {"id": f"/mfeOperationsStatus/{op_id}", "name": op_id, "percentComplete": 0.0}
        if pending.left > 0:
            pending.left -= 1
            return 200, {**body, "status": "Updating"}, {}
        outcome = self._outcome(pending)
        if self.prepare is not None and pending.preparing is None:
            pending.preparing = threading.Thread(target=self.prepare, args=(pending.key, outcome), daemon=True)
            pending.preparing.start()
        if pending.preparing is not None and pending.preparing.is_alive():
            return 200, {**body, "status": "Updating"}, {}
        del self.operations[next(k for k, v in self.operations.items() if v is pending)]
        if outcome is None:
            self.resources.pop(pending.key, None)
        elif pending.key in self.resources:
            self.resources[pending.key] = outcome
        final = {**body, "percentComplete": 100.0, "status": "Failed" if pending.error else "Succeeded"}
        if pending.error:
            final["error"] = pending.error
        self._finished[op_id] = final
        return 200, final, {}

    def _outcome(self, pending: Pending) -> dict[str, Any] | None:
        """The resource as the operation leaves it (None: deleted)."""
        resource = self.resources.get(pending.key)
        if pending.delete or resource is None:
            return None
        after = copy.deepcopy(resource)
        if pending.error:
            after["properties"]["provisioningState"] = "Failed"
        else:
            after["properties"].update(pending.apply)
        return after

    @property
    def _finished(self) -> dict[str, Any]:
        return self.__dict__.setdefault("_finished_ops", {})

    # --- plain resources --------------------------------------------------------------------------

    def _store(self, key: str, path: str, body: Any, keep: dict[str, Any] | None = None) -> dict[str, Any]:
        stored = {**copy.deepcopy(body or {}), "id": path, "name": path.rstrip("/").rsplit("/", 1)[-1]}
        props = stored.setdefault("properties", {})
        props["provisioningState"] = "Succeeded"
        if keep and "scoringUri" in keep.get("properties", {}):
            props["scoringUri"] = keep["properties"]["scoringUri"]
        if "/jobs/" in key:
            props.setdefault("status", "NotStarted")
        if "/models/" in key and "/versions/" in key:  # ARM fills in the MLflow flavors it read
            props.setdefault("flavors", {"python_function": {"data": {"loader_module": "mlflow.sklearn"}}})
            container_path = path.rstrip("/").rsplit("/versions/", 1)[0]
            container = self.resources.setdefault(
                container_path.lower(),
                {"id": container_path, "name": container_path.rsplit("/", 1)[-1], "properties": {}},
            )
            latest = max(int(stored["name"]), int(container["properties"].get("latestVersion", 0)))
            container["properties"].update(latestVersion=str(latest), nextVersion=str(latest + 1))
        if "/deployments/" in key:  # defaults ARM reports back for a deployment
            props.setdefault("scaleSettings", {"scaleType": "Default"})
            if props.get("endpointComputeType") == "Kubernetes":
                props.setdefault(
                    "containerResourceRequirements", {"containerResourceRequests": {"cpu": "0.5", "memory": "1Gi"}}
                )
        self.resources[key] = stored
        return stored

    def _endpoint_of(self, key: str) -> dict[str, Any]:
        return self.resources.get(key.split("/deployments/", 1)[0], {})

    def bodies(self, method: str, pattern: str) -> list[Any]:
        return [s.body for s in self.seen if s.method == method and re.search(pattern, s.path, re.I)]


class FakeArm(ArmSimulator, BaseAdapter):
    """The simulator as a ``requests`` adapter: requests never leave the process."""

    def __post_init__(self) -> None:
        BaseAdapter.__init__(self)
        ArmSimulator.__post_init__(self)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        raw = request.body.decode() if isinstance(request.body, bytes) else request.body
        status, answer, headers = self.handle(
            str(request.method), str(request.url), json.loads(raw) if raw else None, dict(request.headers)
        )
        return _response(request, status, answer, headers)

    def close(self) -> None:
        pass


def _not_found() -> dict[str, Any]:
    return {"error": {"code": "NotFound", "message": "The resource does not exist"}}


def _response(request: requests.PreparedRequest, status: int, body: Any, headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers["Content-Type"] = "application/json"
    response.headers.update(headers)
    response._content = b"" if body is None else json.dumps(body).encode()
    response.raw = urllib3.HTTPResponse(
        body=io.BytesIO(response._content), headers=dict(response.headers), status=status, preload_content=False
    )
    response.url, response.request, response.reason = str(request.url), request, "OK" if status < 400 else "ERR"
    return response


def transport(fake: FakeArm) -> RequestsTransport:
    session = requests.Session()
    session.mount("https://", fake)
    return RequestsTransport(session=session, session_owner=False)
