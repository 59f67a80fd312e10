"""What any v2 app may use, over real HTTP and Azurite: blob input/output bindings with binding expressions, names
in any case, host endpoints and warmup, ``@app.retry`` on a timer, ``PYTHON_SCRIPT_FILE_NAME``, the Event Grid
webhook's 202, and one clear start-up error for a binding devhost does not run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from tests.support.azurite import Azurite
from tests.support.devhost_proc import APPS, KEY, REPO, DevhostProcess, make_devhost, serving


@pytest.fixture(scope="module")
def v2(tmp_path_factory: pytest.TempPathFactory, azurite: Azurite) -> Iterator[DevhostProcess]:
    with serving("v2_app", tmp_path_factory.mktemp("v2"), {"AzureWebJobsStorage": azurite.connection_string}) as h:
        yield h


def svc(azurite: Azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


def put(azurite: Azurite, container: str, name: str, data: bytes) -> None:
    with svc(azurite) as s:
        box = s.get_container_client(container)
        if not box.exists():
            box.create_container()
        box.upload_blob(name, data, overwrite=True)


def get(azurite: Azurite, container: str, name: str) -> bytes:
    with svc(azurite) as s:
        return bytes(s.get_blob_client(container, name).download_blob().readall())


def test_blob_input_and_output_bindings(v2: DevhostProcess, azurite: Azurite) -> None:
    put(azurite, "v2-in", "note.txt", b"hello blob")
    res = v2.request("POST", "/api/copy/note.txt?prefix=p1")
    assert res.status == 200 and res.body == b"copied 10", res.body
    assert get(azurite, "v2-out", "p1-note.txt") == b"HELLO BLOB"
    assert v2.request("POST", "/api/copy/none.txt?prefix=p1").status == 404  # a missing input blob binds None
    stat = v2.request("GET", "/api/stat/note.txt")
    assert stat.body == b"v2-in/note.txt 10 b'hello blob'"
    assert v2.request("GET", "/api/raw/note.txt").body == b"bolb olleh"
    # an expression without a value in this invocation is an error of that call, named
    res = v2.request("POST", "/api/copy/note.txt")
    assert res.status == 500 and "Query.prefix" in v2.output()


def test_blob_trigger_with_a_return_blob_output(v2: DevhostProcess, azurite: Azurite) -> None:
    put(azurite, "v2-drops", "report.txt", b"r")
    v2.wait_for(
        lambda: any(
            b.name.startswith("report-") and b.name.endswith(".done")
            for b in svc(azurite).get_container_client("v2-out").list_blobs()
        ),
        what="the output blob",
    )
    done = next(b.name for b in svc(azurite).get_container_client("v2-out").list_blobs() if b.name.endswith(".done"))
    assert get(azurite, "v2-out", done) == b"done v2-drops/report.txt"


def test_function_names_are_case_insensitive(v2: DevhostProcess) -> None:
    res = v2.request("POST", "/api/hello/ana")
    assert res.status == 202, res.body
    doc = v2.wait_status(res.json()["id"])
    assert doc["runtimeStatus"] == "Completed" and doc["output"] == "Hello Hello ana"
    assert doc["name"] == "HelloOrchestrator"
    assert v2.mgmt("POST", "orchestrators/helloORCHESTRATOR", '"x"').status == 202
    assert v2.request("POST", f"/admin/functions/SAY_HELLO?code={KEY}", {"input": '"bo"'}).status == 202


def test_host_endpoints_and_warmup(v2: DevhostProcess) -> None:
    home = v2.request("GET", "/")
    assert home.status == 200 and b"up and running" in home.body and "text/html" in home.headers["Content-Type"]
    assert v2.request("POST", "/admin/host/ping").status == 200
    assert v2.request("GET", "/admin/host/status").status == 401
    status = v2.request("GET", f"/admin/host/status?code={KEY}")
    assert status.status == 200 and status.json()["state"] == "Running"
    v2.wait_for(lambda: v2.count("warmup") == 1, what="the warmup trigger run as the host came up")
    assert v2.request("POST", "/admin/warmup").status == 401
    assert v2.request("POST", f"/admin/warmup?code={KEY}").status == 200
    assert v2.count("warmup") == 2


def test_retry_policy_on_a_timer(v2: DevhostProcess) -> None:
    v2.wait_for(lambda: v2.count("flaky_timer") >= 3, what="two retries")
    assert v2.output().count("fn=flaky_timer failed; retry") == 2
    assert v2.count("flaky_timer") == 3


def test_event_grid_webhook_answers_202(tmp_path: Path) -> None:
    with serving("durable_app", tmp_path) as host:
        event = [
            {
                "id": "e-202",
                "eventType": "t",
                "subject": "s",
                "eventTime": "2024-01-01T00:00:00Z",
                "data": {},
                "dataVersion": "1",
            }
        ]
        res = host.request(
            "POST",
            f"/runtime/webhooks/eventgrid?functionName=on_event&code={KEY}",
            event,
            headers={"aeg-event-type": "Notification"},
        )
        assert res.status == 202
        assert host.count("event-e-202") == 1


def test_script_file_name_setting(tmp_path: Path) -> None:
    host = make_devhost("http_app", tmp_path, {"PYTHON_SCRIPT_FILE_NAME": "my_app.py"})
    shutil.move(host.root / "function_app.py", host.root / "my_app.py")
    host.start()
    try:
        assert host.request("GET", "/v1/items/42").status == 200
    finally:
        host.stop()


def test_an_unsupported_binding_stops_start_up_with_one_message(tmp_path: Path) -> None:
    root = tmp_path / "unsupported_app"
    shutil.copytree(APPS / "unsupported_app", root)
    done = subprocess.run(
        [sys.executable, "-m", "devhost", "start", "--script-root", str(root), "--port", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3
    assert "function 'read_doc': binding 'doc' of type 'cosmosDB' (in) is not supported by devhost" in done.stderr
    assert "devhost supports: httpTrigger" in done.stderr


def test_a_function_disabled_by_its_app_setting(tmp_path: Path, azurite: Azurite) -> None:
    settings = {
        "AzureWebJobsStorage": azurite.connection_string,
        "AzureWebJobs.flaky_timer.Disabled": "true",
        "AzureWebJobs.STAT.Disabled": "1",  # the function's name in any case, as the host reads it
    }
    with serving("v2_app", tmp_path, settings) as host:
        put(azurite, "v2-in", "d.txt", b"abc")
        assert host.request("GET", "/api/stat/d.txt").status == 404
        assert host.request("GET", "/api/stat/d.txt", headers={"x-functions-key": "wrong"}).status == 404
        assert host.request("GET", f"/api/stat/d.txt?code={KEY}").status == 200  # the master key still runs it
        assert host.request("GET", "/api/raw/d.txt").status == 200  # the other functions are untouched
        put(azurite, "v2-drops", "later.txt", b"s")  # listeners run: the blob trigger fires, the timer does not
        host.wait_for(
            lambda: any(b.name.startswith("later-") for b in svc(azurite).get_container_client("v2-out").list_blobs()),
            what="the blob trigger's output",
        )
        assert host.count("flaky_timer") == 0
        assert "function flaky_timer is disabled" in host.output() and "function stat is disabled" in host.output()
