"""A small client of the app's HTTP API (and of a scoring endpoint)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx


class ApiError(RuntimeError):
    """The API answered with an error; the message holds the status and what the API said."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        message = str(response.json().get("error", response.text))
    except ValueError:
        message = response.text
    raise ApiError(response.status_code, message.strip() or response.reason_phrase)


class ApiClient:
    """GET/POST on ``<base>/api/...`` with the function key in ``x-functions-key``."""

    def __init__(self, base_url: str, key: str | None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"x-functions-key": key} if key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, **params: Any) -> Any:
        response = self._http.get(path, params=params or None)
        _raise_for(response)
        return response.json()

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        return list(self._get("/api/runs", limit=limit))

    def run(self, instance_id: str) -> dict[str, Any]:
        return dict(self._get(f"/api/runs/{instance_id}"))

    def models(self) -> list[dict[str, Any]]:
        """The app's models: name, default, spec status and problems, task, newest version per stage."""
        return list(self._get("/api/models"))

    def versions(self, model: str) -> list[dict[str, Any]]:
        """A model's registry versions, newest first."""
        return list(self._get(f"/api/models/{quote(model, safe='')}/versions"))

    def default_model(self) -> str:
        """The model that drops at ``incoming/<file>`` go to."""
        return next(str(m["name"]) for m in self.models() if m.get("default"))

    def retrain(self, data: str | None = None) -> dict[str, Any]:
        response = self._http.post("/api/retrain", json={"data": data} if data else None)
        _raise_for(response)
        return dict(response.json())


def score(url: str, key: str, rows: list[list[float]], timeout: float = 30.0) -> dict[str, Any]:
    """POST ``<url>/score`` with a bearer key (the Azure ML convention)."""
    response = httpx.post(
        f"{url.rstrip('/')}/score", json={"data": rows}, headers={"Authorization": f"Bearer {key}"}, timeout=timeout
    )
    _raise_for(response)
    return dict(response.json())
