"""LocalJobs with real detached subprocesses and inputs downloaded from a real Azurite."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from backends.errors import NotFoundError
from backends.local.jobs import LocalJobs, train_command
from backends.ports import TrainingRequest
from backends.storage import BlobStorage
from tests.support.azurite import Azurite
from tests.unit.backends import contracts

FAKE_TRAIN = Path(__file__).with_name("fake_train.py")
CSV = b"age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target\n" + b"50,1,25,80,150,90,50,3,4.5,90,140\n" * 30


def fake_command(python: str, inputs: Sequence[Path], output: Path, params: dict[str, str]) -> list[str]:
    return [
        python,
        str(FAKE_TRAIN),
        "--data",
        *map(str, inputs),
        "--output",
        str(output),
        "--mode",
        params.get("mode", "ok"),
        "--gate",
        params.get("gate", ""),
    ]


def runners(job_dir: Path) -> list[int]:
    """Pids of live runner processes of this job (from /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if f"job_runner run {job_dir}" in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


@pytest.fixture(scope="module")
def storage(azurite: Azurite) -> BlobStorage:
    storage = BlobStorage(azurite.connection_string)
    storage.ensure_containers(("jobdata",))
    storage.write("jobdata", "drops/a.csv", CSV)
    storage.write("jobdata", "drops/b.csv", CSV)
    return storage


def kill_runners(jobs: LocalJobs) -> None:
    for job_dir in jobs.root.glob("*"):
        for pid in runners(job_dir):
            os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def jobs(tmp_path: Path, storage: BlobStorage) -> Iterator[LocalJobs]:
    jobs = LocalJobs(
        tmp_path / "home",
        storage,
        env={"MLFLOW_TRACKING_URI": "sqlite:////tmp/nowhere/mlflow.db"},
        command=fake_command,
    )
    yield jobs
    kill_runners(jobs)


@pytest.fixture
def one_slot(tmp_path: Path, storage: BlobStorage) -> Iterator[LocalJobs]:
    """Jobs of a home that runs one at a time (LOCAL_TRAINING_SLOTS=1)."""
    jobs = LocalJobs(tmp_path / "home1", storage, command=fake_command, slots=1)
    yield jobs
    kill_runners(jobs)


def request(mode: str = "ok", data: list[str] | None = None, **params: str) -> TrainingRequest:
    return TrainingRequest(
        f"train-{uuid.uuid4().hex[:8]}",
        "1",
        data or ["jobdata/drops/a.csv", "jobdata/drops/b.csv"],
        {"mode": mode, **params},
    )


def test_completed_job(jobs: LocalJobs, tmp_path: Path) -> None:
    req = request()
    contracts.jobs_submit_idempotent(jobs, req)
    contracts.jobs_completed_outputs(jobs, req.job_name, tmp_path / "fetched")
    outputs = jobs.fetch_outputs(req.job_name, tmp_path / "again")
    assert outputs.metrics == {"rmse": 50.5, "r2": 0.45, "rows": 60.0}
    job_dir = jobs.job_dir(req.job_name)
    assert (job_dir / "inputs" / "00-a.csv").read_bytes() == CSV
    assert "read 60 rows from 2 files" in (job_dir / "job.log").read_text()
    assert json.loads((outputs.model_dir.parent / "env.json").read_text()) == {
        "MLFLOW_TRACKING_URI": "sqlite:////tmp/nowhere/mlflow.db"
    }
    spec = json.loads((job_dir / "job.json").read_text())
    assert spec["exit_code"] == 0 and spec["state"] == "exited" and spec["pid"] > 0 and spec["started"]
    assert jobs.model_source(req.job_name) == str(job_dir / "outputs" / "model")
    assert Path(jobs.model_source(req.job_name)).is_absolute()


def test_failed_job_reports_its_log(jobs: LocalJobs, tmp_path: Path) -> None:
    req = request("fail")
    jobs.submit(req)
    contracts.jobs_failed_reports_log(jobs, req.job_name, "column 'bmi'", tmp_path / "out")
    status = jobs.status(req.job_name)
    assert "exited with code 2" in status.message
    with pytest.raises(NotFoundError):
        jobs.model_source(req.job_name)


def wait_running(jobs: LocalJobs, job_id: str, marker: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if jobs.status(job_id).state == "running" and marker in (jobs.job_dir(job_id) / "job.log").read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not running with {marker!r} in its log: {jobs.status(job_id)}")


def test_killed_job_is_failed_with_its_log_tail(jobs: LocalJobs) -> None:
    req = request("hang")
    jobs.submit(req)
    wait_running(jobs, req.job_name, "training forever")
    [pid] = runners(jobs.job_dir(req.job_name))
    os.killpg(pid, signal.SIGKILL)
    status = contracts.wait_finished(jobs, req.job_name, timeout=15)
    assert status.state == "failed"
    assert "died without an exit code" in status.message
    assert "training forever" in status.log_tail and "training forever" in status.message


def test_resubmit_does_not_start_a_second_process(jobs: LocalJobs, storage: BlobStorage) -> None:
    req = request("hang")
    jobs.submit(req)
    wait_running(jobs, req.job_name, "training forever")
    again = jobs.submit(req)
    assert again.state == "running"
    job_dir = jobs.job_dir(req.job_name)
    assert len(runners(job_dir)) == 1
    restarted = LocalJobs(jobs.root.parent, storage, command=fake_command)  # the function host restarted
    assert restarted.status(req.job_name).state == "running"
    restarted.cancel(req.job_name)
    assert contracts.wait_finished(jobs, req.job_name, timeout=15).state == "canceled"
    assert runners(job_dir) == []


def test_unknown_job_and_missing_input(jobs: LocalJobs) -> None:
    contracts.jobs_unknown(jobs)
    req = request(data=["jobdata/drops/missing.csv"])
    with pytest.raises(NotFoundError, match=r"missing\.csv"):
        jobs.submit(req)
    assert not jobs.job_dir(req.job_name).exists()
    with pytest.raises(ValueError, match="container/blob"):
        jobs.submit(request(data=["no-slash"]))
    with pytest.raises(ValueError, match="invalid job id"):
        jobs.status("../etc")


def test_default_command_is_ml_train() -> None:
    command = train_command(sys.executable, [Path("/j/in/00-a.csv")], Path("/j/out"), {"alpha": "0.5"})
    assert command == [
        sys.executable,
        "-m",
        "ml.train",
        "--data",
        "/j/in/00-a.csv",
        "--output",
        "/j/out",
        "--alpha",
        "0.5",
    ]


def wait_queued(jobs: LocalJobs, job_id: str) -> str:
    """Poll until the job's runner is up and waiting for a slot; its status message."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = jobs.status(job_id)
        if status.state == "queued" and "waiting for a training slot" in status.message:
            return status.message
        assert status.state == "queued", f"job {job_id} should wait for a slot: {status}"
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never waited for a slot: {jobs.status(job_id)}")


def test_a_second_job_waits_for_the_one_slot_then_runs(one_slot: LocalJobs, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    first, second = request("gate", gate=str(gate)), request()
    one_slot.submit(first)
    wait_running(one_slot, first.job_name, "waiting at the gate")
    assert one_slot.submit(second).state == "queued"
    assert wait_queued(one_slot, second.job_name) == "waiting for a training slot (1 of 1 in use)"
    second_dir = one_slot.job_dir(second.job_name)
    assert "read 60 rows" not in (second_dir / "job.log").read_text()  # its command has not started
    spec = json.loads((second_dir / "job.json").read_text())
    assert spec["state"] == "queued" and spec["slots"] == 1 and spec["pid"] > 0 and "started" not in spec
    assert one_slot.status(first.job_name).state == "running"
    gate.write_text("open")
    assert contracts.wait_finished(one_slot, first.job_name, timeout=30).state == "completed"
    assert contracts.wait_finished(one_slot, second.job_name, timeout=30).state == "completed"
    ran = [json.loads((one_slot.job_dir(r.job_name) / "job.json").read_text()) for r in (first, second)]
    assert ran[1]["started"] >= ran[0]["ended"]  # one at a time, the queued one after the first ended
    assert ran[0]["slot"] == ran[1]["slot"] == 0
    assert all(isinstance(r["cpu_s"], float) and r["cpu_s"] > 0 for r in ran)  # the command's CPU, recorded
    assert "waiting for a training slot" in (second_dir / "job.log").read_text()


def test_a_queued_job_can_be_canceled(one_slot: LocalJobs) -> None:
    running, queued = request("hang"), request()
    one_slot.submit(running)
    wait_running(one_slot, running.job_name, "training forever")
    one_slot.submit(queued)
    wait_queued(one_slot, queued.job_name)
    one_slot.cancel(queued.job_name)
    status = one_slot.status(queued.job_name)
    assert status.state == "canceled"
    queued_dir = one_slot.job_dir(queued.job_name)
    assert runners(queued_dir) == []
    assert "read 60 rows" not in (queued_dir / "job.log").read_text()
    assert not (queued_dir / "exit_code").exists()
    assert one_slot.status(running.job_name).state == "running"  # the running one is untouched
    one_slot.cancel(running.job_name)
    assert contracts.wait_finished(one_slot, running.job_name, timeout=15).state == "canceled"


def test_a_killed_runner_frees_its_slot(one_slot: LocalJobs) -> None:
    killed, queued = request("hang"), request()
    one_slot.submit(killed)
    wait_running(one_slot, killed.job_name, "training forever")
    one_slot.submit(queued)
    wait_queued(one_slot, queued.job_name)
    [pid] = runners(one_slot.job_dir(killed.job_name))
    os.killpg(pid, signal.SIGKILL)
    assert contracts.wait_finished(one_slot, killed.job_name, timeout=15).state == "failed"
    assert contracts.wait_finished(one_slot, queued.job_name, timeout=30).state == "completed"


def test_slots_are_shared_by_every_submitter_of_a_home(one_slot: LocalJobs, storage: BlobStorage) -> None:
    """A job submitted by another host process on the same home (its own LocalJobs) waits for the slot too."""
    running = request("hang")
    one_slot.submit(running)
    wait_running(one_slot, running.job_name, "training forever")
    other = LocalJobs(one_slot.root.parent, storage, command=fake_command, slots=1)
    queued = request()
    other.submit(queued)
    assert wait_queued(other, queued.job_name) == "waiting for a training slot (1 of 1 in use)"
    one_slot.cancel(running.job_name)
    assert contracts.wait_finished(other, queued.job_name, timeout=30).state == "completed"


def test_slots_are_at_least_one(storage: BlobStorage, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LocalJobs(tmp_path / "h", storage, slots=0)
    assert LocalJobs(tmp_path / "h", storage).slots == (os.cpu_count() or 1)
