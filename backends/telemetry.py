"""OpenTelemetry to Application Insights when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set; silent otherwise.

``configure_azure_monitor`` raises without a connection string, so it is only called when one is set, and only
once. On Azure Functions with ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`` the worker has configured it
already. ``span(...)`` works either way (a no-op tracer when nothing is configured).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import trace

log = logging.getLogger(__name__)
_configured = False


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

    configure_azure_monitor(connection_string=connection, logger_name="mlops", enable_live_metrics=False,
                            resource=_resource(service_name))
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
