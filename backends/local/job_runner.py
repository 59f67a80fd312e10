"""Runs one local training job detached from whoever submitted it, and records how it ended.

``python -m backends.local.job_runner launch JOB_DIR`` starts ``run JOB_DIR`` in a new session and exits at
once (so the submitter reaps its child straight away and the runner belongs to no host process). ``run`` starts
the command from ``JOB_DIR/job.json`` with stdout and stderr going to ``JOB_DIR/job.log``, records its pid, state
and start time in ``job.json`` and ``JOB_DIR/pid``, waits, and writes the child's exit code to
``JOB_DIR/exit_code`` atomically. If the runner itself is killed there is no exit code; ``LocalJobs.status``
then reports the job failed. Standard library only: this starts in a fresh interpreter for every job.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

JOB_FILE = "job.json"
LOG_FILE = "job.log"
PID_FILE = "pid"
EXIT_FILE = "exit_code"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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


def run(job_dir: Path) -> int:
    spec = json.loads((job_dir / JOB_FILE).read_text(encoding="utf-8"))
    env = {**os.environ, **spec.get("env", {})}
    spec.update(pid=os.getpid(), state="running", started=datetime.now(UTC).isoformat())
    write_atomic(job_dir / JOB_FILE, json.dumps(spec, indent=2))
    write_atomic(job_dir / PID_FILE, str(os.getpid()))
    with (job_dir / LOG_FILE).open("ab") as log_file:
        child = subprocess.Popen(
            spec["command"],
            cwd=spec.get("cwd") or job_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )

        def forward(signum: int, frame: FrameType | None) -> None:
            child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        code = child.wait()
    spec.update(state="exited", exit_code=code, ended=datetime.now(UTC).isoformat())
    write_atomic(job_dir / JOB_FILE, json.dumps(spec, indent=2))
    write_atomic(job_dir / EXIT_FILE, str(code))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("launch", "run"):
        print("usage: python -m backends.local.job_runner launch|run JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(argv[1]).resolve()
    return launch(job_dir) if argv[0] == "launch" else run(job_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
