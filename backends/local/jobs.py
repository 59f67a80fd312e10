"""The TrainingJobs port as detached subprocesses: ``python -m ml.train`` under ``<home>/jobs/<job_name>/``.

Everything about a job lives in files, so a function host restarted between submit and status sees the same job::

    <home>/jobs/<job_name>/
        job.json     what runs (command, env additions, slots, submitted) and its ``state``: ``queued`` when
                     staged and while the runner (its ``pid`` recorded) waits for a training slot, ``running``
                     once it holds one (``slot``, ``started``), ``exited`` with ``exit_code`` and ``ended``
        inputs/      the request's data blobs, downloaded from storage
        outputs/     what ml.train writes: model/ (MLflow folder), metrics.json, holdout.csv
        job.log      stdout + stderr of the runner and of ml.train
        pid          the runner's pid (backends/local/job_runner.py), written when it starts
        exit_code    ml.train's exit code, written atomically by the runner when it ends
        canceled     present once cancel() was asked
    <home>/jobs/.slots/<i>   the training slots the runners lock (``backends/local/job_runner.py``)

At most ``slots`` jobs of a home run at once, across every process using it (``LOCAL_TRAINING_SLOTS``, default
one per CPU, as an Azure ML cluster's ``maxNodeCount`` bounds its jobs); the others are ``queued`` with the
message "waiting for a training slot (N of M in use)" until a slot frees, and can be canceled while they wait.

The job id is the job name. A job whose runner died without writing an exit code (killed, machine rebooted) is
``failed`` with the tail of its log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from backends.errors import BackendError, NotFoundError, TrainingJobFailed
from backends.local.job_runner import (
    CANCEL_FILE,
    EXIT_FILE,
    JOB_FILE,
    LOG_FILE,
    PID_FILE,
    SLOTS_DIR,
    default_slots,
    slots_in_use,
    write_atomic,
)
from backends.local.procs import alive, read_int
from backends.ports import JobStatus, Storage, TrainingOutputs, TrainingRequest
from messages.enums import JobState

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
TAIL_LINES = 20
#: a job.json without a runner pid after this long was never started (its launcher failed)
START_GRACE_S = 60.0

#: builds the training command from (python, input files, output dir, params)
CommandBuilder = Callable[[str, Sequence[Path], Path, dict[str, str]], list[str]]


def train_command(python: str, inputs: Sequence[Path], output: Path, params: dict[str, str]) -> list[str]:
    """``python -m ml.train --data IN... --output OUT [--key value ...]`` (params become flags: alpha → --alpha)."""
    command = [python, "-m", "ml.train", "--data", *map(str, inputs), "--output", str(output)]
    for key, value in sorted(params.items()):
        command += [f"--{key.replace('_', '-')}", str(value)]
    return command


class JobNotFinishedError(BackendError):
    """Outputs were asked for a job that is still queued or running."""


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


class LocalJobs:
    """Training jobs as local subprocesses whose state lives under ``<home>/jobs``."""

    def __init__(
        self,
        home: Path,
        storage: Storage,
        python: str = sys.executable,
        *,
        env: Mapping[str, str] | None = None,
        command: CommandBuilder = train_command,
        slots: int | None = None,
    ) -> None:
        """``env``: extra environment for every job, e.g. the registry's ``MLFLOW_TRACKING_URI`` and experiment;
        ``slots``: how many jobs of this home run at once (None: one per CPU)."""
        if slots is not None and slots < 1:
            raise ValueError(f"training slots must be at least 1, got {slots}")
        self.root = home.resolve() / "jobs"
        self.slots = slots or default_slots()
        self.storage = storage
        self.python = python
        self.env = dict(env or {})
        self.command = command

    def job_dir(self, job_id: str) -> Path:
        if not job_id or "/" in job_id or job_id in (".", "..") or job_id.startswith("."):
            raise ValueError(f"invalid job id {job_id!r}")
        return self.root / job_id

    def submit(self, request: TrainingRequest) -> JobStatus:
        """Stage inputs and start the job; a job with this name that already exists is returned as it is."""
        target = self.job_dir(request.job_name)
        if target.exists():
            log.info("job %s already submitted", request.job_name)
            return self.status(request.job_name)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{request.job_name}.{uuid.uuid4().hex}"
        try:
            self._stage(staging, target, request)
            try:
                staging.rename(target)
            except OSError:
                log.info("job %s was submitted concurrently", request.job_name)
                return self.status(request.job_name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._launch(target)
        log.info("job %s started", request.job_name)
        return self.status(request.job_name)

    def status(self, job_id: str) -> JobStatus:
        job_dir = self.job_dir(job_id)
        spec_path = job_dir / JOB_FILE
        if not spec_path.exists():
            if job_dir.exists():
                return JobStatus(job_id, JobState.QUEUED, "being staged", url=job_dir.as_uri())
            raise NotFoundError(f"no training job {job_id!r} under {self.root}")
        url = (job_dir / LOG_FILE).as_uri()
        if (job_dir / CANCEL_FILE).exists():
            return JobStatus(job_id, JobState.CANCELED, "canceled on request", tail(job_dir / LOG_FILE), url)
        exit_code = read_int(job_dir / EXIT_FILE)
        if exit_code is not None:
            if exit_code == 0:
                return JobStatus(job_id, JobState.COMPLETED, "exit code 0", url=url)
            log_tail = tail(job_dir / LOG_FILE)
            return JobStatus(
                job_id, JobState.FAILED, f"ml.train exited with code {exit_code}\n{log_tail}", log_tail, url
            )
        pid = read_int(job_dir / PID_FILE)
        if pid is None:
            submitted = json.loads(spec_path.read_text(encoding="utf-8")).get("submitted_epoch", 0.0)
            if time.time() - float(submitted) < START_GRACE_S:
                return JobStatus(job_id, JobState.QUEUED, "starting", url=url)
            log_tail = tail(job_dir / LOG_FILE)
            return JobStatus(job_id, JobState.FAILED, f"the job never started\n{log_tail}", log_tail, url)
        if alive(pid, f"job_runner run {job_dir}"):
            spec = json.loads(spec_path.read_text(encoding="utf-8"))
            if spec.get("state") == "running":
                return JobStatus(job_id, JobState.RUNNING, f"pid {pid}, training slot {spec.get('slot')}", url=url)
            slots = int(spec.get("slots") or self.slots)
            in_use = slots_in_use(self.root / SLOTS_DIR, slots)
            return JobStatus(
                job_id, JobState.QUEUED, f"waiting for a training slot ({in_use} of {slots} in use)", url=url
            )
        if (job_dir / EXIT_FILE).exists():  # finished between the two reads
            return self.status(job_id)
        log_tail = tail(job_dir / LOG_FILE)
        return JobStatus(
            job_id,
            JobState.FAILED,
            f"the job's process {pid} died without an exit code (killed?)\n{log_tail}",
            log_tail,
            url,
        )

    def cancel(self, job_id: str) -> None:
        """Stop the job's process group (SIGTERM, then SIGKILL after a few seconds); a finished job is left alone."""
        current = self.status(job_id)
        if current.finished:
            return
        job_dir = self.job_dir(job_id)
        write_atomic(job_dir / CANCEL_FILE, datetime.now(UTC).isoformat())
        pid = read_int(job_dir / PID_FILE)
        if pid is None or not alive(pid, f"job_runner run {job_dir}"):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and alive(pid, f"job_runner run {job_dir}"):
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    def fetch_outputs(self, job_id: str, dest: Path) -> TrainingOutputs:
        """Copy a completed job's outputs to ``dest``; a failed one raises ``TrainingJobFailed``."""
        current = self.status(job_id)
        if current.state in (JobState.FAILED, JobState.CANCELED):
            raise TrainingJobFailed(job_id, current.state + ": " + current.message.splitlines()[0], current.log_tail)
        if current.state is not JobState.COMPLETED:
            raise JobNotFinishedError(f"training job {job_id} is {current.state}; its outputs are not ready")
        outputs = self.job_dir(job_id) / "outputs"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copytree(outputs, dest, dirs_exist_ok=True)
        metrics_path = dest / "metrics.json"
        raw = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
        metrics = {k: float(v) for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        return TrainingOutputs(job_id, dest / "model", metrics, dest / "holdout.csv")

    def model_source(self, job_id: str) -> str:
        model = self.job_dir(job_id) / "outputs" / "model"
        if not (model / "MLmodel").exists():
            raise NotFoundError(f"training job {job_id} has no model at {model}")
        return str(model)

    # --- helpers -------------------------------------------------------------------------------

    def _stage(self, staging: Path, final: Path, request: TrainingRequest) -> None:
        """Download the inputs and write job.json in ``staging``, with paths as they will be once renamed."""
        (staging / "inputs").mkdir(parents=True)
        (staging / "outputs").mkdir()
        inputs: list[Path] = []
        for index, ref in enumerate(request.data):
            container, _, blob = ref.partition("/")
            if not container or not blob:
                raise ValueError(f"data reference {ref!r} is not 'container/blob'")
            data, _info = self.storage.read(container, blob)
            name = f"{index:02d}-{Path(blob).name}"
            (staging / "inputs" / name).write_bytes(data)
            inputs.append(final / "inputs" / name)
        command = self.command(self.python, inputs, final / "outputs", dict(request.params))
        env = {
            **self.env,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        }
        spec = {
            "job_name": request.job_name,
            "dataset_version": request.dataset_version,
            "data": request.data,
            "params": request.params,
            "command": command,
            "env": env,
            "cwd": str(ROOT),
            "state": "queued",
            "slots": self.slots,
            "submitted": datetime.now(UTC).isoformat(),
            "submitted_epoch": time.time(),
        }
        write_atomic(staging / JOB_FILE, json.dumps(spec, indent=2))

    def _launch(self, job_dir: Path) -> None:
        launcher = subprocess.run(
            [self.python, "-m", "backends.local.job_runner", "launch", str(job_dir)],
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
            },
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if launcher.returncode != 0:
            raise BackendError(f"could not start job {job_dir.name}: {launcher.stderr.decode(errors='replace')[-500:]}")
        deadline = time.monotonic() + 30.0
        while not (job_dir / PID_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
