"""HTTP triggers, auth levels, admin API, Event Grid webhook and a blueprint app through a real devhost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from tests.support.azurite import Azurite
from tests.support.devhost_proc import KEY, DevhostProcess, make_devhost, serving


@pytest.fixture(scope="module")
def http_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    with serving("http_app", tmp_path_factory.mktemp("http")) as host:
        yield host


def test_route_templates_constraints_and_prefix(http_host: DevhostProcess) -> None:
    res = http_host.request("GET", "/v1/ITEMS/42")
    assert res.status == 200 and res.headers["Content-Type"].startswith("application/json")
    doc = res.json()
    assert doc == {"id": 42, "url": f"{http_host.base}/v1/ITEMS/42"}
    named = http_host.request("GET", "/v1/items/abc")
    assert named.status == 200 and named.body == b"named abc"
    assert named.headers["Content-Type"].startswith("text/plain")
    assert http_host.request("GET", "/v1/files/a/b/c.txt").body == b"GET a/b/c.txt"
    assert http_host.request("DELETE", "/v1/files").body == b"DELETE "
    assert http_host.request("GET", "/api/items/42").status == 404
    assert http_host.request("POST", "/v1/items/42").status == 404


def test_optional_segment_and_context(http_host: DevhostProcess) -> None:
    with_tag = http_host.request("GET", "/v1/optional/red")
    assert with_tag.status == 201 and with_tag.json() == {"tag": "red", "fn": "optional", "inv": True}
    assert http_host.request("GET", "/v1/optional").json()["tag"] is None


def test_auth_levels(http_host: DevhostProcess) -> None:
    assert http_host.request("POST", "/v1/secure", {"who": "x"}).status == 401
    assert http_host.request("POST", "/v1/secure?code=bad", {"who": "x"}).status == 401
    ok = http_host.request("POST", "/v1/secure", {"who": "hdr"}, headers={"x-functions-key": KEY})
    assert ok.status == 200 and ok.body == b"hello hdr"
    assert http_host.request("POST", f"/v1/secure?code={KEY}", {"who": "q"}).body == b"hello q"
    assert http_host.request("GET", "/v1/admin-only").status == 401
    assert http_host.request("GET", f"/v1/admin-only?code={KEY}").status == 204


def test_function_exception_is_500_and_host_survives(http_host: DevhostProcess) -> None:
    res = http_host.request("GET", "/v1/explode")
    assert res.status == 500 and b"secret detail" not in res.body
    assert "RuntimeError: secret detail" in http_host.output()  # logged with its traceback
    assert http_host.request("GET", "/v1/items/1").status == 200


def test_admin_api_runs_a_timer_function(http_host: DevhostProcess) -> None:
    assert http_host.request("POST", "/admin/functions/nightly", {"input": ""}).status == 401
    res = http_host.request("POST", "/admin/functions/nightly", {"input": ""}, headers={"x-functions-key": KEY})
    assert res.status == 202
    assert (http_host.counts / "nightly").read_text() == "past_due=False"
    assert http_host.request("POST", f"/admin/functions/nope?code={KEY}", {"input": ""}).status == 404


def test_admin_api_runs_an_event_grid_function(http_host: DevhostProcess) -> None:
    event = {
        "id": "adm-1",
        "subject": "s",
        "eventType": "Custom.Thing",
        "eventTime": "2026-01-01T00:00:00Z",
        "data": {"k": 1},
        "dataVersion": "1",
        "topic": "t",
    }
    res = http_host.request("POST", f"/admin/functions/on_event?code={KEY}", {"input": json.dumps(event)})
    assert res.status == 202
    assert 'adm-1 Custom.Thing {"k": 1}' in (http_host.counts / "events").read_text()


def _eventgrid_available() -> bool:
    return (Path(__file__).resolve().parents[3] / "devhost" / "eventgrid.py").exists()


@pytest.mark.skipif(not _eventgrid_available(), reason="devhost/eventgrid.py is written by another helper")
def test_eventgrid_webhook(http_host: DevhostProcess) -> None:
    path = "/runtime/webhooks/eventgrid?functionName=on_event"
    event = {
        "id": "wh-1",
        "subject": "s",
        "eventType": "Custom.Thing",
        "eventTime": "2026-01-01T00:00:00Z",
        "data": {"n": 2},
        "dataVersion": "1",
        "topic": "t",
    }
    headers = {"aeg-event-type": "Notification"}
    assert http_host.request("POST", path, [event], headers=headers).status == 401
    ok = http_host.request("POST", f"{path}&code={KEY}", [event], headers=headers)
    assert ok.status == 202, ok.body  # the Event Grid extension answers a processed notification with 202
    assert "wh-1 Custom.Thing" in (http_host.counts / "events").read_text()
    failing = http_host.request(
        "POST", f"{path}&code={KEY}", [{**event, "id": "wh-2", "subject": "fail"}], headers=headers
    )
    assert failing.status == 500
    validation = {
        **event,
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "data": {"validationCode": "abc"},
    }
    val = http_host.request(
        "POST", f"{path}&code={KEY}", [validation], headers={"aeg-event-type": "SubscriptionValidation"}
    )
    assert val.status == 200 and val.json() == {"validationResponse": "abc"}
    unknown = "/runtime/webhooks/eventgrid?functionName=missing"
    assert http_host.request("POST", f"{unknown}&code={KEY}", [event], headers=headers).status == 404
    bad = http_host.request("POST", f"{path}&code={KEY}", raw=b"{not json", headers=headers)
    assert bad.status == 400


def test_blueprint_app_runs_durable_functions(tmp_path: Path) -> None:
    host = make_devhost("blueprint_app", tmp_path)
    host.start()
    try:
        res = host.request("GET", "/api/orchestrators/greet_all?who=Ana")
        assert res.status == 200, (res.body, host.output())
        assert res.json() == ["Hello Ana", "Hello again"]
        assert "greet_all: [orchestrationTrigger]" in host.output()
    finally:
        assert host.stop() == 0


@pytest.mark.parametrize(
    ("file", "content", "needle"),
    [
        ("local.settings.json", "{broken", "local.settings.json: not valid JSON"),
        (
            "host.json",
            '{"extensions": {"durableTask": {"maxConcurrentActivityFunctions": 0}}}',
            "maxConcurrentActivityFunctions must be a positive integer",
        ),
        ("host.json", '{"extensions": {"durableTask": {"hubName": "%MISSING_HUB%"}}}', "'MISSING_HUB'"),
    ],
)
def test_bad_configuration_exits_2_naming_it(tmp_path: Path, file: str, content: str, needle: str) -> None:
    host = make_devhost("blueprint_app", tmp_path)
    (host.root / file).write_text(content)
    host.env.pop("MISSING_HUB", None)
    with pytest.raises(RuntimeError, match="did not start"):
        host.start()
    assert host.proc is not None and host.proc.wait(timeout=10) == 2
    assert needle in host.output()


def drop(azurite: Azurite, name: str, data: bytes) -> None:
    """Upload to the container the blob fixture app watches (created if missing)."""
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        container = service.get_container_client("devhost-drops")
        if not container.exists():
            container.create_container()
        container.upload_blob(name, data, overwrite=True)


def test_admin_api_runs_a_blob_function_against_azurite(tmp_path: Path, azurite: Azurite) -> None:
    drop(azurite, "admin/one.txt", b"payload")
    host = make_devhost(
        "blob_app",
        tmp_path,
        {"DataStorage": azurite.connection_string, "AzureWebJobsStorage": azurite.connection_string},
    )
    host.start()
    try:
        res = host.request("POST", f"/admin/functions/on_blob?code={KEY}", {"input": "devhost-drops/admin/one.txt"})
        assert res.status == 202, res.body
        assert "devhost-drops/admin/one.txt 7 payload" in (host.counts / "blobs").read_text()
        missing = host.request("POST", f"/admin/functions/on_blob?code={KEY}", {"input": "nocontainer"})
        assert missing.status == 400
    finally:
        assert host.stop() == 0


def test_listeners_fire_blob_and_timer_functions(tmp_path: Path, azurite: Azurite) -> None:
    host = make_devhost(
        "blob_app",
        tmp_path,
        {"DataStorage": azurite.connection_string, "AzureWebJobsStorage": azurite.connection_string},
    )
    host.start()
    try:
        drop(azurite, "listener/auto.txt", b"auto")
        blobs = host.counts / "blobs"
        host.wait_for(
            lambda: blobs.exists() and "devhost-drops/listener/auto.txt 4 auto" in blobs.read_text(),
            what="blob listener invocation",
        )
        host.wait_for(lambda: host.count("ticks") >= 2, what="two timer ticks")
        assert "fn=on_blob" in host.output() and "fn=ticker" in host.output()
    finally:
        assert host.stop() == 0
