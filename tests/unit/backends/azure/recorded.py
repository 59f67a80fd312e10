"""Replay of answers that real Azure gave the azure-ai-ml SDK's own test suite (``tests/fixtures/azure/``).

A recording is a timeline. A request is answered by the next recorded entry for the same method and resource path
(the query is not compared: api-versions differ between SDK releases); a GET never skips past a recorded write to
its resource, so a GET before a recorded create answers 404 as ARM did then. A request the timeline has no later
entry for gets the latest earlier answer for its path (a resource reads the same until it is written), or for a GET
the latest recorded write's answer (ARM answers a GET with the resource a PUT returned), else 404.
``unrecorded`` answers requests no recording holds (the endpoint keys: see the fixtures' README).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from requests.adapters import BaseAdapter

from tests.unit.backends.azure.fake_arm import _response

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "azure"
Unrecorded = Callable[[str, str], tuple[int, Any] | None]


def load(name: str, replace: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The entries of a recording, with the substitutions the README lists applied to its text."""
    text = (FIXTURES / name).read_text()
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    entries: list[dict[str, Any]] = json.loads(text)["Entries"]
    return entries


def _path(uri: str) -> str:
    return urlparse(uri).path.rstrip("/").lower()


@dataclass
class RecordedArm(BaseAdapter):
    entries: list[dict[str, Any]]
    unrecorded: Unrecorded = lambda method, path: None
    position: int = -1
    served: list[tuple[str, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        method, path = str(request.method), _path(str(request.url))
        entry = self._find(method, path)
        if entry is not None:
            status, body, headers = entry["StatusCode"], entry["ResponseBody"], dict(entry["ResponseHeaders"])
        else:
            answer = self.unrecorded(method, path)
            status, body, headers = (
                (*answer, {}) if answer else (404, {"error": {"code": "NotFound", "message": "not recorded"}}, {})
            )
        if body == "null":
            body = None
        self.served.append((method, path, status))
        headers.pop("Content-Type", None)
        return _response(request, status, body, headers)

    def _find(self, method: str, path: str) -> dict[str, Any] | None:
        for index in range(self.position + 1, len(self.entries)):
            entry = self.entries[index]
            same = _path(entry["RequestUri"]) == path
            if same and entry["RequestMethod"] == method:
                self.position = index
                return entry
            if same and method == "GET" and entry["RequestMethod"] in ("PUT", "DELETE"):
                break
        earlier = [e for e in self.entries[: self.position + 1] if _path(e["RequestUri"]) == path]
        for entry in reversed(earlier):
            if entry["RequestMethod"] == method:
                return entry
            if method == "GET" and entry["RequestMethod"] == "PUT":
                return entry | {"StatusCode": 200, "ResponseHeaders": {}}
        return None

    def close(self) -> None:
        pass
