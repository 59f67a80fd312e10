"""OpenTelemetry to Application Insights when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set; silent otherwise.

``configure_azure_monitor`` raises without a connection string, so it is only called when one is set, and only
once. On Azure Functions with ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`` the worker has configured it
already. ``span(...)`` works either way (a no-op tracer when nothing is configured).

Run outcomes are custom events: ``record_run_finished`` logs one record on ``mlops.events`` carrying the attribute
``microsoft.custom_event.name``. The Azure Monitor log exporter turns such a record into an ``EventData`` envelope
(the ``customEvents`` table) named by that attribute, with every other attribute as a custom dimension and the
``microsoft.custom_measurements`` mapping as custom measurements. ``infra/alerts.bicep`` queries exactly the names
declared here; a test keeps the two in step.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from opentelemetry import trace

log = logging.getLogger(__name__)
_configured = False

#: the logger the exporter is attached to; events go to a child of it
EXPORTED_LOGGER = "mlops"
EVENTS_LOGGER = "mlops.events"
#: attribute names the Azure Monitor exporter reads (azure.monitor.opentelemetry.exporter._constants)
CUSTOM_EVENT_NAME_ATTRIBUTE = "microsoft.custom_event.name"
CUSTOM_MEASUREMENTS_ATTRIBUTE = "microsoft.custom_measurements"

#: the resource detectors the distro runs (it defaults to all, the Azure VM one included, which calls IMDS)
RESOURCE_DETECTORS_SETTING = "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"

#: the custom event of a finished run, and its custom dimensions
RUN_FINISHED_EVENT = "RunFinished"
RUN_FINISHED_DIMENSIONS = ("run_id", "kind", "outcome", "model", "version", "trigger", "duration_s", "reason")
RUN_FINISHED_MEASUREMENTS = ("duration_s",)
RUN_KINDS = ("retrain", "release", "batch")
#: the outcome recorded when an orchestration fails (the contract's outcomes are the normal endings)
FAILED_OUTCOME = "failed"
_REASON_LIMIT = 1000


def configure_telemetry(service_name: str, env: Mapping[str, str] | None = None) -> bool:
    """Send traces, metrics and logs to Application Insights if configured; returns whether this call did it."""
    global _configured
    values = os.environ if env is None else env
    connection = values.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip()
    if _configured or not connection:
        return False
    if values.get("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "").lower() == "true":
        return False
    from azure.monitor.opentelemetry import configure_azure_monitor

    if values.get("FUNCTIONS_WORKER_RUNTIME"):  # on Functions: no Azure VM metadata probe at cold start
        os.environ.setdefault(RESOURCE_DETECTORS_SETTING, "azure_app_service")
    configure_azure_monitor(
        connection_string=connection,
        logger_name=EXPORTED_LOGGER,
        enable_live_metrics=False,
        resource=_resource(service_name),
    )
    _configured = True
    log.info("telemetry: exporting to Application Insights as %s", service_name)
    return True


def _resource(service_name: str) -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": service_name})


@contextlib.contextmanager
def span(name: str, **attributes: str) -> Iterator[None]:
    """A span around one orchestration step or activity (``instance_id``, ``activity`` … as attributes)."""
    with trace.get_tracer("mlops").start_as_current_span(name, attributes=attributes):
        yield


@dataclass(frozen=True)
class RunFinished:
    """How a run ended: the ``RunFinished`` custom event's dimensions (``version`` is empty when none applies)."""

    run_id: str
    kind: str
    outcome: str
    model: str
    version: str
    trigger: str
    duration_s: float
    reason: str = ""

    def __post_init__(self) -> None:
        for name in ("run_id", "kind", "outcome", "model", "trigger"):
            if not getattr(self, name):
                raise ValueError(f"RunFinished: {name} must not be empty")
        if self.kind not in RUN_KINDS:
            raise ValueError(f"RunFinished: kind must be one of {', '.join(RUN_KINDS)}, got {self.kind!r}")
        if not math.isfinite(self.duration_s) or self.duration_s < 0:
            raise ValueError(f"RunFinished: duration_s must be a finite number >= 0, got {self.duration_s!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunFinished:
        missing = [name for name in RUN_FINISHED_DIMENSIONS if name != "reason" and name not in d]
        if missing:
            raise ValueError(f"RunFinished: missing {', '.join(missing)}")
        try:
            duration = float(d["duration_s"])
        except (TypeError, ValueError):
            raise ValueError(f"RunFinished: duration_s must be a number, got {d['duration_s']!r}") from None
        text = {
            name: "" if d.get(name) is None else str(d[name])
            for name in ("run_id", "kind", "outcome", "model", "version", "trigger", "reason")
        }
        return cls(duration_s=duration, **{**text, "reason": text["reason"][:_REASON_LIMIT]})

    def dimensions(self) -> dict[str, str]:
        values = self.to_dict()
        return {
            name: f"{values[name]:.3f}" if name == "duration_s" else str(values[name])
            for name in RUN_FINISHED_DIMENSIONS
        }


def record_run_finished(event: RunFinished) -> None:
    """Emit the ``RunFinished`` custom event (a no-op beyond a log line when telemetry is not configured)."""
    extra: dict[str, Any] = {
        CUSTOM_EVENT_NAME_ATTRIBUTE: RUN_FINISHED_EVENT,
        **event.dimensions(),
        CUSTOM_MEASUREMENTS_ATTRIBUTE: json.dumps({"duration_s": event.duration_s}),
    }
    events = logging.getLogger(EVENTS_LOGGER)
    if events.level == logging.NOTSET:  # the root logger's default (WARNING) would drop the event
        events.setLevel(logging.INFO)
    events.info(
        "%s run %s ended %s (model %s version %s, trigger %s, %.1f s)",
        event.kind,
        event.run_id,
        event.outcome,
        event.model,
        event.version or "-",
        event.trigger,
        event.duration_s,
        extra=extra,
    )
