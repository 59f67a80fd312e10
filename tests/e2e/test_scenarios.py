"""The release and recovery scenarios of the loop, in order, on one app (its own containers, hub, registry and
endpoints) whose devhost is killed and restarted with other settings along the way:

1. a first drop is trained, registered and released;
2. a second, better drop: devhost is killed (-9) while the job trains; after a restart the run finishes with one
   new version, which is promoted and served; the first drop starts no second run;
3. two drops at once: both register, and their releases never interleave;
4. QA's API tests fail (an impossible p99 limit): ``qa_failed``, production untouched;
5. production's API tests fail: ``rolled_back``, the previous version serves again.

The drops are generations of data whose labels are recalibrated over time (``ml.sample.synthetic``), so each new one
trains a clearly better model whatever order the concurrent ones are accepted in.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from cli.commands import sample_rows
from cli.storage import upload
from ml.sample import synthetic
from orchestrators.ids import release_id, retrain_id_for_blob
from tests.e2e.conftest import Host, running_devhost, wait_for
from tests.e2e.drops import csv
from tests.support.app import app_values, copy_app
from tests.support.azurite import Azurite, free_port
from triggers.blobs import canonical_etag

pytestmark = pytest.mark.slow
MODEL = "diabetes-ridge"
INCOMING = "sc-incoming"


class Lab:
    """One app root with its storage and registry, served by a devhost that can be stopped, killed and restarted."""

    def __init__(self, root: Path, values: dict[str, str], port: int) -> None:
        self.root, self.values, self.port = root, values, port
        self._running: contextlib.AbstractContextManager[Host] | None = None
        self._host: Host | None = None

    @property
    def host(self) -> Host:
        assert self._host is not None, "devhost is not running"
        return self._host

    def start(self, **overrides: str) -> Host:
        self.values.update(overrides)
        self._running = running_devhost(self.root, dict(self.values), self.port)
        self._host = self._running.__enter__()
        return self._host

    def stop(self) -> None:
        if self._running is not None:
            self._running.__exit__(None, None, None)
        self._running = self._host = None

    def kill(self) -> None:
        """SIGKILL devhost: no shutdown code runs (the endpoint servers are then stopped by ``stop``)."""
        self.host.process.kill()
        self.host.process.wait(timeout=30)
        self.stop()


@pytest.fixture(scope="module")
def lab(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = copy_app(tmp_path_factory.mktemp("scenario-app"))
    port = free_port()
    values = {
        **app_values(azurite.connection_string, root / ".mlops", port),
        "DURABLE_TASK_HUB": "ScenarioHub",
        "INCOMING_CONTAINER": INCOMING,
        "QUARANTINE_CONTAINER": "sc-quarantine",
        "DATASETS_CONTAINER": "sc-datasets",
        "SCORING_LOGS_CONTAINER": "sc-scoring-logs",
    }
    lab = Lab(root, values, port)
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


def drop(host: Host, name: str, frame: pd.DataFrame) -> str:
    etag = upload(host.values["AzureWebJobsStorage"], INCOMING, name, csv(frame))
    return retrain_id_for_blob(name, canonical_etag(etag))


def models(host: Host) -> dict[str, dict[str, Any]]:
    return {m["version"]: m for m in host.get(f"/api/models/{MODEL}/versions").json()}


def champion(host: Host) -> str | None:
    return next((v for v, m in models(host).items() if m["stage"] == "champion"), None)


def production_serves(host: Host) -> str:
    """The version production answers with, read from a real scoring request."""
    entry = json.loads((host.home / "endpoints.json").read_text())["production"]
    answer = httpx.post(
        f"{str(entry['url']).rstrip('/')}/score",
        json={"data": sample_rows(3)},
        headers={"Authorization": f"Bearer {entry['key']}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 3
    return str(answer.json()["model_version"])


def serving_after_restart(host: Host) -> str:
    """Endpoint servers stop with devhost; the app's supervisor brings production back with what it held."""

    def answer() -> str | None:
        try:
            return production_serves(host)
        except httpx.HTTPError:
            return None

    version: str = wait_for("production serving again after the restart", answer, 60)
    return version


def registered(host: Host, retrain: str) -> tuple[str, dict[str, Any]]:
    """Wait for a retrain that must register; return the version and its release run once finished."""
    run = host.wait_finished(retrain)
    assert run["outcome"] == "registered", run
    version = str(run["model_version"])
    return version, host.wait_finished(release_id(MODEL, version))


