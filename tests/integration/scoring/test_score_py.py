"""``scoring/score.py`` on Azure ML's standard path: under the real ``azureml-inference-server-http``, from a copy of
only its folder, as Azure ML lays it out (``AML_APP_ROOT`` holding the uploaded code folder, the model mounted under
``azureml-models/<name>/<version>``), with a real trained model.

The server runs in its own venv (``make azml``: benchmarks/.venv-azml), bound to 127.0.0.1 by the benchmark's
launcher (the server itself binds 0.0.0.0).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.linear_model import Ridge

from ml.models import load
from ml.sample import diabetes_frame
from tests.support.azurite import ROOT, free_port
from tests.support.scoring import save_model

AZML_PYTHON = ROOT / "benchmarks" / ".venv-azml" / "bin" / "python"
LAUNCHER = ROOT / "benchmarks" / "scoring" / "azml_local.py"
ROWS = diabetes_frame().drop(columns=["target"]).head(100)


@dataclass
class AzmlServer:
    url: str
    model: Path
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def azml(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzmlServer]:
    if not AZML_PYTHON.exists():
        pytest.fail(f"{AZML_PYTHON} is missing: `make azml` creates it (`make test` does)")
    root = tmp_path_factory.mktemp("azureml")
    app_root = root / "var" / "azureml-app"
    code = app_root / "onlinescoring"  # Azure ML keeps the folder's name; it need not be `scoring`
    shutil.copytree(ROOT / "scoring", code, ignore=shutil.ignore_patterns("__pycache__"))
    mount = app_root / "azureml-models" / "diabetes" / "3"
    model = save_model(Ridge(alpha=1.0), mount / "model")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(root),
        "AML_APP_ROOT": str(app_root),
        "AZUREML_MODEL_DIR": str(mount),
    }
    log_file = root / "azmlinfsrv.log"
    with log_file.open("ab") as out:
        process = subprocess.Popen(
            [
                str(AZML_PYTHON),
                str(LAUNCHER),
                "--entry_script",
                "onlinescoring/score.py",
                "--model_dir",
                str(mount),
                "--port",
                str(port),
            ],
            cwd=app_root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"azmlinfsrv exited:\n{log_file.read_text()}"
            assert time.monotonic() < deadline, f"azmlinfsrv did not answer:\n{log_file.read_text()}"
            try:
                if httpx.get(url + "/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield AzmlServer(url, model, process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.parametrize("count", [1, 100])
def test_good_rows_get_predictions(azml: AzmlServer, count: int) -> None:
    answer = httpx.post(azml.url + "/score", json={"data": ROWS.head(count).to_numpy().tolist()}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == "3"  # the version folder Azure ML mounts the model in
    np.testing.assert_allclose(body["predictions"], load(azml.model).predict(ROWS.head(count)), rtol=1e-9)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{oops", 400, "not valid JSON"),
        (b"[1, 2]", 422, 'expected a JSON object {"data"'),
        (b'{"data": []}', 422, "non-empty list of rows"),
        (b'{"data": [[1, 2, 3]]}', 422, "row 0: expected 10 numbers"),
        (b'{"data": [[1,2,3,4,5,6,7,8,9,10], [1,2,3,4,5,6,7,8,9,"x"]]}', 422, "row 1, column 's6'"),
        (b'{"data": [[true,2,3,4,5,6,7,8,9,10]]}', 422, "column 'age': expected a finite number, got True"),
        (b'{"data": [' + b"[1,2,3,4,5,6,7,8,9,10]," * 1000 + b"[1,2,3,4,5,6,7,8,9,10]]}", 413, "exceeds the limit"),
        (
            b'{"data": [[1e308,1e308,1e308,1e308,1e308,1e308,1e308,1e308,1e308,1e308]]}',
            422,
            "row 0: the prediction is not a finite",
        ),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(azml: AzmlServer, body: bytes, status: int, message: str) -> None:
    answer = httpx.post(azml.url + "/score", content=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


def test_a_body_that_is_not_utf8_is_a_400(azml: AzmlServer) -> None:
    answer = httpx.post(azml.url + "/score", content=b'{"data": [[\xff]]}', timeout=30)
    assert answer.status_code == 400
