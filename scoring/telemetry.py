"""Scoring requests as Application Insights custom metrics (what the scoring alerts read).

Self-contained (nothing of the repository outside ``scoring/``) and cheap to import: OpenTelemetry and the Azure
Monitor exporter are imported only when telemetry is configured, i.e. when ``APPLICATIONINSIGHTS_CONNECTION_STRING``
is set (``from_env`` returns ``None`` otherwise, and the server does without).

Per request the server calls ``observe(model_version, status, latency_ms)``, which feeds:

- ``scoring_requests_total`` (counter; dimensions ``endpoint``, ``model_version``, ``status_class`` 2xx/4xx/5xx);
- ``scoring_request_duration_ms`` (histogram; ``endpoint``, ``model_version``, ``status_class``): App Insights keeps
  only its sum, count, min and max per export;
- ``scoring_latency_p99_ms`` (observable gauge; ``endpoint``, ``model_version``): the p99 of the latencies seen
  since the previous export, computed here because customMetrics cannot give a percentile of a histogram. Each
  window keeps at most ``max_samples`` latencies per model version (a uniform reservoir sample beyond that).

The exporter sends counters and histograms with delta temporality, so each export's ``valueSum`` is the count or
total of that interval (``infra/alerts.bicep`` sums them).
"""

from __future__ import annotations

import math
import os
import random
import threading
from collections.abc import Iterable, Mapping
from typing import Any

REQUESTS_TOTAL = "scoring_requests_total"
REQUEST_DURATION_MS = "scoring_request_duration_ms"
LATENCY_P99_MS = "scoring_latency_p99_ms"
#: dimensions of each metric, as App Insights shows them in customDimensions
METRIC_DIMENSIONS: dict[str, tuple[str, ...]] = {
    REQUESTS_TOTAL: ("endpoint", "model_version", "status_class"),
    REQUEST_DURATION_MS: ("endpoint", "model_version", "status_class"),
    LATENCY_P99_MS: ("endpoint", "model_version"),
}
STATUS_CLASSES = ("2xx", "4xx", "5xx")
METER_NAME = "mlops.scoring"
CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
INTERVAL_SETTING = "SCORING_METRICS_EXPORT_SECONDS"
DEFAULT_EXPORT_INTERVAL_S = 60.0
OTHER_VERSIONS = "other"


def status_class(status: int) -> str:
    """``2xx``, ``4xx`` or ``5xx`` (1xx and 3xx are never answers of this server; they count with 2xx)."""
    if not 100 <= status <= 599:
        raise ValueError(f"not an HTTP status code: {status!r}")
    if status >= 500:
        return "5xx"
    return "4xx" if status >= 400 else "2xx"


def p99(samples: list[float]) -> float:
    """Nearest-rank 99th percentile (the smallest sample with at least 99% of the samples at or below it)."""
    if not samples:
        raise ValueError("p99 of no samples")
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


class LatencyWindow:
    """Latencies per model version since the last ``drain``: bounded in versions and in samples per version."""

    def __init__(self, max_samples: int = 4096, max_versions: int = 16, seed: int | None = None) -> None:
        if max_samples < 100 or max_versions < 1:
            raise ValueError("max_samples must be >= 100 (a p99 needs them) and max_versions >= 1")
        self.max_samples, self.max_versions = max_samples, max_versions
        self._samples: dict[str, list[float]] = {}
        self._seen: dict[str, int] = {}
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, model_version: str, latency_ms: float) -> None:
        with self._lock:
            if model_version not in self._samples and len(self._samples) >= self.max_versions:
                model_version = OTHER_VERSIONS
            samples = self._samples.setdefault(model_version, [])
            seen = self._seen.get(model_version, 0) + 1
            self._seen[model_version] = seen
            if len(samples) < self.max_samples:
                samples.append(latency_ms)
            else:  # reservoir sampling: every latency of the window has the same chance to be kept
                slot = self._random.randrange(seen)
                if slot < self.max_samples:
                    samples[slot] = latency_ms

    def drain(self) -> dict[str, float]:
        """The p99 per model version of the window, which starts anew."""
        with self._lock:
            windows, self._samples, self._seen = self._samples, {}, {}
        return {version: p99(samples) for version, samples in windows.items() if samples}


