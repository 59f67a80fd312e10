"""Batch scoring end to end on devhost: a file dropped at batch/<model>/in/ is scored by the champion into
batch/<model>/out/, once per blob version, with its progress in the run; a bad file gets its error report.

The champion is made directly in the registry devhost reads (a ridge trained here, registered and moved
qa → production → champion through the local registry), so the scenario needs no training job nor release.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from azure.storage.blob import BlobServiceClient

from backends.local.registry import MlflowRegistry
from backends.storage import API_VERSION
from cli.storage import upload
from ml import models
from ml.sample import diabetes_frame
from ml.schema import ACTIVE_SCHEMA
from orchestrators.ids import batch_id_for_blob
from tests.e2e.conftest import Host, running_devhost, wait_for
from tests.support.app import app_values, copy_app
from tests.support.azurite import Azurite, free_port
from triggers.blobs import canonical_etag

pytestmark = pytest.mark.slow
MODEL = "diabetes-ridge"
CONTAINER = "batch"


@pytest.fixture(scope="module")
def champion_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = diabetes_frame()
    features = ACTIVE_SCHEMA.feature_names
    estimator = models.make_estimator(1.0).fit(frame[features], frame["target"])
    folder = tmp_path_factory.mktemp("model") / "model"
    models.save(estimator, folder, frame[features], ACTIVE_SCHEMA)
    return folder


@pytest.fixture(scope="module")
def host(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, champion_dir: Path) -> Iterator[Host]:
    """devhost over a registry holding a champion, registered before devhost starts (one process creates the
    registry's database; no event sink: no release starts)."""
    root = copy_app(tmp_path_factory.mktemp("app"))
    port = free_port()
    values = {**app_values(azurite.connection_string, root / ".mlops", port), "BATCH_CHUNK_MB": "1"}
    values["DURABLE_TASK_HUB"] = "BatchHub"
    registry = MlflowRegistry(Path(values["MLOPS_HOME"]))
    version = registry.register(MODEL, str(champion_dir), {"job_id": "batch-e2e", "run_id": "batch-e2e"}).version
    for stage in ("production", "champion"):
        registry.set_stage(MODEL, version, stage)
    with running_devhost(root, values, port) as running:
        yield running


@pytest.fixture(scope="module")
def champion(host: Host, champion_dir: Path) -> tuple[str, object]:
    """(version, the estimator) of the champion devhost's registry holds."""
    found = MlflowRegistry(host.home).champion(MODEL)
    assert found is not None
    return found.version, models.load(champion_dir)


def _service(host: Host) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(host.values["AzureWebJobsStorage"], api_version=API_VERSION)


def _drop(host: Host, name: str, data: bytes) -> str:
    etag = upload(host.values["AzureWebJobsStorage"], CONTAINER, name, data)
    return batch_id_for_blob(name, canonical_etag(etag))


def _read(host: Host, name: str) -> bytes:
    return bytes(_service(host).get_blob_client(CONTAINER, name).download_blob().readall())


def _rows(count: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = diabetes_frame().drop(columns=["target"])
    return base.iloc[rng.integers(0, len(base), count)].reset_index(drop=True)


def _finished(host: Host, run_id: str) -> dict[str, Any]:
    wait_for(f"batch run {run_id} appearing", lambda: host.run(run_id), 60)
    return host.wait_finished(run_id, timeout=240)


def test_a_file_is_scored_by_the_champion_in_chunks_with_progress(host: Host, champion: tuple[str, object]) -> None:
    version, model = champion
    rows = _rows(40_000, 1)  # about 1.6 MB: two chunks of 1 MiB
    run_id = _drop(host, f"{MODEL}/in/2026/rows.csv", rows.to_csv(index=False).encode())
    run = _finished(host, run_id)
    assert run["status"] == "Completed" and run["kind"] == "batch", run
    assert run["outcome"] == "scored", run
    assert run["model_version"] == version
    assert [s["name"] for s in run["stages"]] == ["plan", "score", "assemble"]
    progress = run["progress"]
    assert progress["chunks_total"] >= 2 and progress["chunks_done"] == progress["chunks_total"], progress
    assert progress["rows"] == progress["rows_scored"] == 40_000 and progress["rows_skipped"] == 0
    out = pd.read_csv(io.BytesIO(_read(host, f"{MODEL}/out/2026/rows.csv")))
    assert list(out.columns) == ["row", "prediction", "model_version"]
    assert out["row"].tolist() == list(range(40_000))
    assert (out["model_version"].astype(str) == version).all()
    expected = model.predict(rows[ACTIVE_SCHEMA.feature_names])  # type: ignore[attr-defined]
    np.testing.assert_allclose(out["prediction"].to_numpy(), expected, rtol=1e-9, atol=1e-9)
    report = json.loads(_read(host, f"{MODEL}/out/2026/rows.csv.report.json"))
    assert (report["rows"], report["scored"], report["skipped"]) == (40_000, 40_000, 0)
    listed = host.get("/api/runs", limit=50).json()
    assert any(r["id"] == run_id and r["kind"] == "batch" for r in listed)


def test_each_blob_version_is_scored_once(host: Host, champion: tuple[str, object]) -> None:
    data = _rows(500, 2).to_csv(index=False).encode()
    name = f"{MODEL}/in/again.csv"
    first = _drop(host, name, data)
    assert _finished(host, first)["outcome"] == "scored"
    # the same version delivered again (the blob webhook, as Event Grid redelivers) starts nothing new
    etag = _service(host).get_blob_client(CONTAINER, name).get_blob_properties().etag
    event = {
        "id": "redelivered",
        "eventType": "Microsoft.Storage.BlobCreated",
        "subject": f"/blobServices/default/containers/{CONTAINER}/blobs/{name}",
        "eventTime": "2026-12-01T00:00:00Z",
        "dataVersion": "",
        "data": {"url": _service(host).get_blob_client(CONTAINER, name).url, "eTag": etag, "api": "PutBlob"},
    }
    key = json.loads((host.root / ".devhost" / "system-keys.json").read_text())["blobs_extension"]
    answer = host.http.post(
        "/runtime/webhooks/blobs",
        params={"functionName": "Host.Functions.on_batch_file", "code": key},
        headers={"aeg-event-type": "Notification"},
        json=[event],
    )
    assert answer.status_code in (200, 202), answer.text
    # the same content uploaded again is a new version (a new etag): scored again, by a run of its own
    second = _drop(host, name, data)
    assert second != first
    assert _finished(host, second)["outcome"] == "scored"
    runs = [r["id"] for r in host.get("/api/runs", limit=200).json() if r["data"] == f"{CONTAINER}/{name}"]
    assert sorted(runs) == sorted([first, second])


def test_invalid_rows_are_skipped_and_reported(host: Host, champion: tuple[str, object]) -> None:
    rows = _rows(100, 3).astype(object)
    rows.loc[5, "age"] = 500  # out of range
    rows.loc[7, "bmi"] = "heavy"  # not a number
    run = _finished(host, _drop(host, f"{MODEL}/in/some-bad.csv", rows.to_csv(index=False).encode()))
    assert run["outcome"] == "scored", run
    assert "2 invalid row(s) skipped" in str(run["reason"])
    out = pd.read_csv(io.BytesIO(_read(host, f"{MODEL}/out/some-bad.csv")))
    assert 5 not in out["row"].tolist() and 7 not in out["row"].tolist() and len(out) == 98
    report = json.loads(_read(host, f"{MODEL}/out/some-bad.csv.report.json"))
    assert report["invalid_rows"]["count"] == 2 and report["invalid_rows"]["first_rows"] == [6, 8]
    assert any("out of range" in m for m in report["invalid_rows"]["messages"])


@pytest.mark.parametrize(
    ("name", "data", "outcome", "code"),
    [
        (f"{MODEL}/in/page.csv", b"<html><body>not a table</body></html>", "invalid_data", "not_a_table"),
        (f"{MODEL}/in/columns.csv", b"age,sex\n50,1\n", "invalid_data", "missing_columns"),
        ("no-such-model/in/rows.csv", b"a,b\n1,2\n", "model_disabled", "model_disabled"),
        ("breast-cancer/in/rows.csv", b"a,b\n1,2\n", "no_champion", "no_champion"),
    ],
)
def test_a_bad_file_gets_an_error_report_and_a_clear_outcome(
    host: Host, champion: tuple[str, object], *, name: str, data: bytes, outcome: str, code: str
) -> None:
    run = _finished(host, _drop(host, name, data))
    assert run["status"] == "Completed" and run["outcome"] == outcome, run
    model, _, path = name.partition("/in/")
    report = json.loads(_read(host, f"{model}/out/{path}.error.json"))
    assert report["code"] == code and report["error"], report


def test_a_parquet_file_is_scored_row_group_by_row_group(host: Host, champion: tuple[str, object]) -> None:
    _, model = champion
    rows = _rows(3000, 4)
    sink = io.BytesIO()
    rows.to_parquet(sink, row_group_size=1000, index=False)
    run = _finished(host, _drop(host, f"{MODEL}/in/rows.parquet", sink.getvalue()))
    assert run["outcome"] == "scored" and run["progress"]["chunks_total"] == 3, run
    out = pd.read_csv(io.BytesIO(_read(host, f"{MODEL}/out/rows.parquet.csv")))
    expected = model.predict(rows[ACTIVE_SCHEMA.feature_names])  # type: ignore[attr-defined]
    np.testing.assert_allclose(out["prediction"].to_numpy(), expected, rtol=1e-9, atol=1e-9)
    assert out["row"].tolist() == list(range(3000))


def test_nothing_is_left_half_done(host: Host, champion: tuple[str, object]) -> None:
    """The outputs and reports the runs wrote under out/ started no run themselves."""
    runs = host.get("/api/runs", limit=200).json()
    assert not [r for r in runs if r["kind"] == "batch" and "/out/" in str(r["data"])]
    assert Path(host.log).exists()
