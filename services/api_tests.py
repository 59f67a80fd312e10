"""The release's API tests against a live scoring endpoint (local server or Azure ML online endpoint).

Known inputs must give finite predictions of the right shape from the expected model version; latency p99 and
error rate must stay within the thresholds; bad requests must get a 4xx, never a 5xx; a missing key a 401.
Every request is bounded by a timeout, and the number of requests by ``thresholds["requests"]``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import requests

from backends.ports import Endpoints, EndpointState
from messages.steps import ApiTestRequest
from ml.sample import diabetes_frame
from ml.schema import ACTIVE_SCHEMA
from ml.spec import ModelSpec
from services.catalog import spec_of

TIMEOUT_S = 10.0
#: requests sent before the measured ones: their answers are checked, their latency is not measured
WARMUP_REQUESTS = 5
BAD_BODIES: tuple[tuple[str, bytes], ...] = (
    ("malformed JSON", b"{not json"),
    ("wrong row width", b'{"data": [[1, 2, 3]]}'),
    ("non-numeric value", b'{"data": [["a", 1, 2, 3, 4, 5, 6, 7, 8, 9]]}'),
    ("missing data", b'{"rows": []}'),
)


def sample_rows(spec: ModelSpec | None, count: int = 10) -> list[list[float]]:
    """Known inputs: the first ``count`` rows of the model's sample (the default model's: the diabetes sample)."""
    if spec is None:
        frame, names = diabetes_frame(), ACTIVE_SCHEMA.feature_names
    else:
        frame, names = spec.sample_frame(), spec.schema.feature_names
        if frame is None:
            raise ValueError(f"{spec.path}: the API tests need sample rows, and the spec names no sample")
    return frame[names].head(count).to_numpy(dtype=float).tolist()


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)] if ordered else 0.0


def _check_answer(response: requests.Response, rows: int, version: str) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    body = response.json()
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != rows:
        return f"expected {rows} predictions, got {predictions!r:.100}"
    if not all(isinstance(p, int | float) and math.isfinite(p) for p in predictions):
        return "non-finite or non-numeric prediction"
    if str(body.get("model_version")) != version:
        return f"served version {body.get('model_version')!r}, expected {version!r}"
    return None


def test_release(endpoints: Endpoints, request: ApiTestRequest) -> dict[str, Any]:
    """A release's API tests: rows of the model's own sample against its endpoint, with the release's thresholds."""
    known = sample_rows(spec_of(request.model_name))
    return run(endpoints.state(request.endpoint), request.version, request.thresholds.to_dict(), known)


def run(
    state: EndpointState, version: str, thresholds: dict[str, Any], known: list[list[float]] | None = None
) -> dict[str, Any]:
    """Run the API tests and return the verdict with its figures and the reasons of any failure; ``known`` are
    the rows to score (at least 10; the default model's sample when None)."""
    known = known or sample_rows(None)
    session = requests.Session()
    auth = {"Authorization": f"Bearer {state.key}", "Content-Type": "application/json"}
    count = max(1, int(thresholds.get("requests", 50)))
    latencies, failures = [], []
    for i in range(-WARMUP_REQUESTS, count):
        rows = 1 if i % 5 else 10
        started = time.perf_counter()
        try:
            response = session.post(state.scoring_url, json={"data": known[:rows]}, headers=auth, timeout=TIMEOUT_S)
            problem = _check_answer(response, rows, version)
        except requests.RequestException as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if i >= 0:  # the warm-up's answers must be right too; its latency (connection set-up, first calls) is not
            latencies.append((time.perf_counter() - started) * 1000)  # what the limit is about
        if problem:
            failures.append(problem)
    sent = count + WARMUP_REQUESTS
    reasons = _threshold_reasons(latencies, failures, sent, thresholds)
    reasons += _bad_request_reasons(session, state.scoring_url, auth, known[0])
    p99, error_rate = _p99(latencies), len(failures) / sent
    summary = f"{count} requests, p99 {p99:.1f} ms, error rate {error_rate:.1%}" + (
        "; " + "; ".join(reasons) if reasons else "; all checks passed"
    )
    return {
        "passed": not reasons,
        "summary": summary[:2000],
        "reasons": reasons[:20],
        "requests": count,
        "p99_ms": round(p99, 2),
        "error_rate": error_rate,
        "version": version,
    }


def _threshold_reasons(
    latencies: list[float], failures: list[str], count: int, thresholds: dict[str, Any]
) -> list[str]:
    reasons = []
    if failures:
        reasons.append(f"{len(failures)} of {count} requests failed (first: {failures[0]})")
    if len(failures) / count > float(thresholds.get("max_error_rate", 0.01)):
        reasons.append(f"error rate {len(failures) / count:.1%} above {float(thresholds['max_error_rate']):.1%}")
    if _p99(latencies) > float(thresholds.get("max_p99_ms", 500)):
        reasons.append(f"p99 latency {_p99(latencies):.1f} ms above {float(thresholds['max_p99_ms']):g} ms")
    return reasons


def _bad_request_reasons(session: requests.Session, url: str, auth: dict[str, str], row: list[float]) -> list[str]:
    reasons = []
    for what, body in BAD_BODIES:
        try:
            status = session.post(url, data=body, headers=auth, timeout=TIMEOUT_S).status_code
        except requests.RequestException as exc:
            reasons.append(f"{what}: {type(exc).__name__}")
            continue
        if not 400 <= status < 500:
            reasons.append(f"{what}: expected a 4xx, got HTTP {status}")
    try:
        status = session.post(url, json={"data": [row]}, timeout=TIMEOUT_S).status_code
        if status != 401:
            reasons.append(f"request without key: expected 401, got HTTP {status}")
    except requests.RequestException as exc:
        reasons.append(f"request without key: {type(exc).__name__}")
    return reasons
