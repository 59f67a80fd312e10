"""``python -m scoring.server --port PORT [--state-dir DIR] [--model-dir D] [--auth key|platform] ...``.

Serves one endpoint on uvicorn (uvloop + httptools; one process, or ``--workers N``).

- Local endpoints (``--auth key``, the default): deployments and traffic come through the admin API and persist in
  ``<state-dir>/state.json``, restored at start, so a restarted server serves the same versions; keys in
  ``--keys-file`` (default ``<state-dir>/keys.json``, generated on first start).
- Azure ML (the image's command): ``--model-dir`` (default ``AZUREML_MODEL_DIR``) serves that one model;
  ``--auth platform`` leaves keys to the endpoint's front end.

The prediction log goes to the blob service of ``--logs-connection`` (a connection as the Functions host reads it:
a connection string, or ``__blobServiceUri`` / ``__accountName`` with ``__credential`` / ``__clientId``), in
``--logs-container``; without settings for the default connection there is no log, for a named one it is an error.
SIGTERM/SIGINT: stop accepting, drain in-flight requests, flush the prediction log, exit 0.

``--workers N`` (with ``--model-dir``): N such processes share the port (``scoring.workers``).

``--listen NAME=FD`` (repeated) with ``--state-root DIR``: host several local endpoints in this one process
(``scoring.hosting``), endpoint NAME on the inherited listening socket FD with its files in ``DIR/NAME/``;
``--control-fd`` is the socket over which the supervisor hands over the sockets of endpoints added later.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from .app import AUTH_MODES, ScoringApp, ServerConfig
from .build import content_hash
from .hosting import ControlChannel, EndpointFactory, EndpointHost, local_port, parse_listen
from .model import ModelLoadError, default_version, load_model
from .predlog import PredictionLog
from .protocol import bounded_read_protocol
from .slots import SlotError, Slots
from .storage import BlobTarget, StorageSettingsError, resolve
from .workers import MAX_WORKERS, Workers, die_with_parent, reuse_port_socket

log = logging.getLogger("scoring.server")
DEFAULT_LOGS_CONNECTION = "AzureWebJobsStorage"
#: how this module is run (``python -m <it>``): the workers of ``--workers`` are started the same way
MODULE = __spec__.name if __spec__ is not None and __spec__.name != "__main__" else "scoring.server"


def read_keys(path: Path) -> dict[str, str]:
    """The endpoint's keys; generated (mode 0600) when the file does not exist yet."""
    if path.exists():
        keys = json.loads(path.read_text())
        if not keys.get("key") or not keys.get("admin_key"):
            raise ValueError(f"{path} must hold {{'key': ..., 'admin_key': ...}}")
        return {"key": str(keys["key"]), "admin_key": str(keys["admin_key"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = {"key": secrets.token_urlsafe(32), "admin_key": secrets.token_urlsafe(32)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(keys, out)
    return keys


def restore(slots: Slots, state_file: Path) -> None:
    """Reload the deployments a previous run persisted; a model that no longer loads is skipped and logged."""
    if not state_file.exists():
        return
    state = json.loads(state_file.read_text())
    for slot, spec in state.get("deployments", {}).items():
        try:
            slots.install(slot, load_model(Path(spec["model_dir"]), str(spec["version"])))
        except (ModelLoadError, SlotError, KeyError) as exc:
            log.error("cannot restore slot %s: %s", slot, exc)
    traffic = {s: p for s, p in state.get("traffic", {}).items() if s in slots.routing.models}
    if traffic and sum(traffic.values()) == 100:
        slots.set_traffic(traffic)


def log_target(args: argparse.Namespace) -> BlobTarget | None:
    """Where the prediction log goes, or ``None`` (no settings for the default connection)."""
    explicit = args.logs_connection is not None
    target = resolve(os.environ, args.logs_connection or DEFAULT_LOGS_CONNECTION, required=explicit)
    if target is None:
        log.warning("no prediction log: %s is not set (see --logs-connection)", DEFAULT_LOGS_CONNECTION)
        return None
    log.info("prediction log: %s, container %s", target.describe(), args.logs_container)
    return target


def build_app(args: argparse.Namespace) -> ScoringApp:
    state_dir = Path(args.state_dir) if args.state_dir else None
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
    if args.auth == "key":
        keys_file = Path(args.keys_file) if args.keys_file else state_dir / "keys.json" if state_dir else None
        if keys_file is None:
            raise ValueError("--auth key needs --keys-file or --state-dir (where keys.json is kept)")
        keys = read_keys(keys_file)
    else:
        keys = {"key": "", "admin_key": ""}
    model_dir = args.model_dir or os.environ.get("AZUREML_MODEL_DIR")
    slots = Slots(state_dir / "state.json" if state_dir and not model_dir else None)
    if model_dir:
        slots.install("blue", load_model(Path(model_dir), str(args.version or default_version(model_dir))))
    elif state_dir is not None:
        restore(slots, state_dir / "state.json")
    else:
        raise ValueError("nothing to serve: give --model-dir (or AZUREML_MODEL_DIR) or --state-dir")
    config = ServerConfig(args.name, keys["key"], keys["admin_key"], args.max_rows, auth=args.auth)
    target = log_target(args)
    predlog = PredictionLog(target, args.logs_container, args.name) if target is not None else None
    return ScoringApp(config, slots, predlog, build=content_hash(), worker=args.worker_index)


def hosted_endpoint(args: argparse.Namespace, target: BlobTarget | None, name: str) -> ScoringApp:
    """Endpoint ``name`` of a hosting process: its keys, deployments and traffic in ``<state-root>/<name>/``, its
    prediction log under its own name, as a server of its own would have them."""
    state_dir = Path(args.state_root) / name
    state_dir.mkdir(parents=True, exist_ok=True)
    keys = read_keys(state_dir / "keys.json")
    slots = Slots(state_dir / "state.json")
    restore(slots, state_dir / "state.json")
    config = ServerConfig(name, keys["key"], keys["admin_key"], args.max_rows, auth="key")
    predlog = PredictionLog(target, args.logs_container, name) if target is not None else None
    return ScoringApp(config, slots, predlog, build=content_hash())


def build_host(args: argparse.Namespace) -> tuple[EndpointHost, list[socket.socket], EndpointFactory]:
    """The hosting process's application, the listening sockets it starts with, and how it builds an endpoint
    added later."""
    if args.state_root is None:
        raise ValueError("--listen needs --state-root (the folder of the hosted endpoints' files)")
    if args.model_dir or args.state_dir or args.auth != "key" or args.workers != 1:
        raise ValueError(
            "--listen hosts local endpoints: it excludes --model-dir, --state-dir, --auth platform and --workers"
        )
    target = log_target(args)
    host = EndpointHost(args.name)
    sockets = []
    for name, fd in parse_listen(args.listen).items():
        sock = socket.socket(fileno=fd)
        host.add(local_port(sock), hosted_endpoint(args, target, name))
        sockets.append(sock)
    return host, sockets, lambda name: hosted_endpoint(args, target, name)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m scoring.server", description="serve a scoring endpoint")
    p.add_argument(
        "--name",
        default=os.environ.get("SCORING_ENDPOINT_NAME") or "endpoint",
        help="endpoint name: prefixes the prediction logs (default: SCORING_ENDPOINT_NAME or 'endpoint')",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="required, unless --listen gives the sockets")
    p.add_argument("--state-dir", default=None, help="deployments, traffic and keys of a local endpoint")
    p.add_argument("--keys-file", default=None)
    p.add_argument("--model-dir", default=None, help="serve this one MLflow model (default: AZUREML_MODEL_DIR)")
    p.add_argument(
        "--version",
        default=None,
        help="version label of --model-dir (default: MODEL_VERSION or the model folder's name, as Azure ML mounts it)",
    )
    p.add_argument("--max-rows", type=int, default=1000)
    p.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default="key",
        help="key: check 'Authorization: Bearer <key>'; platform: the front end has checked it (Azure ML)",
    )
    p.add_argument(
        "--logs-connection",
        default=None,
        help=f"storage connection of the prediction log (default {DEFAULT_LOGS_CONNECTION}, "
        "optional; a connection named here must be configured)",
    )
    p.add_argument("--logs-container", default=os.environ.get("SCORING_LOGS_CONTAINER") or "scoring-logs")
    p.add_argument(
        "--read-timeout",
        type=float,
        default=10.0,
        help="seconds a client has to send a request's headers and body (slow clients are cut off)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"server processes sharing the port (SO_REUSEPORT), 1 to {MAX_WORKERS}; more than 1 only with "
        "--model-dir (default: SCORING_WORKERS or 1)",
    )
    p.add_argument(
        "--listen",
        action="append",
        default=[],
        metavar="NAME=FD",
        help="host local endpoint NAME on the inherited listening socket FD (repeated; with --state-root)",
    )
    p.add_argument("--state-root", default=None, help="the hosted endpoints' files, NAME/ each (with --listen)")
    p.add_argument(
        "--control-fd",
        type=int,
        default=None,
        help="with --listen: the socket over which listening sockets of endpoints added later arrive",
    )
    p.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--fd",
        type=int,
        default=None,
        help="serve on this inherited listening socket instead of binding --host/--port (a supervisor "
        "holding the port across restarts)",
    )
    return p


def run_workers(args: argparse.Namespace, argv: list[str]) -> int:
    """The parent of ``--workers`` processes (``scoring.workers``), after checking what they cannot share."""
    problem = ""
    if not 1 <= args.workers <= MAX_WORKERS:
        problem = f"--workers must be from 1 to {MAX_WORKERS}, got {args.workers}"
    elif not (args.model_dir or os.environ.get("AZUREML_MODEL_DIR")):
        problem = (
            "--workers more than 1 needs --model-dir (or AZUREML_MODEL_DIR): a local endpoint's deployments and "
            "traffic change through its admin API, which would reach one worker only"
        )
    elif args.fd is not None:
        problem = "--workers more than 1 and --fd exclude each other: each worker binds the port itself"
    elif not hasattr(socket, "SO_REUSEPORT"):
        problem = "--workers more than 1 needs SO_REUSEPORT, which this platform does not have"
    if problem:
        print(f"scoring server {args.name}: {problem}", file=sys.stderr)
        return 2
    safe_path = ["-P"] if sys.flags.safe_path else []
    workers = Workers([sys.executable, *safe_path, "-m", MODULE, *argv], args.workers, args.name)
    print(f"scoring server {args.name}: {args.workers} workers on http://{args.host}:{args.port}", flush=True)
    return workers.run()


def check_settings(args: argparse.Namespace) -> None:
    """``ValueError`` naming the first argument or setting that cannot work; ``SCORING_WORKERS`` read here."""
    if args.workers is None:
        setting = os.environ.get("SCORING_WORKERS") or "1"
        if not setting.strip().isdigit():
            raise ValueError(f"SCORING_WORKERS must be a whole number, got {setting[:40]!r}")
        args.workers = int(setting)
    if args.port is None and not args.listen:
        raise ValueError("--port is required (or --listen NAME=FD)")
    if not 0 < args.read_timeout <= 3600:
        raise ValueError("--read-timeout must be more than 0 and at most 3600 s")


Started = Callable[["_Server"], None]


def serving(args: argparse.Namespace) -> tuple[ScoringApp | EndpointHost, list[socket.socket] | None, Started | None]:
    """What this process serves, on which sockets (``None``: uvicorn binds --host/--port), and what to do once it
    serves (a hosting process starts reading its control socket)."""
    if args.listen:
        host, sockets, build = build_host(args)
        if args.control_fd is None:
            return host, sockets, None
        control = socket.socket(fileno=args.control_fd)
        return host, sockets, lambda server: ControlChannel(control, host, build, server.listen).start()
    app = build_app(args)
    if args.fd is not None:
        return app, [socket.socket(fileno=args.fd)], None
    if args.worker_index is not None:
        try:
            return app, [reuse_port_socket(args.host, args.port)], None
        except OSError as exc:
            raise ValueError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    return app, None, None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the SDK logs every storage request at INFO (headers included): noise, and a cost per prediction-log upload
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        check_settings(args)
    except ValueError as exc:
        print(f"scoring server {args.name}: {exc}", file=sys.stderr)
        return 2
    if args.worker_index is None and args.workers != 1:
        return run_workers(args, argv)
    if args.worker_index is not None and args.parent_pid is not None:
        die_with_parent(args.parent_pid)
    try:
        app, sockets, started = serving(args)
    except (ModelLoadError, StorageSettingsError, ValueError, OSError) as exc:
        print(f"scoring server {args.name}: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port or 0,
        loop="uvloop",
        http=bounded_read_protocol(args.read_timeout),
        access_log=False,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=30,
    )
    worker = "" if args.worker_index is None else f" worker {args.worker_index}"
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        # uvicorn drains, runs the lifespan shutdown (log flush), then re-raises the signal to this handler
        signal.signal(stop_signal, lambda *_: sys.exit(0))
    where = f"{len(args.listen)} endpoints" if args.listen else f"http://{args.host}:{args.port}"
    _Server(config, f"scoring server {args.name}{worker} listening on {where}", started).run(sockets)
    return 0


class _Server(uvicorn.Server):
    """Announces readiness only once the socket is bound (launchers wait for that line or for ``GET /``), and can
    start serving another listening socket while it runs (``listen``: an endpoint added to a hosting process)."""

    def __init__(self, config: uvicorn.Config, ready_line: str, started: Started | None = None) -> None:
        super().__init__(config)
        self.ready_line = ready_line
        self.on_started = started

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            if self.on_started is not None:
                self.on_started(self)
            print(self.ready_line, flush=True)

    async def listen(self, sock: socket.socket) -> None:
        """Serve ``sock`` too, with the same protocol and state as the sockets served from the start (what
        ``uvicorn.Server.startup`` does for each of those); shut down with them."""
        config = self.config

        def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=_loop
            )

        server = await asyncio.get_running_loop().create_server(create_protocol, sock=sock, backlog=config.backlog)
        self.servers.append(server)


if __name__ == "__main__":
    sys.exit(main())
