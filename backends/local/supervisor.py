"""A local endpoint's server process: run as Azure runs the image, and kept serving as the kubelet keeps a pod.

``stage(builds)`` copies the scoring image's build context (``scoring.build``) to ``<builds>/<content hash>/``, once
per content. ``python -m backends.local.supervisor --context DIR --host H --port P -- scoring.server ARGS`` then:

- binds ``H:P`` itself and holds the listening socket for as long as it runs;
- runs ``python -P -m scoring.server ARGS --fd N`` on that socket with ``DIR`` as its working directory and its only
  ``PYTHONPATH`` entry (``-P``: the working directory is not prepended either), so the server imports the staged
  files and nothing of the repository: what serves locally is what the image holds;
- restarts the server at once when it dies (``kill -9``, a crash), with the state it persisted; connections that
  arrive meanwhile wait in the socket's backlog instead of being refused. A server that dies again within
  ``QUICK_EXIT_S`` is restarted after a growing delay (1, 2, 4 … 30 s: the kubelet's crash-loop back-off), and one
  that exits with status 2 (it says its configuration cannot work) is not restarted: the supervisor exits with 2;
- on SIGTERM/SIGINT passes SIGTERM to the server, waits for its graceful stop (requests drained, prediction log
  flushed), and exits with its status. If the supervisor itself is killed, the kernel sends the server SIGTERM.

``--endpoints FILE`` instead of ``--port``: the server hosts several endpoints (``scoring.hosting``). FILE holds
``{"<endpoint>": <port>, ...}``; the supervisor binds every port and runs the server with ``--listen NAME=FD`` for
each and ``--control-fd`` for a control socket. On SIGHUP it reads FILE again, binds the ports of endpoints added
since, and hands their sockets to the running server over the control socket, so an endpoint is added without a
restart; a restarted server gets them all on its command line.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scoring.build import PACKAGE_NAME, content_hash, stage_build_context

#: stagings kept besides the current one (older ones are removed unless a process still runs from them)
KEEP_STAGINGS = 3
#: a server that dies sooner than this after its start is crash-looping: restarts back off
QUICK_EXIT_S = 10.0
MAX_BACKOFF_S = 30.0
#: the exit status with which the server says its configuration cannot work (restarting would not help)
PERMANENT_EXIT = 2
PR_SET_PDEATHSIG = 1
log = logging.getLogger("backends.local.supervisor")


def stage(builds: Path) -> Path:
    """``<builds>/<hash>``, holding the staged build context (staged atomically, once per content hash)."""
    version = content_hash()
    final = builds / version
    if not (final / PACKAGE_NAME).is_dir():
        builds.mkdir(parents=True, exist_ok=True)
        scratch = builds / f".{version}.{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        stage_build_context(scratch)
        try:
            scratch.rename(final)
        except OSError:  # another process staged the same content first
            shutil.rmtree(scratch, ignore_errors=True)
    _prune(builds, final)
    return final


def _prune(builds: Path, current: Path) -> None:
    others = sorted(
        (p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".") and p != current),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    in_use = _working_directories()
    for old in others[KEEP_STAGINGS:]:
        if not any(cwd == old or old in cwd.parents for cwd in in_use):
            shutil.rmtree(old, ignore_errors=True)


def _working_directories() -> set[Path]:
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            found.add(Path(os.readlink(proc / "cwd")))
        except OSError:
            continue
    return found


def server_env(context: Path, base: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: ``base`` with the staged context as the only import path."""
    env = {k: v for k, v in base.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = str(context)
    env["PYTHONSAFEPATH"] = "1"
    return env


def listen(host: str, port: int, backlog: int = 2048) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _libc_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


#: looked up once, here: the child between fork and exec only calls it (no library loading, no lock taken)
_PRCTL = _libc_prctl()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies, so a server never outlives it (Linux)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


def read_endpoints(path: Path) -> dict[str, int]:
    """The endpoints file: {name: port}; ``ValueError`` naming what is wrong with it."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the endpoints file: {exc}") from None
    if not isinstance(doc, dict) or not all(
        isinstance(name, str) and isinstance(port, int) and 0 < port < 65536 for name, port in doc.items()
    ):
        raise ValueError(f'{path}: expected {{"<endpoint>": <port>, ...}}, got {str(doc)[:200]}')
    return dict(doc)


class Listeners:
    """The listening sockets a supervisor holds for its server, and how the server is told about them.

    One port (``--port``): the server gets ``--fd N``. An endpoints file (``--endpoints``): the server gets
    ``--listen NAME=FD`` for each endpoint and a control socket over which ``add_new`` hands it the ports added since.
    """

    def __init__(self, host: str, port: int | None = None, endpoints: Path | None = None) -> None:
        self.host, self.endpoints = host, endpoints
        self.sockets: dict[str, socket.socket] = {}
        self.control: socket.socket | None = None  # our end of the running server's control socket
        self.lock = threading.Lock()
        if port is not None:
            self.sockets[""] = listen(host, port)
        if endpoints is not None:
            for name, each in read_endpoints(endpoints).items():
                self.sockets[name] = listen(host, each)

    def server_args(self) -> tuple[list[str], list[int], socket.socket | None]:
        """(arguments, descriptors to pass, the server's end of a new control socket) for a server about to start;
        call with ``lock`` held, so no socket is added between its command line and its control socket."""
        if self.endpoints is None:
            sock = self.sockets[""]
            return ["--fd", str(sock.fileno())], [sock.fileno()], None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        theirs.set_inheritable(True)
        if self.control is not None:
            self.control.close()
        self.control = ours
        args = [f"--listen={name}={sock.fileno()}" for name, sock in sorted(self.sockets.items())]
        fds = [sock.fileno() for sock in self.sockets.values()]
        return [*args, "--control-fd", str(theirs.fileno())], [*fds, theirs.fileno()], theirs

    def add_new(self) -> list[str]:
        """Bind the ports of endpoints the file gained and hand them to the running server; returns their names.
        A port that cannot be bound is logged and tried again on the next SIGHUP."""
        if self.endpoints is None:
            return []
        try:
            wanted = read_endpoints(self.endpoints)
        except ValueError as exc:
            log.error("%s", exc)
            return []
        added = []
        with self.lock:
            for name, port in sorted(wanted.items()):
                if name in self.sockets:
                    continue
                try:
                    sock = listen(self.host, port)
                except OSError as exc:
                    log.error("endpoint %s: cannot listen on %s:%d: %s", name, self.host, port, exc)
                    continue
                self.sockets[name] = sock
                added.append(name)
                if self.control is not None:
                    try:
                        socket.send_fds(self.control, [json.dumps({"name": name}).encode()], [sock.fileno()])
                    except OSError as exc:  # the server is gone: its successor gets the socket on its command line
                        log.warning("endpoint %s: not handed to the server now (%s)", name, exc)
        return added


class Supervisor:
    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, listeners: Listeners) -> None:
        self.command, self.env, self.cwd, self.listeners = command, env, cwd, listeners
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.reload = threading.Event()
        self.restarts = 0

    def run(self) -> int:
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, self._stop)
        signal.signal(signal.SIGHUP, lambda *_: self.reload.set())
        threading.Thread(target=self._reloader, name="reload", daemon=True).start()
        quick_exits = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            with self.listeners.lock:
                args, fds, theirs = self.listeners.server_args()
                self.child = subprocess.Popen(
                    [*self.command, *args],
                    cwd=self.cwd,
                    env=self.env,
                    pass_fds=fds,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 (it only calls prctl; the reloader waits on the lock)
                )
            if theirs is not None:
                theirs.close()
            status = self.child.wait()
            if self.stopping.is_set():
                return 0 if status in (0, -signal.SIGTERM) else status
            if status == PERMANENT_EXIT:
                log.error("server exited with status %d (its configuration cannot work): not restarting", status)
                return PERMANENT_EXIT
            quick_exits = quick_exits + 1 if time.monotonic() - started < QUICK_EXIT_S else 1
            delay = 0.0 if quick_exits == 1 else min(MAX_BACKOFF_S, 2.0 ** (quick_exits - 2))
            log.warning(
                "server (pid %d) exited with status %d after %.1f s: restarting%s",
                self.child.pid,
                status,
                time.monotonic() - started,
                f" in {delay:g} s" if delay else "",
            )
            self.restarts += 1
            if self.stopping.wait(delay):
                return 0
        return 0

    def _reloader(self) -> None:
        while not self.stopping.is_set():
            self.reload.wait()
            self.reload.clear()
            if not self.stopping.is_set():
                for name in self.listeners.add_new():
                    log.info("endpoint %s added", name)

    def _stop(self, signum: int, _frame: Any) -> None:
        self.stopping.set()
        self.reload.set()
        child = self.child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backends.local.supervisor", description=__doc__.split("\n")[0])
    parser.add_argument("--context", required=True, type=Path, help="the staged build context (from stage())")
    parser.add_argument("--host", default="127.0.0.1")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int, help="serve one endpoint on this port")
    where.add_argument("--endpoints", type=Path, help='host the endpoints of this file: {"<endpoint>": <port>}')
    parser.add_argument("server", nargs=argparse.REMAINDER, help="-- MODULE ARGS: the server module and its arguments")
    args = parser.parse_args(argv)
    server = args.server[1:] if args.server[:1] == ["--"] else args.server
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s supervisor: %(message)s")
    context = args.context.resolve()
    if not server or not (context / PACKAGE_NAME / "server.py").is_file():
        print(
            f"usage: --context DIR (a staged build context; {context} is not) -- scoring.server ARGS", file=sys.stderr
        )
        return 2
    try:
        listeners = Listeners(args.host, args.port, args.endpoints)
    except (OSError, ValueError) as exc:
        print(f"cannot listen on {args.host}:{args.port or args.endpoints}: {exc}", file=sys.stderr)
        return 2
    module, *server_args = server
    command = [sys.executable, "-P", "-m", module, *server_args, "--host", args.host]
    if args.port is not None:
        command += ["--port", str(args.port)]
    return Supervisor(command, server_env(context, os.environ), context, listeners).run()


if __name__ == "__main__":
    sys.exit(main())
