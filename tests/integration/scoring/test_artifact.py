"""One scoring artifact: a local endpoint serves from a staged copy of the image's build context, and nothing else."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sklearn.linear_model import Ridge

from backends.local.endpoints import LocalEndpoints, status_all, stop_all
from backends.local.registry import MlflowRegistry
from scoring.build import content_hash, context_files
from tests.support.azurite import free_port
from tests.support.scoring import endpoint_server_pid, save_model

ROW = [59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    stop_all(home)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_a_local_endpoint_serves_from_the_staged_build_context(home: Path, tmp_path: Path) -> None:
    registry = MlflowRegistry(home)
    version = registry.register("artifact", str(save_model(Ridge(), tmp_path / "model")), {"job_id": "j"})
    endpoints = LocalEndpoints(home, registry, {"qa": free_port(), "production": free_port()})
    state = endpoints.deploy("qa", "blue", version)

    staged = home / "builds" / content_hash()
    assert (
        sorted(
            p.relative_to(staged / "scoring")
            for p in (staged / "scoring").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        )
        == context_files()
    )
    assert [p.name for p in staged.iterdir()] == ["scoring"]  # the folder the server runs from holds the context only
    alive = httpx.get(state.url + "/", timeout=10).json()
    assert alive["build"] == content_hash(staged / "scoring") == content_hash()

    pid = endpoint_server_pid(int(status_all(home)["qa"]["pid"]))
    assert Path(f"/proc/{pid}/cwd").resolve() == staged
    env = _environ(pid)
    assert env["PYTHONPATH"] == str(staged)
    cmdline = [part.decode() for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if part]
    assert cmdline[1:4] == ["-P", "-m", "scoring.server"]
    # the server's interpreter, environment and working directory cannot import any of the repository
    probe = (
        "import importlib.util as u, json, scoring; "
        "print(json.dumps([scoring.__file__, [n for n in ('ml', 'backends', 'cli', 'triggers', 'devhost') "
        "if u.find_spec(n)]]))"
    )
    found = subprocess.run(
        [cmdline[0], "-P", "-c", probe], cwd=staged, env=env, capture_output=True, text=True, check=True
    )
    package, importable = json.loads(found.stdout)
    assert Path(package).resolve() == staged / "scoring" / "__init__.py" and importable == []

    answer = httpx.post(
        state.url + "/score", json={"data": [ROW]}, timeout=10, headers={"Authorization": f"Bearer {state.key}"}
    )
    assert answer.status_code == 200 and answer.json()["model_version"] == str(version.version)
