"""Request counters and latency histograms per model version, rendered as Prometheus text for ``/metrics``."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable

BUCKETS_MS = (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS_MS) + 1))
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.rows: dict[str, int] = defaultdict(int)
        self.out_of_range = 0

    def observe(self, version: str, status: int, latency_ms: float, rows: int = 0) -> None:
        self.requests[(version, status)] += 1
        self.buckets[version][bisect.bisect_left(BUCKETS_MS, latency_ms)] += 1
        self.latency_sum[version] += latency_ms
        self.rows[version] += rows

    def render(self, gauges: dict[str, Callable[[], float]]) -> str:
        lines = ["# TYPE scoring_requests_total counter"]
        lines += [
            f'scoring_requests_total{{version="{v}",status="{s}"}} {n}' for (v, s), n in sorted(self.requests.items())
        ]
        lines.append("# TYPE scoring_errors_total counter")
        errors: dict[str, int] = defaultdict(int)
        for (v, s), n in self.requests.items():
            if s >= 400:
                errors[v] += n
        lines += [f'scoring_errors_total{{version="{v}"}} {n}' for v, n in sorted(errors.items())]
        lines.append("# TYPE scoring_rows_total counter")
        lines += [f'scoring_rows_total{{version="{v}"}} {n}' for v, n in sorted(self.rows.items())]
        lines.append("# TYPE scoring_latency_ms histogram")
        for version, counts in sorted(self.buckets.items()):
            running = 0
            for bound, count in zip((*BUCKETS_MS, float("inf")), counts, strict=True):
                running += count
                label = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f'scoring_latency_ms_bucket{{version="{version}",le="{label}"}} {running}')
            lines.append(f'scoring_latency_ms_sum{{version="{version}"}} {self.latency_sum[version]:.3f}')
            lines.append(f'scoring_latency_ms_count{{version="{version}"}} {running}')
        lines += [
            "# TYPE scoring_out_of_range_values_total counter",
            f"scoring_out_of_range_values_total {self.out_of_range}",
        ]
        for name, read in sorted(gauges.items()):
            lines += [f"# TYPE {name} gauge", f"{name} {read():g}"]
        return "\n".join(lines) + "\n"