def test_first_drop_is_released(lab: Lab) -> None:
    host = lab.host
    version, release = registered(host, drop(host, "gen1.csv", synthetic(400, 0)))
    assert release["outcome"] == "deployed", release
    assert production_serves(host) == version == champion(host)


def test_killed_host_finishes_the_run_after_restart_and_promotes_the_better_model(lab: Lab) -> None:
    host = lab.host
    first = champion(host)
    retrain = drop(host, "gen2.csv", synthetic(900, 1, shift=100))

    def training() -> bool:
        run = host.run(retrain)
        return bool(run and run["stage"] == "train" and run["stages"][-1]["status"] == "running")

    wait_for(f"{retrain} training", training, 120)
    lab.kill()
    host = lab.start()
    version, release = registered(host, retrain)
    assert sorted(models(host), key=int) == [first, version], "exactly one new version after the restart"
    assert "better beyond noise" in host.run(retrain)["reason"]  # type: ignore[index]
    assert release["outcome"] == "deployed", release
    assert production_serves(host) == version == champion(host)
    assert models(host)[str(first)]["stage"] == "archived"
    first_drop_runs = [r for r in host.get("/api/runs", limit=500).json() if r["data"] == f"{INCOMING}/gen1.csv"]
    assert len(first_drop_runs) == 1, "a restart must not trigger the same blob version again"


def _working(release: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """When the release held the model's release slot: its first stage after waiting to its last."""
    stages = [s for s in release["stages"] if s["name"] != "wait"]
    if not stages:
        return None
    return datetime.fromisoformat(stages[0]["started"]), datetime.fromisoformat(stages[-1]["finished"])


def test_two_drops_at_once_release_one_at_a_time(lab: Lab) -> None:
    host = lab.host
    retrains = [drop(host, "gen3a.csv", synthetic(2500, 2)), drop(host, "gen3b.csv", synthetic(2500, 3, scale=1.6))]
    results = [registered(host, retrain) for retrain in retrains]
    (_, older_release), (newer, newer_release) = sorted(results, key=lambda r: int(r[0]))
    assert newer_release["outcome"] == "deployed", newer_release
    assert older_release["outcome"] in ("deployed", "superseded"), older_release
    spans = [span for span in (_working(older_release), _working(newer_release)) if span]
    if len(spans) == 2:
        first, second = sorted(spans)
        assert first[1] <= second[0], f"releases interleaved: {spans}"
    if older_release["outcome"] == "superseded":
        assert f"superseded by version {newer}" in older_release["reason"]
    assert production_serves(host) == newer == champion(host)


def test_qa_failure_leaves_production_untouched(lab: Lab) -> None:
    lab.stop()
    host = lab.start(API_TEST_MAX_P99_MS="0.001")
    serving = serving_after_restart(host)
    version, release = registered(host, drop(host, "gen4.csv", synthetic(5000, 4, shift=100)))
    assert release["outcome"] == "qa_failed", release
    assert "p99 latency" in release["reason"] and "production untouched" in release["reason"]
    assert [s["name"] for s in release["stages"]][-2:] == ["deploy_qa", "test_qa"]
    assert models(host)[version]["stage"] == "rejected"
    assert production_serves(host) == serving == champion(host)


def test_production_failure_rolls_back_to_the_previous_version(lab: Lab) -> None:
    lab.stop()
    host = lab.start(API_TEST_MAX_P99_MS="500", PROD_API_TEST_MAX_P99_MS="0.001")
    serving = serving_after_restart(host)
    version, release = registered(host, drop(host, "gen5.csv", synthetic(12000, 5, shift=100)))
    assert release["outcome"] == "rolled_back", release
    assert f"version {serving} serves again" in release["reason"]
    names = [s["name"] for s in release["stages"]]
    assert names[-3:] == ["deploy_production", "test_production", "rollback"], names
    assert models(host)[version]["stage"] == "rejected"
    assert production_serves(host) == serving == champion(host)
    health = httpx.get(f"http://127.0.0.1:{host.values['PROD_ENDPOINT_PORT']}/health", timeout=10).json()
    assert {str(d["version"]) for d in health["deployments"].values()} == {serving}, health
