"""Posts ``Microsoft.MachineLearningServices.ModelRegistered`` to a webhook, as Azure ML does through Event Grid.

Locally the webhook is devhost's Event Grid endpoint (``MODEL_EVENTS_URL``). The body is an Event Grid schema array
of one event with a deterministic id (``name:version``), so a redelivery is recognisable; delivery is at least once
and the app dedupes. Connection errors and 5xx are retried with backoff; an event that still cannot be delivered is
logged and kept in ``<home>/events-outbox/`` until ``redeliver()`` posts it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests

log = logging.getLogger(__name__)

EVENT_TYPE = "Microsoft.MachineLearningServices.ModelRegistered"
TOPIC = "/subscriptions/local/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/local"


def model_registered_event(
    name: str,
    version: str,
    tags: dict[str, str],
    properties: dict[str, str] | None = None,
    when: datetime | None = None,
) -> dict[str, Any]:
    """One ModelRegistered event in Event Grid schema (PascalCase data keys, as Azure ML sends them)."""
    moment = (when or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return {
        "id": f"{name}:{version}",
        "topic": TOPIC,
        "subject": f"models/{name}:{version}",
        "eventType": EVENT_TYPE,
        "eventTime": moment,
        "data": {
            "ModelName": name,
            "ModelVersion": str(version),
            "ModelTags": dict(tags),
            "ModelProperties": dict(properties or {}),
        },
        "dataVersion": "2",
        "metadataVersion": "1",
    }


def with_code(url: str, key: str | None) -> str:
    """Add ``code=<key>`` to the URL's query unless the URL already carries a code (or there is no key)."""
    if not key:
        return url
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    if "code" in query:
        return url
    extra = urlencode({"code": key})
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


class ModelEventSink:
    """Delivers ModelRegistered events to ``url``; undelivered ones wait in ``outbox``."""

    def __init__(
        self,
        url: str,
        outbox: Path,
        *,
        key: str | None = None,
        attempts: int = 4,
        backoff_s: float = 0.25,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = with_code(url, key)
        self.outbox = outbox
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s

    @classmethod
    def for_home(cls, url: str, home: Path, key: str | None = None) -> ModelEventSink:
        """The sink of a local backend home; the key defaults to ``DEVHOST_MASTER_KEY`` from the environment."""
        return cls(url, home / "events-outbox", key=key if key is not None else os.environ.get("DEVHOST_MASTER_KEY"))

    def model_registered(
        self, name: str, version: str, tags: dict[str, str], properties: dict[str, str] | None = None
    ) -> bool:
        """Post the event; True if delivered, False if it was parked in the outbox."""
        event = model_registered_event(name, version, tags, properties)
        if self._post(event):
            return True
        self._park(event)
        return False

    def pending(self) -> list[Path]:
        return sorted(self.outbox.glob("*.json")) if self.outbox.is_dir() else []

    def redeliver(self) -> int:
        """Post every parked event once more; returns how many were delivered (and removed from the outbox)."""
        delivered = 0
        for path in self.pending():
            try:
                event = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.error("unreadable event in the outbox: %s", path)
                continue
            if self._post(event):
                path.unlink(missing_ok=True)
                delivered += 1
        return delivered

    def _post(self, event: dict[str, Any]) -> bool:
        body = json.dumps([event])
        headers = {"Content-Type": "application/json", "aeg-event-type": "Notification"}
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = requests.post(self.url, data=body, headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code < 300:
                log.info("delivered %s %s (HTTP %s)", event["eventType"], event["id"], response.status_code)
                return True
            problem = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code < 500 and response.status_code not in (408, 429):
                break
        log.error("could not deliver %s %s to %s: %s", event["eventType"], event["id"], _safe(self.url), problem)
        return False

    def _park(self, event: dict[str, Any]) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        target = self.outbox / (event["id"].replace("/", "_").replace(":", "@") + ".json")
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(event), encoding="utf-8")
        tmp.replace(target)
        log.error("event %s kept in %s for redelivery", event["id"], target)


def _safe(url: str) -> str:
    """The URL without its code (a secret) for logs."""
    parts = urlsplit(url)
    query = [(k, ["***"] if k == "code" else v) for k, v in parse_qs(parts.query, keep_blank_values=True).items()]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
