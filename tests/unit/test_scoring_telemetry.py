"""scoring/telemetry.py: status classes, the p99 window (bounded), the metrics on an in-memory reader."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from scoring import telemetry

ROOT = Path(__file__).resolve().parents[2]


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out[metric.name] = [
                    (dict(p.attributes or {}), getattr(p, "value", None) or getattr(p, "sum", 0))
                    for p in metric.data.data_points
                ]
    return out


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "2xx"), (204, "2xx"), (302, "2xx"), (400, "4xx"), (422, "4xx"), (499, "4xx"), (500, "5xx"), (503, "5xx")],
)
def test_status_classes(status: int, expected: str) -> None:
    assert telemetry.status_class(status) == expected


def test_not_a_status_is_refused() -> None:
    for bad in (0, 99, 600):
        with pytest.raises(ValueError, match="not an HTTP status code"):
            telemetry.status_class(bad)


def test_p99_is_the_nearest_rank() -> None:
    assert telemetry.p99([5.0]) == 5.0
    assert telemetry.p99([float(i) for i in range(1, 101)]) == 99.0
    assert telemetry.p99([float(i) for i in range(1, 201)]) == 198.0
    with pytest.raises(ValueError):
        telemetry.p99([])


def test_the_window_is_bounded_and_drains() -> None:
    window = telemetry.LatencyWindow(max_samples=100, max_versions=2, seed=1)
    for i in range(10_000):
        window.add("1", float(i % 1000))
    window.add("2", 3.0)
    window.add("3", 4.0)  # a third version folds into "other"
    assert len(window._samples["1"]) == 100 and window._seen["1"] == 10_000
    drained = window.drain()
    assert set(drained) == {"1", "2", telemetry.OTHER_VERSIONS}
    assert 900 <= drained["1"] <= 999  # a uniform sample of 0..999 keeps its tail
    assert window.drain() == {}


def test_metrics_carry_their_dimensions_and_the_gauge_covers_one_interval() -> None:
    reader = InMemoryMetricReader()
    scoring = telemetry.ScoringTelemetry("qa", MeterProvider(metric_readers=[reader]))
    for i in range(1, 101):
        scoring.observe("4", 200, float(i))
    scoring.observe("4", 422, 2.0)
    first = _points(reader)
    assert sorted(first) == sorted(telemetry.METRIC_DIMENSIONS)
    for name, dims in telemetry.METRIC_DIMENSIONS.items():
        assert all(set(attrs) == set(dims) for attrs, _ in first[name]), name
    counts = {attrs["status_class"]: value for attrs, value in first[telemetry.REQUESTS_TOTAL]}
    assert counts == {"2xx": 100, "4xx": 1}
    assert first[telemetry.LATENCY_P99_MS] == [({"endpoint": "qa", "model_version": "4"}, 99.0)]
    second = _points(reader)
    assert telemetry.LATENCY_P99_MS not in second, "the next interval has no requests: no p99"


def test_bad_observations_are_refused() -> None:
    scoring = telemetry.ScoringTelemetry("qa", MeterProvider(metric_readers=[InMemoryMetricReader()]))
    for latency in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="latency must be"):
            scoring.observe("1", 200, latency)
    with pytest.raises(ValueError, match="not an HTTP status code"):
        scoring.observe("1", 42, 1.0)
    with pytest.raises(ValueError, match="endpoint must not be empty"):
        telemetry.ScoringTelemetry("", MeterProvider())


def test_from_env_is_silent_without_a_connection_string_and_checks_the_interval() -> None:
    assert telemetry.from_env("qa", {}) is None
    assert telemetry.from_env("qa", {"APPLICATIONINSIGHTS_CONNECTION_STRING": "  "}) is None
    connection = "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=http://127.0.0.1:9/"
    with pytest.raises(ValueError, match="SCORING_METRICS_EXPORT_SECONDS: expected a number"):
        telemetry.from_env(
            "qa", {"APPLICATIONINSIGHTS_CONNECTION_STRING": connection, "SCORING_METRICS_EXPORT_SECONDS": "often"}
        )
    with pytest.raises(ValueError, match="between 1 and 3600"):
        telemetry.from_env(
            "qa", {"APPLICATIONINSIGHTS_CONNECTION_STRING": connection, "SCORING_METRICS_EXPORT_SECONDS": "0.1"}
        )


def test_the_module_is_self_contained_and_cheap_to_import() -> None:
    tree = ast.parse((ROOT / "scoring" / "telemetry.py").read_text())
    top_level = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    top_level |= {
        node.module.split(".")[0]
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }
    assert top_level <= {"__future__", "math", "os", "random", "threading", "collections", "typing"}, top_level
    every = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not every & {"backends", "ml", "triggers", "activities", "orchestrators"}
