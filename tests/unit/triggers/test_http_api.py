from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest

from backends.ports import ModelVersion
from tests.support.azurite import free_port
from tests.unit.triggers.conftest import FakeDurable
from triggers import http_api
from triggers.http_api import ApiError, model_view, parse_limit, parse_retrain_body

retrain = http_api.http_retrain.build().get_user_function().client_function
list_runs = http_api.list_runs.build().get_user_function().client_function
get_run = http_api.get_run.build().get_user_function().client_function


def request(
    method: str = "GET", body: bytes = b"", params: dict[str, str] | None = None, route: dict[str, str] | None = None
) -> func.HttpRequest:
    return func.HttpRequest(
        method, "http://127.0.0.1:7071/api/x", params=params or {}, route_params=route or {}, body=body
    )


def payload(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (b'{"data": "incoming/a.csv", "x": 1}', r"unknown field\(s\) in body: 'x'"),
        (b'{"data": "quarantine/a.csv"}', "'incoming' container"),
        (b'{"data": 5}', "must be a string"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_bodies_are_named(body: bytes, says: str) -> None:
    with pytest.raises(ApiError, match=says) as caught:
        parse_retrain_body(body, "incoming")
    assert caught.value.status == 400


def test_valid_bodies() -> None:
    assert parse_retrain_body(b"", "incoming") is None
    assert parse_retrain_body(b"  ", "incoming") is None
    assert parse_retrain_body(b'{"data": null}', "incoming") is None
    assert parse_retrain_body(b'{"data": "incoming/2026/a.csv"}', "incoming") == "2026/a.csv"


def test_malformed_body_answers_400_as_json(durable: FakeDurable) -> None:
    response = asyncio.run(retrain(request("POST", b'{"data": "elsewhere/a.csv"}'), durable))
    assert response.status_code == 400
    assert "'incoming' container" in payload(response)["error"]
    assert durable.started == []


def test_retrain_without_body_starts_a_manual_run_with_check_status_payload(durable: FakeDurable) -> None:
    response = asyncio.run(retrain(request("POST"), durable))
    assert response.status_code == 202
    body = payload(response)
    assert body["id"].startswith("retrain-manual-")
    assert body["statusQueryGetUri"].endswith(f"/instances/{body['id']}?code=k")
    assert response.headers["Location"] == body["statusQueryGetUri"]
    name, instance_id, given = durable.started[0]
    assert (name, instance_id) == ("retrain", body["id"])
    assert given["trigger"] == "http" and given["data"] is None
    assert given["config"]["promotion"]["metric"] == "rmse"


@pytest.mark.parametrize(
    ("params", "expected"), [({}, 50), ({"limit": ""}, 50), ({"limit": "500"}, 500), ({"limit": "1"}, 1)]
)
def test_limits(params: dict[str, str], expected: int) -> None:
    assert parse_limit(params) == expected


@pytest.mark.parametrize("raw", ["0", "501", "ten", "-3"])
def test_bad_limits(raw: str) -> None:
    with pytest.raises(ApiError, match="limit"):
        parse_limit({"limit": raw})


def test_runs_are_listed_newest_first(durable: FakeDurable) -> None:
    durable.add("retrain-a", "retrain", "Completed", custom={"outcome": "registered"}, created="2026-01-01T00:00:00Z")
    durable.add("release-m-1", "release", "Running", custom={"stage": "deploy_qa"}, created="2026-01-02T00:00:00Z")
    response = asyncio.run(list_runs(request(params={"limit": "5"}), durable))
    assert response.status_code == 200
    assert [(r["id"], r["kind"]) for r in payload(response)] == [("release-m-1", "release"), ("retrain-a", "retrain")]
    assert asyncio.run(list_runs(request(params={"limit": "0"}), durable)).status_code == 400


def test_runs_are_listed_past_the_extensions_first_page_newest_first(
    durable: FakeDurable, listing_requests: list[dict[str, Any]]
) -> None:
    now = datetime.now(UTC)
    ages = {"today": timedelta(hours=1), "last-week": timedelta(days=7), "last-year": timedelta(days=300)}
    for n in range(250):  # 100 today, 100 a week ago, 50 last year: more than the extension's page of 100
        age = list(ages)[min(n // 100, 2)]
        created = (now - ages[age] - timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        durable.add(f"retrain-{age}-{n:03}", "retrain", "Completed", created=created)
    every = payload(asyncio.run(list_runs(request(params={"limit": "500"}), durable)))
    assert len(every) == 250 and [r["id"] for r in every] == [
        f"retrain-{list(ages)[min(n // 100, 2)]}-{n:03}" for n in range(250)
    ]
    assert len(listing_requests) == 3 and "createdTimeFrom" not in listing_requests[-1]  # widened to all time

    listing_requests.clear()
    newest = payload(asyncio.run(list_runs(request(params={"limit": "50"}), durable)))
    assert [r["id"] for r in newest] == [f"retrain-today-{n:03}" for n in range(50)]
    assert len(listing_requests) == 1  # the last day held enough: nothing older was read
    since = datetime.fromisoformat(listing_requests[0]["createdTimeFrom"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < now - since < timedelta(hours=25)
    assert listing_requests[0]["top"] == "1000" and listing_requests[0]["showInput"] == "true"

    listing_requests.clear()
    week = payload(asyncio.run(list_runs(request(params={"limit": "150"}), durable)))
    assert len(week) == 150 and week[-1]["id"] == "retrain-last-week-149" and len(listing_requests) == 2


def test_runs_listing_that_the_extension_refuses_is_a_503(durable: FakeDurable) -> None:
    durable._orchestration_bindings.rpc_base_url = f"http://127.0.0.1:{free_port()}/durabletask/"  # nothing listens
    response = asyncio.run(list_runs(request(), durable))
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert "listing orchestration instances" in payload(response)["error"]


def test_one_run_or_404(durable: FakeDurable) -> None:
    durable.add(
        "retrain-a",
        "retrain",
        "Running",
        custom={
            "stage": "train",
            "stages": [{"name": "train", "status": "running", "started": "2026-01-01T00:00:00Z"}],
        },
    )
    found = asyncio.run(get_run(request(route={"id": "retrain-a"}), durable))
    assert found.status_code == 200
    assert payload(found)["stages"][0]["name"] == "train"
    missing = asyncio.run(get_run(request(route={"id": "retrain-zzz"}), durable))
    assert missing.status_code == 404
    assert "retrain-zzz" in payload(missing)["error"]
    assert asyncio.run(get_run(request(route={"id": "a?b"}), durable)).status_code == 400


def test_model_view_reads_tags() -> None:
    tags = {"run_id": "retrain-a", "rmse": "53.2", "mae": "41", "r2": "bad", "data": '[{"blob":"a.csv","etag":"1"}]'}
    view = model_view(ModelVersion("m", "2", "champion", tags, registered="2026-01-01T00:00:00Z"))
    assert view == {
        "version": "2",
        "stage": "champion",
        "metrics": {"rmse": 53.2, "mae": 41.0, "r2": None},
        "data": [{"blob": "a.csv", "etag": "1"}],
        "run_id": "retrain-a",
        "registered": "2026-01-01T00:00:00Z",
    }


def test_deeply_nested_or_oversized_bodies_are_refused_before_work() -> None:
    with pytest.raises(ApiError, match="nested too deeply") as deep:
        parse_retrain_body(b"[" * 20_000 + b"]" * 20_000, "incoming")
    assert deep.value.status == 400
    with pytest.raises(ApiError, match="at most 65536") as big:
        parse_retrain_body(b'{"data": "incoming/' + b"a" * 70_000 + b'"}', "incoming")
    assert big.value.status == 413


def test_dot_segments_are_a_400_not_a_lookup(durable: FakeDurable) -> None:
    response = asyncio.run(retrain(request("POST", b'{"data": "incoming/../quarantine/x"}'), durable))
    assert response.status_code == 400
    assert "normalised blob name" in payload(response)["error"]
    assert durable.started == []


def test_storage_down_answers_503_at_once(durable: FakeDurable, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens on the storage port: one attempt, a 503 with Retry-After, within seconds (not 60 s)."""
    from backends import settings
    from tests.support.azurite import ACCOUNT, KEY, free_port

    dead = free_port()
    monkeypatch.setenv(
        "AzureWebJobsStorage",
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{dead}/{ACCOUNT};",
    )
    settings.current.cache_clear()
    started = time.monotonic()
    response = asyncio.run(retrain(request("POST", b'{"data": "incoming/a.csv"}'), durable))
    assert time.monotonic() - started < 10
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "try again later" in payload(response)["error"]
    assert durable.started == []


def test_any_id_durable_accepts_can_be_read(durable: FakeDurable) -> None:
    durable.add("run with spaces + ümlaut", "retrain", "Completed")
    response = asyncio.run(get_run(request(route={"id": "run with spaces + ümlaut"}), durable))
    assert response.status_code == 200
    assert payload(response)["id"] == "run with spaces + ümlaut"
    bad = asyncio.run(get_run(request(route={"id": "a\x01b"}), durable))
    assert bad.status_code == 400


def test_runs_of_one_model(durable: FakeDurable) -> None:
    durable.add("retrain-a", "retrain", "Completed", custom={"model": "breast-cancer"}, created="2026-01-02T00:00:00Z")
    durable.add("retrain-b", "retrain", "Completed", custom={"model": "diabetes-ridge"}, created="2026-01-03T00:00:00Z")
    durable.add("retrain-c", "retrain", "Pending", created="2026-01-04T00:00:00Z")  # not started yet: no model
    both = payload(asyncio.run(list_runs(request(), durable)))
    assert [(run["id"], run["model"]) for run in both] == [
        ("retrain-c", None),
        ("retrain-b", "diabetes-ridge"),
        ("retrain-a", "breast-cancer"),
    ]
    one = payload(asyncio.run(list_runs(request(params={"model": "breast-cancer"}), durable)))
    assert [run["id"] for run in one] == ["retrain-a"]
    unknown = asyncio.run(list_runs(request(params={"model": "nope"}), durable))
    assert unknown.status_code == 400
    assert payload(unknown)["error"] == (
        "model must be one of the app's models (breast-cancer, diabetes-ridge), got 'nope'"
    )
