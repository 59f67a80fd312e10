"""The dashboard page: served as-is but for the app's enums (nothing from the request is written into it), and its
renderers escape."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import azure.functions as func
import pytest

from messages.enums import Outcome, for_page
from triggers.dashboard import ENUMS_MARK, PAGE, dashboard, page

HOSTILE = '<img src=x onerror="alert(1)">\'`&'


def script() -> str:
    match = re.search(r"<script>(.*)</script>", page(), re.S)
    assert match
    return match.group(1)


def render(expression: str) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required (it runs Azurite too)")
    program = f"{script()}\nprocess.stdout.write({expression});"
    done = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_request_values_never_reach_the_page() -> None:
    req = func.HttpRequest("GET", f"http://h/api/dashboard?code={HOSTILE}", params={"code": HOSTILE}, body=b"")
    response = dashboard(req)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    body = response.get_body().decode()
    assert body == page()
    enums = json.dumps(for_page(), sort_keys=True)
    assert body == PAGE.read_text(encoding="utf-8").replace(ENUMS_MARK, enums)
    assert "onerror" not in body
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_runs_and_stages_are_escaped() -> None:
    run = {
        "id": HOSTILE,
        "kind": HOSTILE,
        "status": HOSTILE,
        "outcome": HOSTILE,
        "trigger": HOSTILE,
        "data": HOSTILE,
        "model_version": HOSTILE,
        "created": HOSTILE,
        "updated": None,
        "reason": HOSTILE,
    }
    detail = {
        "related": HOSTILE,
        "stages": [{"name": HOSTILE, "status": HOSTILE, "started": None, "finished": None, "detail": HOSTILE}],
    }
    html = render(f"renderRuns([{json.dumps(run)}], {{{json.dumps(HOSTILE)}: {json.dumps(detail)}}})")
    assert "<img" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&#39;&#96;&amp;" in html
    assert html.count("&lt;img") >= 9


def test_models_are_escaped_and_metrics_formatted() -> None:
    model = {
        "version": HOSTILE,
        "stage": HOSTILE,
        "metrics": {"rmse": 53.1234, "mae": HOSTILE, "r2": 0.5},
        "data": [{"blob": HOSTILE}],
        "run_id": HOSTILE,
        "registered": HOSTILE,
    }
    html = render(f"renderVersions([{json.dumps(model)}])")
    assert "<img" not in html
    assert "53.123" in html and "0.500" in html
    assert html.count("&lt;img") == 4


def test_a_classifiers_versions_show_its_own_metrics() -> None:
    version = {"version": "1", "stage": "qa", "metrics": {"auc": 0.991, "log_loss": 0.0812, "accuracy": 0.96}}
    html = render(f"renderVersions([{json.dumps(version)}])")
    assert "<th>auc</th><th>log_loss</th><th>accuracy</th>" in html and "<th>rmse</th>" not in html
    assert "0.991" in html and "0.081" in html


def test_each_model_shows_its_spec_status_problems_and_versions() -> None:
    models = [
        {"name": HOSTILE, "default": False, "status": "error", "problems": [HOSTILE], "task": None},
        {"name": "diabetes-ridge", "default": True, "status": "ok", "problems": [], "task": "regression"},
        {"name": "unread", "default": False, "status": "ok", "problems": [], "task": "binary"},
    ]
    versions = {HOSTILE: [], "diabetes-ridge": [{"version": "3", "stage": "champion"}], "unread": "HTTP 500"}
    html = render(f"renderModels({json.dumps(models)}, {json.dumps(versions)})")
    assert "<img" not in html and html.count("&lt;img") == 2  # the name and the problem, escaped
    assert "diabetes-ridge <small>(default)</small>" in html and "<td>3</td>" in html
    assert "No version registered yet" in html and "versions unavailable: HTTP 500" in html


def test_empty_views_say_so() -> None:
    assert "No run yet" in render("renderRuns([], {})")
    assert "No model registered yet" in render("renderModels([], {})")
    assert "No version registered yet" in render("renderVersions([])")


def test_a_run_whose_detail_failed_keeps_its_row() -> None:
    runs = [{"id": "a", "kind": "retrain", "status": "Completed"}, {"id": "b", "kind": "release", "status": "Failed"}]
    details = {"a": {"stages": [], "detailError": "/api/runs/a: HTTP 400"}}
    html = render(f"renderRuns({json.dumps(runs)}, {json.dumps(details)})")
    assert html.count("<tr><td") == 2
    assert "stages unavailable: /api/runs/a: HTTP 400" in html


def test_the_page_colours_outcomes_from_the_apps_enums() -> None:
    assert ENUMS_MARK in PAGE.read_text(encoding="utf-8") and ENUMS_MARK not in page()
    assert "rolled_back" not in PAGE.read_text(encoding="utf-8")  # no list of its own to fall out of step
    shown = json.loads(
        render(json.dumps([[o.value for o in Outcome]]) + ".map((v) => v.map(badgeClass)).map(JSON.stringify).join('')")
    )
    classes = dict(zip([o.value for o in Outcome], shown, strict=True))
    assert classes["registered"] == classes["deployed"] == "ok"
    assert classes["rolled_back"] == classes["qa_failed"] == classes["failed"] == "bad"
    assert classes["not_better"] == classes["superseded"] == "skip"
