"""``--workers N``: N server processes on one port, each with its own event loop, model and prediction-log stream.

Why processes: the request path is CPU-bound Python, and threads would share one interpreter lock. Why
``SO_REUSEPORT`` (each worker binds the port itself) rather than one inherited listening socket: each worker gets
its own accept queue and the kernel spreads new connections over them by hash, where with one shared socket the
event loop that is least busy at each wake-up takes most of them.

Only for a server that serves one model from ``--model-dir`` (Azure ML's image, where the mount is the model): a local
endpoint's deployments and traffic change through its admin API, and an admin call would reach one worker only.

The parent serves nothing. It starts the workers and restarts one that dies, with a back-off that grows while it
keeps dying. On SIGTERM or SIGINT it asks every worker to stop (each drains its requests and flushes its log) and
exits 0 once all have stopped cleanly. A worker that exits 2 has met a configuration error, which every worker
would meet, so the parent stops them all and exits 2. Workers run in their own process group, so a terminal's
Ctrl-C reaches them once, through the parent, and each asks the kernel to stop it if the parent dies.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger("scoring.workers")

MAX_WORKERS = 64
#: a configuration error: the server's exit code, the same for every worker
CONFIG_EXIT = 2
#: how long the parent waits for a worker to drain and flush after SIGTERM before it kills it
STOP_WAIT_S = 60.0
FIRST_BACKOFF_S, MAX_BACKOFF_S, STABLE_S = 0.2, 30.0, 60.0
_PR_SET_PDEATHSIG = 1


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` that other workers' sockets share (``SO_REUSEPORT``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to send this worker SIGTERM when its parent exits (Linux); exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:
        sys.exit(0)


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff_s: float = FIRST_BACKOFF_S
    restart_at: float | None = None
    exits: list[int] = field(default_factory=list)


class Workers:
    """The parent of ``count`` workers, each run as ``command + ["--worker-index", i]``."""

    def __init__(self, command: list[str], count: int, name: str) -> None:
        if not 1 < count <= MAX_WORKERS:
            raise ValueError(f"--workers must be from 2 to {MAX_WORKERS}, got {count}")
        self.command, self.name = command, name
        self.workers = [_Worker(i) for i in range(count)]
        self._stop = threading.Event()

    def _start(self, worker: _Worker) -> None:
        worker.process = subprocess.Popen(
            [*self.command, "--worker-index", str(worker.index), "--parent-pid", str(os.getpid())],
            start_new_session=True,
        )
        worker.started, worker.restart_at = time.monotonic(), None

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (0 when every worker stopped cleanly) or a configuration error (2)."""
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, lambda *_: self._stop.set())
        for worker in self.workers:
            self._start(worker)
        code = self._supervise()
        return self._stop_all() if code is None else max(code, self._stop_all())

    def _supervise(self) -> int | None:
        while not self._stop.wait(0.05):
            now = time.monotonic()
            for worker in self.workers:
                if worker.restart_at is not None:
                    if now >= worker.restart_at:
                        self._start(worker)
                    continue
                assert worker.process is not None
                code = worker.process.poll()
                if code is None:
                    continue
                worker.exits.append(code)
                if code == CONFIG_EXIT:
                    log.error("scoring server %s: worker %d: a configuration error: stopping", self.name, worker.index)
                    return CONFIG_EXIT
                if now - worker.started >= STABLE_S:
                    worker.backoff_s = FIRST_BACKOFF_S
                log.error(
                    "scoring server %s: worker %d exited with %d; restarting it in %.1f s",
                    self.name,
                    worker.index,
                    code,
                    worker.backoff_s,
                )
                worker.restart_at = now + worker.backoff_s
                worker.backoff_s = min(MAX_BACKOFF_S, worker.backoff_s * 2)
        return None

    def _stop_all(self) -> int:
        running = [w.process for w in self.workers if w.process is not None and w.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        worst = 0
        for process in running:
            try:
                code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("scoring server %s: a worker did not stop within %.0f s: killed", self.name, STOP_WAIT_S)
                process.kill()
                code = process.wait()
            worst = max(worst, 0 if code == 0 else 1)
        return worst
