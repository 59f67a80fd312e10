"""Runs one local training job detached from whoever submitted it, and records how it ended.

``python -m backends.local.job_runner launch JOB_DIR`` starts ``run JOB_DIR`` in a new session and exits at
once (so the submitter reaps its child straight away and the runner belongs to no host process). ``run`` records
its pid in ``JOB_DIR/pid`` and ``job.json`` (``state`` still ``queued``), then waits for a **training slot**: one
of the ``slots`` files ``<home>/jobs/.slots/<i>`` (``slots`` from ``job.json``, else one per CPU) that it can
lock (``fcntl.flock``, exclusive, non-blocking, tried again every ``SLOT_POLL_S``). That bounds the jobs running at
once across every process of the machine that uses this home, as an Azure ML compute cluster's ``maxNodeCount``
(``infra/main.bicep``: ``scaleSettings``) bounds the jobs running on it, the others staying ``Queued``. Slots are
taken in no particular order (not first-come first-served). The lock belongs to the runner's open file: the kernel
frees it when the runner ends, however it ends (killed included); the training command does not inherit it.

Once it holds a slot the runner starts the command from ``job.json`` (unless the job was canceled while it
waited) with stdout and stderr going to ``JOB_DIR/job.log``, records ``state: running``, the slot and the start
time in ``job.json``, waits, records the end time and the CPU seconds the command used (``cpu_s``, user + system:
the job's compute, as a cluster would bill it), and writes the child's exit code to ``JOB_DIR/exit_code``
atomically. If the runner
itself is killed there is no exit code; ``LocalJobs.status`` then reports the job failed. Standard library only:
this starts in a fresh interpreter for every job.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

JOB_FILE = "job.json"
LOG_FILE = "job.log"
PID_FILE = "pid"
EXIT_FILE = "exit_code"
CANCEL_FILE = "canceled"
#: the slot files of a home's jobs: ``<home>/jobs/.slots/<i>`` (a job id never starts with a dot)
SLOTS_DIR = ".slots"
#: how often a waiting runner tries the slots again
SLOT_POLL_S = 0.2


def default_slots() -> int:
    """Training jobs running at once when nothing says otherwise: one per CPU of the machine."""
    return os.cpu_count() or 1


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _open_slot(slots_dir: Path, index: int) -> int:
    slots_dir.mkdir(parents=True, exist_ok=True)
    return os.open(slots_dir / str(index), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def try_slot(slots_dir: Path, count: int) -> tuple[int, int] | None:
    """Lock the first free slot of ``count``: (its index, the open descriptor that holds it), or None."""
    for index in range(count):
        fd = _open_slot(slots_dir, index)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return index, fd
    return None


def slots_in_use(slots_dir: Path, count: int) -> int:
    """How many of the ``count`` slots a runner holds now (probed with a shared lock, released at once)."""
    used = 0
    for index in range(count):
        fd = _open_slot(slots_dir, index)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            used += 1
        finally:
            os.close(fd)
    return used


def launch(job_dir: Path) -> int:
    """Start ``run`` in its own session (process group) and return without waiting for it."""
    with (job_dir / LOG_FILE).open("ab") as log_file:
        subprocess.Popen(
            [sys.executable, "-m", "backends.local.job_runner", "run", str(job_dir)],
            cwd=job_dir,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return 0


def _wait_for_slot(job_dir: Path, count: int) -> tuple[int, int] | None:
    """Block until a slot is ours (its index and descriptor), or None once the job is canceled."""
    slots_dir = job_dir.parent / SLOTS_DIR
    said = False
    while not (job_dir / CANCEL_FILE).exists():
        taken = try_slot(slots_dir, count)
        if taken is not None:
            return taken
        if not said:
            print(f"waiting for a training slot ({count} of {count} in use)", flush=True)
            said = True
        time.sleep(SLOT_POLL_S)
    return None


def run(job_dir: Path) -> int:
    spec = json.loads((job_dir / JOB_FILE).read_text(encoding="utf-8"))
    env = {**os.environ, **spec.get("env", {})}
    spec.update(pid=os.getpid(), state="queued")
    write_atomic(job_dir / JOB_FILE, json.dumps(spec, indent=2))
    write_atomic(job_dir / PID_FILE, str(os.getpid()))
    taken = _wait_for_slot(job_dir, int(spec.get("slots") or default_slots()))
    if taken is None or (job_dir / CANCEL_FILE).exists():
        return 0  # canceled while queued: nothing ran, the cancel file tells the state
    slot, slot_fd = taken
    try:
        spec.update(state="running", slot=slot, started=datetime.now(UTC).isoformat())
        write_atomic(job_dir / JOB_FILE, json.dumps(spec, indent=2))
        code = _run_command(job_dir, spec, env)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command is this runner's only child
        spec.update(
            state="exited",
            exit_code=code,
            ended=datetime.now(UTC).isoformat(),
            cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
        )
        write_atomic(job_dir / JOB_FILE, json.dumps(spec, indent=2))
        write_atomic(job_dir / EXIT_FILE, str(code))
    finally:
        with contextlib.suppress(OSError):
            os.close(slot_fd)
    return 0


def _run_command(job_dir: Path, spec: dict[str, Any], env: dict[str, str]) -> int:
    with (job_dir / LOG_FILE).open("ab") as log_file:
        child = subprocess.Popen(
            spec["command"],
            cwd=str(spec.get("cwd") or job_dir),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )

        def forward(signum: int, frame: FrameType | None) -> None:
            child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        return child.wait()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("launch", "run"):
        print("usage: python -m backends.local.job_runner launch|run JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(argv[1]).resolve()
    return launch(job_dir) if argv[0] == "launch" else run(job_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