class ScoringTelemetry:
    """The scoring server's metrics on a meter provider of its own (never the process-global one)."""

    def __init__(self, endpoint: str, meter_provider: Any, window: LatencyWindow | None = None) -> None:
        if not endpoint:
            raise ValueError("endpoint must not be empty")
        from opentelemetry.metrics import CallbackOptions, Observation

        self.endpoint = endpoint
        self.window = window or LatencyWindow()
        self._provider = meter_provider
        self._observation = Observation
        meter = meter_provider.get_meter(METER_NAME)
        self._requests = meter.create_counter(REQUESTS_TOTAL, unit="1", description="scoring requests answered")
        self._duration = meter.create_histogram(REQUEST_DURATION_MS, unit="ms", description="scoring request latency")

        def latency_p99(options: CallbackOptions) -> Iterable[Observation]:
            return self._p99_observations()

        meter.create_observable_gauge(
            LATENCY_P99_MS,
            callbacks=[latency_p99],
            unit="ms",
            description="p99 scoring latency since the previous export",
        )

    @classmethod
    def to_azure_monitor(
        cls,
        endpoint: str,
        connection_string: str,
        *,
        export_interval_s: float = DEFAULT_EXPORT_INTERVAL_S,
        **exporter_options: Any,
    ) -> ScoringTelemetry:
        """Metrics exported to the Application Insights of ``connection_string`` every ``export_interval_s``."""
        if not 1.0 <= export_interval_s <= 3600.0:
            raise ValueError(f"export interval must be between 1 and 3600 s, got {export_interval_s}")
        from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource

        exporter = AzureMonitorMetricExporter(connection_string=connection_string, **exporter_options)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=export_interval_s * 1000)
        provider = MeterProvider(
            metric_readers=[reader],
            resource=Resource.create({"service.name": "mlops-scoring", "service.instance.id": endpoint}),
        )
        return cls(endpoint, provider)

    def observe(self, model_version: str, status: int, latency_ms: float) -> None:
        """One answered request (any status); ``latency_ms`` from the request's arrival to its answer."""
        if not math.isfinite(latency_ms) or latency_ms < 0:
            raise ValueError(f"latency must be a finite number >= 0, got {latency_ms!r}")
        version = str(model_version) or "none"
        attributes = {"endpoint": self.endpoint, "model_version": version, "status_class": status_class(status)}
        self._requests.add(1, attributes)
        self._duration.record(latency_ms, attributes)
        self.window.add(version, latency_ms)

    def _p99_observations(self) -> list[Any]:
        return [
            self._observation(value, {"endpoint": self.endpoint, "model_version": version})
            for version, value in sorted(self.window.drain().items())
        ]

    def flush(self, timeout_s: float = 10.0) -> bool:
        return bool(self._provider.force_flush(timeout_millis=int(timeout_s * 1000)))

    def shutdown(self) -> None:
        """Export what is pending and stop the export thread (call once, at server shutdown)."""
        self._provider.shutdown()


def from_env(endpoint: str, env: Mapping[str, str] | None = None) -> ScoringTelemetry | None:
    """The exporting telemetry when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set, else ``None``."""
    values = os.environ if env is None else env
    connection = values.get(CONNECTION_SETTING, "").strip()
    if not connection:
        return None
    raw = values.get(INTERVAL_SETTING, "").strip()
    try:
        interval = float(raw) if raw else DEFAULT_EXPORT_INTERVAL_S
    except ValueError:
        raise ValueError(f"{INTERVAL_SETTING}: expected a number of seconds, got {raw!r}") from None
    return ScoringTelemetry.to_azure_monitor(endpoint, connection, export_interval_s=interval)
