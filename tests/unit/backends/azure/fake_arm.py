"""A fake Azure Resource Manager at the HTTP transport boundary: the real azure-ai-ml client, canned responses.

Requests go through azure-core's ``RequestsTransport`` into a ``requests`` adapter that records them and answers
from a small in-memory store of ARM resources (PUT stores the body, GET returns it), so the SDK's own request
building, serialisation and response parsing all run. Nothing leaves the process.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
import urllib3
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import BaseAdapter

WS = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"


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


@dataclass
class FakeArm(BaseAdapter):
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()
        self.resources.setdefault(WS.lower(), {"id": WS, "name": "ws", "location": "westeurope", "kind": "Default",
                                               "properties": {"friendlyName": "ws"}})

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = urlparse(str(request.url))
        raw = request.body.decode() if isinstance(request.body, bytes) else request.body
        body = json.loads(raw) if raw else None
        self.seen.append(Seen(str(request.method), url.path, parse_qs(url.query), body, dict(request.headers)))
        status, answer = self.route(str(request.method), url.path, body)
        return _response(request, status, answer)

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        key = path.rstrip("/").lower()
        if method == "PUT":
            stored = {**(body or {}), "id": path, "name": path.rstrip("/").rsplit("/", 1)[-1]}
            props = stored.setdefault("properties", {})
            props["provisioningState"] = "Succeeded"
            if "/jobs/" in key:
                props.setdefault("status", "NotStarted")
            if "/models/" in key and "/versions/" in key:  # ARM fills in the MLflow flavors it read
                props.setdefault("flavors", {"python_function": {"data": {"loader_module": "mlflow.sklearn"}}})
                container_path = path.rstrip("/").rsplit("/versions/", 1)[0]
                container = self.resources.setdefault(container_path.lower(), {
                    "id": container_path, "name": container_path.rsplit("/", 1)[-1], "properties": {}})
                latest = max(int(stored["name"]), int(container["properties"].get("latestVersion", 0)))
                container["properties"].update(latestVersion=str(latest), nextVersion=str(latest + 1))
            if "/deployments/" in key:  # defaults ARM reports back for a deployment
                props.setdefault("scaleSettings", {"scaleType": "Default"})
                if props.get("endpointComputeType") == "Kubernetes":
                    props.setdefault("containerResourceRequirements", {
                        "containerResourceRequests": {"cpu": "0.5", "memory": "1Gi"}})
            if "/onlineendpoints/" in key and "/deployments/" not in key:
                props.setdefault("scoringUri", f"https://{stored['name']}.westeurope.inference.ml.azure.com/score")
            self.resources[key] = stored
            return 200, stored
        if method == "DELETE":
            return (200, {}) if self.resources.pop(key, None) else (404, _not_found())
        if method == "POST" and key.endswith("/listkeys"):
            return 200, {"primaryKey": "primary-secret", "secondaryKey": "secondary-secret"}
        if method == "POST" and key.endswith("/cancel"):
            return 202, {}
        if key in self.resources:
            return 200, self.resources[key]
        depth = key.count("/") + 1
        children = [v for k, v in self.resources.items() if k.startswith(key + "/") and k.count("/") == depth]
        if method == "GET" and re.search(r"/(versions|deployments|codes)$", key):
            return 200, {"value": children}
        return 404, _not_found()

    def close(self) -> None:
        pass

    def bodies(self, method: str, pattern: str) -> list[Any]:
        return [s.body for s in self.seen if s.method == method and re.search(pattern, s.path, re.I)]


def _not_found() -> dict[str, Any]:
    return {"error": {"code": "NotFound", "message": "The resource does not exist"}}


def _response(request: requests.PreparedRequest, status: int, body: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps(body).encode()
    response.raw = urllib3.HTTPResponse(body=io.BytesIO(response._content), headers=dict(response.headers),
                                        status=status, preload_content=False)
    response.url, response.request, response.reason = str(request.url), request, "OK" if status < 400 else "ERR"
    return response


def transport(fake: FakeArm) -> RequestsTransport:
    session = requests.Session()
    session.mount("https://", fake)
    return RequestsTransport(session=session, session_owner=False)
