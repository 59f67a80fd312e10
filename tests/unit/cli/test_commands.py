"""The terminal commands against real parts: Azurite for drops, a small HTTP endpoint for scoring and the API."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from backends.storage import API_VERSION
from cli import commands, config
from cli.__main__ import main
from cli.client import ApiClient, ApiError
from services import api_tests
from services.catalog import load_catalog
from tests.support.azurite import Azurite

ROOT = Path(__file__).resolve().parents[3]


MODELS = [
    {
        "name": "broken",
        "default": False,
        "status": "error",
        "problems": ["model.yaml: task: expected ..."],
        "task": None,
    },
    {"name": "diabetes-ridge", "default": True, "status": "ok", "problems": [], "task": "regression"},
]


class Endpoint(BaseHTTPRequestHandler):
    """A scoring endpoint and an API that answer like ours: bearer/function keys, JSON errors."""

    seen: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        return

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("Authorization") != "Bearer secret":
            self._send(401, {"error": "missing or wrong key"})
            return
        self.seen.append(body)
        self._send(200, {"predictions": [float(len(row)) for row in body["data"]], "model_version": "7"})

    def do_GET(self) -> None:
        if self.headers.get("x-functions-key") != "fkey":
            self._send(401, {"error": "unauthorized"})
        elif self.path.startswith("/api/runs/"):
            self._send(404, {"error": "no run with id 'x'"})
        elif self.path == "/api/models":
            self._send(200, MODELS)
        elif self.path == "/api/models/diabetes-ridge/versions":
            self._send(200, [{"version": "2", "stage": "champion", "metrics": {"rmse": 55.5}, "run_id": "retrain-x"}])
        else:
            self._send(200, [])


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, azurite: Azurite) -> Path:
    (tmp_path / config.SAMPLE_SETTINGS).write_text((ROOT / config.SAMPLE_SETTINGS).read_text())
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("INCOMING_CONTAINER", "cli-unit-incoming")
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEVHOST_MASTER_KEY", raising=False)
    return tmp_path


def test_drop_uploads_to_the_incoming_container(root: Path, azurite: Azurite) -> None:
    file = root / "new.csv"
    file.write_text("age,sex\n1,2\n")
    lines: list[str] = []
    assert commands.drop(commands.Context(root, "http://unused"), file, "2026/new.csv", lines.append) == "2026/new.csv"
    assert "cli-unit-incoming/2026/new.csv" in lines[0]
    with BlobServiceClient.from_connection_string(azurite.connection_string, api_version=API_VERSION) as service:
        blob = service.get_blob_client("cli-unit-incoming", "2026/new.csv")
        assert blob.download_blob().readall() == b"age,sex\n1,2\n"


def test_score_uses_endpoints_json_and_sample_rows(root: Path, server: str) -> None:
    (root / "home").mkdir()
    (root / "home" / "endpoints.json").write_text(json.dumps({"production": {"url": server, "key": "secret"}}))
    lines: list[str] = []
    result = commands.score_sample(commands.Context(root, "http://unused"), "production", 3, lines.append)
    assert result == {"predictions": [10.0, 10.0, 10.0], "model_version": "7"}
    assert Endpoint.seen[-1]["data"][0] == commands.sample_rows(1)[0]
    assert "model version 7" in lines[0]


def test_score_of_another_model_uses_its_own_endpoint_and_sample(root: Path, server: str) -> None:
    shutil.copytree(ROOT / "models" / "breast-cancer", root / "models" / "breast-cancer")
    (root / "home").mkdir()
    (root / "home" / "endpoints.json").write_text(json.dumps({"breast-cancer-qa": {"url": server, "key": "secret"}}))
    context = commands.Context(root, "http://unused")
    commands.score_sample(context, "qa", 2, lambda _: None, model="breast-cancer")
    spec = load_catalog(root / "models", config.load_settings(root)).spec("breast-cancer")
    assert spec is not None
    assert Endpoint.seen[-1]["data"] == api_tests.sample_rows(spec, 2) and len(Endpoint.seen[-1]["data"][0]) == 30
    with pytest.raises(config.CliError, match="no 'breast-cancer-production' endpoint"):
        commands.score_sample(context, "production", 2, lambda _: None, model="breast-cancer")
    with pytest.raises(config.CliError, match="model 'nope'"):
        commands.score_sample(context, "qa", 2, lambda _: None, model="nope")


def test_api_errors_carry_status_and_message(server: str) -> None:
    with ApiClient(server, "fkey") as api:
        assert api.runs(5) == []
        with pytest.raises(ApiError, match="404: no run with id"):
            api.run("x")
    with ApiClient(server, "bad") as api, pytest.raises(ApiError, match="401: unauthorized"):
        api.models()


def test_models_lists_each_model_with_its_problems_and_versions(root: Path, server: str) -> None:
    (root / ".devhost").mkdir()
    (root / ".devhost" / "master.key").write_text("fkey")
    lines: list[str] = []
    commands.models(commands.Context(root, server), lines.append)
    assert lines[0] == "broken: -, spec error"
    assert lines[1] == "  problem: model.yaml: task: expected ..."
    assert lines[2] == "  no version registered yet"
    assert lines[3] == "diabetes-ridge (default): regression, spec ok"
    assert lines[4].split() == ["v2", "champion", "rmse=55.500", "run", "retrain-x"]
    with ApiClient(server, "fkey") as api:
        assert api.default_model() == "diabetes-ridge"


def test_commands_without_a_key_say_how_to_get_one(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(root), "--port", "1", "runs"]) == 1
    assert "DEVHOST_MASTER_KEY" in capsys.readouterr().err


def test_unreachable_app_is_a_clear_error(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / ".devhost").mkdir()
    (root / ".devhost" / "master.key").write_text("k")
    assert main(["--root", str(root), "--port", "1", "models"]) == 1
    assert "cannot reach the app" in capsys.readouterr().err
