"""The Endpoints port as local scoring servers (``python -m scoring.server``): an endpoint each, two slots each.

Each endpoint NAME (``qa``, ``production``, ``<model>-qa``, ``<model>-production``) listens on 127.0.0.1:PORT of its
own, with its files under ``<home>/endpoints/NAME/``: ``keys.json`` ({"key", "admin_key"}, mode 0600),
``models/<version>/`` (the deployed MLflow folders) and the server's own persisted state. ``<home>/endpoints.json``
tells users and the CLI where each endpoint is and its scoring key.

The endpoints of one environment share one server process (``scoring.hosting``), so an extra model costs its loaded
models, not another interpreter (~300 MB): environment ENV (``qa`` or ``production``) is a supervised server
(``backends.local.supervisor --endpoints``) started detached on first use, with ``server.pid``, ``server.log`` and
``hosted.json`` (the endpoints it hosts and their ports) in ``<home>/endpoints/ENV/``. An endpoint used for the first
time is added to ``hosted.json`` and handed to the running server without a restart (SIGHUP to the supervisor).
Like a real online endpoint the servers outlive the function host; ``stop_all(home)`` stops them (``make run`` on
Ctrl-C, tests).

Deployments and traffic go through the server's admin API (``Authorization: Bearer <admin_key>``):
``PUT/DELETE /admin/deployments/{slot}``, ``PUT /admin/traffic``, ``GET /admin/state``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from backends.errors import BackendError, DeploymentFailed, NotFoundError, OperationRefused, TransientBackendError
from backends.local import supervisor
from backends.local.procs import alive, read_int, write_private
from backends.ports import (
    DeploymentRequest,
    EndpointState,
    ModelRegistry,
    ModelVersion,
    Operation,
    OperationKind,
    OperationState,
    OperationStatus,
)
from backends.storage_connection import StorageConnection
from messages.enums import endpoint_parts

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SLOTS = ("blue", "green")
DEFAULT_PORTS = {"qa": 7081, "production": 7082}
SERVER_MARKER = "scoring.server"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
#: the storage connection the scoring server writes its prediction log with
LOGS_CONNECTION = "AzureWebJobsStorage"
#: the ports of the models' own endpoints (``<model>-qa``, ``<model>-production``), taken on first use
MODEL_PORTS = "endpoint_ports.json"
#: a model's name (``ml.spec.NAME``), the prefix of its endpoints
MODEL_NAME = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
#: in an environment's folder: the endpoints its server hosts, {name: port} (read by the supervisor)
HOSTED = "hosted.json"
HOST_LOCK = ".host.lock"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` between every thread and process of the machine (released if one dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_port(taken: set[int]) -> int:
    """A port nothing listens on now, other than ``taken``."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            return port
    raise BackendError("no free port for a model's endpoint")


class EndpointRequestError(ValueError):
    """The endpoint refused a request as invalid (e.g. a traffic split that does not add up)."""


def _tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


class LocalEndpoints:
    """Scoring-server endpoints on 127.0.0.1, started on demand, whose state the servers persist themselves."""

    def __init__(
        self,
        home: Path,
        registry: ModelRegistry,
        ports: dict[str, int] | None = None,
        logs_connection: StorageConnection | None = None,
        logs_container: str = "scoring-logs",
        *,
        python: str = sys.executable,
        ready_timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        self.home = home.resolve()
        self.registry = registry
        self.ports = dict(ports or DEFAULT_PORTS)
        self.logs_connection = logs_connection
        self.logs_container = logs_container
        self.python = python
        self.ready_timeout_s = ready_timeout_s
        self._http = requests.Session()
        self._ports_lock = threading.Lock()

    # --- the port ------------------------------------------------------------------------------

    def deploy(self, endpoint: str, slot: str, model: ModelVersion) -> EndpointState:
        """Put ``model`` in ``slot``; the endpoint's first deployment gets all traffic, later ones none yet."""
        _check_slot(slot)
        url = self._ensure(endpoint)
        before = self._admin(endpoint, "GET", "/admin/state")
        model_dir = self._model_dir(endpoint, model)
        body = {"version": str(model.version), "model_dir": str(model_dir)}
        answer = self._admin(endpoint, "PUT", f"/admin/deployments/{slot}", body, failure=DeploymentFailed)
        if not any(int(p) > 0 for s, p in dict(before.get("traffic") or {}).items() if s != slot):
            deployed = self._state(endpoint, url, answer).deployments
            answer = self._admin(endpoint, "PUT", "/admin/traffic", {s: (100 if s == slot else 0) for s in deployed})
        log.info("deployed %s version %s to %s/%s", model.name, model.version, endpoint, slot)
        return self._state(endpoint, url, answer)

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> EndpointState:
        for slot, percent in traffic.items():
            _check_slot(slot)
            if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
                raise EndpointRequestError(f"traffic for slot {slot!r} must be an integer 0-100, got {percent!r}")
        url = self._ensure(endpoint)
        return self._state(endpoint, url, self._admin(endpoint, "PUT", "/admin/traffic", dict(traffic)))

    def remove(self, endpoint: str, slot: str) -> EndpointState:
        """Remove the slot's deployment; removing an empty slot is not an error."""
        _check_slot(slot)
        self._ensure(endpoint)
        with contextlib.suppress(NotFoundError):
            self._admin(endpoint, "DELETE", f"/admin/deployments/{slot}")
        return self.state(endpoint)

    def state(self, endpoint: str) -> EndpointState:
        url = self._ensure(endpoint)
        return self._state(endpoint, url, self._admin(endpoint, "GET", "/admin/state"))

    # --- long operations (the port): a local change is done when the admin call returns --------------

    def begin_deploy(self, request: DeploymentRequest, model: ModelVersion) -> OperationStatus:
        """Deploy at once; a model the server cannot load ends the operation ``failed`` with the server's reason."""
        operation = Operation(
            OperationKind.DEPLOY, request.endpoint, request.slot, request.version, model_name=request.model_name
        )
        if self.state(request.endpoint).deployments.get(request.slot) != request.version:
            try:
                self.deploy(request.endpoint, request.slot, model)
            except DeploymentFailed as exc:
                return OperationStatus(operation, OperationState.FAILED, str(exc))
        return self.operation_status(operation)

    def begin_traffic(self, endpoint: str, traffic: dict[str, int]) -> OperationStatus:
        operation = Operation(OperationKind.TRAFFIC, endpoint, traffic=dict(traffic))
        state = self.state(endpoint)
        missing = sorted(slot for slot, pct in traffic.items() if pct > 0 and slot not in state.deployments)
        if missing:
            raise OperationRefused(f"endpoint {endpoint}: no ready deployment in slot(s) {', '.join(missing)}")
        if {s: state.traffic.get(s, 0) for s in traffic} != traffic:
            self.set_traffic(endpoint, traffic)
        return self.operation_status(operation)

    def begin_remove(self, endpoint: str, slot: str) -> OperationStatus:
        state = self.state(endpoint)
        if state.traffic.get(slot, 0) > 0 and len(state.deployments) > 1:
            raise OperationRefused(
                f"endpoint {endpoint}: slot {slot} takes {state.traffic[slot]}% of the traffic; move it first"
            )
        self.remove(endpoint, slot)
        return self.operation_status(Operation(OperationKind.REMOVE, endpoint, slot))

    def operation_status(self, operation: Operation) -> OperationStatus:
        """Read the outcome back from the server's state (the port never trusts a remembered answer)."""
        state = self.state(operation.endpoint)
        if operation.kind is OperationKind.DEPLOY:
            held = state.deployments.get(operation.slot)
            done = held == operation.version
            problem = f"slot {operation.slot} holds version {held}, not {operation.version}"
        elif operation.kind is OperationKind.TRAFFIC:
            now = {s: state.traffic.get(s, 0) for s in operation.traffic}
            done = now == operation.traffic
            problem = f"traffic is {now}, not {operation.traffic}"
        else:
            done = operation.slot not in state.deployments
            problem = f"slot {operation.slot} is still deployed"
        if done:
            return OperationStatus(operation, OperationState.SUCCEEDED)
        return OperationStatus(operation, OperationState.FAILED, f"endpoint {operation.endpoint}: {problem}")

    def supervise(self) -> list[str]:
        """Restart the server of every endpoint whose persisted state holds deployments but that does not answer
        (after the host or the machine restarted, or the server died); it restores its slots from that state."""
        down = [
            endpoint
            for endpoint in sorted({*self.ports, *self._model_ports()})
            if _holds_deployments(self.endpoint_dir(endpoint) / "state.json") and not self._answers(self.url(endpoint))
        ]
        restarted = []
        for endpoint in down:  # the first of an environment restarts its server, which brings back the others
            try:
                self._ensure(endpoint)
            except BackendError as exc:
                log.error("endpoint %s could not be restarted: %s", endpoint, exc)
                continue
            log.info("endpoint %s restarted with its deployments", endpoint)
            restarted.append(endpoint)
        return restarted

    # --- the server process --------------------------------------------------------------------

    def endpoint_dir(self, endpoint: str) -> Path:
        self.port(endpoint)
        return self.home / "endpoints" / endpoint

    def url(self, endpoint: str) -> str:
        return f"http://127.0.0.1:{self.port(endpoint)}"

    def port(self, endpoint: str) -> int:
        """The endpoint's port: from the settings for ``qa`` and ``production``; for a model's own endpoints
        (``<model>-qa``, ``<model>-production``) a free port taken on first use and kept in
        ``<home>/endpoint_ports.json``, so the endpoint keeps its address across restarts."""
        if endpoint in self.ports:
            return self.ports[endpoint]
        prefix, _ = endpoint_parts(endpoint)
        if not prefix or not MODEL_NAME.match(prefix[:-1]):
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(self.ports)} or <model>-qa")
        with self._ports_lock:
            known = self._model_ports()
            if endpoint not in known:
                taken = {*self.ports.values(), *known.values()}
                known[endpoint] = _free_port(taken)
                self.home.mkdir(parents=True, exist_ok=True)
                write_private(self.home / MODEL_PORTS, json.dumps(known, indent=2))
            return known[endpoint]

    def _model_ports(self) -> dict[str, int]:
        path = self.home / MODEL_PORTS
        try:
            known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except ValueError:
            log.error("%s is not JSON: the models' endpoints get new ports", path)
            return {}
        return {str(k): int(v) for k, v in known.items() if isinstance(v, int)}

    def keys(self, endpoint: str) -> dict[str, str]:
        """The endpoint's scoring and admin keys, created (mode 0600) on first use."""
        path = self.endpoint_dir(endpoint) / "keys.json"
        if path.exists():
            keys: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
            return keys
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps({"key": secrets.token_urlsafe(32), "admin_key": secrets.token_urlsafe(32)}))
        return self.keys(endpoint)

    def host_of(self, endpoint: str) -> str:
        """The environment whose server hosts ``endpoint`` (``qa`` or ``production``): its files are in that
        environment's default endpoint's folder."""
        return endpoint if endpoint in self.ports else endpoint_parts(endpoint)[1].value

    def _ensure(self, endpoint: str) -> str:
        """The endpoint's URL; if nothing answers there, the endpoint is added to its environment's server, which
        is started if it does not run."""
        url = self.url(endpoint)
        keys = self.keys(endpoint)
        self._publish(endpoint, url, keys["key"])
        if self._answers(url):
            return url
        host = self.host_of(endpoint)
        folder = self.endpoint_dir(host)
        with _locked(folder / HOST_LOCK):
            if self._answers(url):
                return url
            hosted = self._hosted(host)
            if hosted.get(endpoint) != self.port(endpoint):
                hosted[endpoint] = self.port(endpoint)
                write_private(folder / HOSTED, json.dumps(hosted, indent=2, sort_keys=True))
            pid = read_int(folder / "server.pid")
            if pid is not None and alive(pid, SERVER_MARKER):
                os.kill(pid, signal.SIGHUP)  # the supervisor hands the new port to its running server
                self._wait_ready(endpoint, lambda: None if alive(pid, SERVER_MARKER) else -1, folder / "server.log")
            else:
                self._start(host, endpoint)
        return url

    def _hosted(self, host: str) -> dict[str, int]:
        path = self.endpoint_dir(host) / HOSTED
        try:
            known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except ValueError:
            log.error("%s is not JSON: it is written anew", path)
            known = {}
        return {str(k): int(v) for k, v in known.items() if isinstance(v, int)} if isinstance(known, dict) else {}

    def _start(self, host: str, endpoint: str) -> None:
        """Start environment ``host``'s supervised server with every endpoint of its ``hosted.json``; return once
        ``endpoint`` answers."""
        folder = self.endpoint_dir(host)
        context = supervisor.stage(self.home / "builds")  # the server runs from the image's build context alone
        command = [
            self.python,
            "-m",
            "backends.local.supervisor",
            "--context",
            str(context),
            "--host",
            "127.0.0.1",
            "--endpoints",
            str(folder / HOSTED),
            "--",
            SERVER_MARKER,
            "--name",
            host,
            "--state-root",
            str(self.home / "endpoints"),
        ]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
            "SCORING_LOGS_CONTAINER": self.logs_container,
        }
        for name in [name for name in env if name.startswith(LOGS_CONNECTION)]:
            del env[name]  # the server gets exactly the logs connection, never the host's own storage settings
        if self.logs_connection is not None:
            env.update(self.logs_connection.as_settings(LOGS_CONNECTION))
        log_path = folder / "server.log"
        with log_path.open("ab") as out:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # reap it whenever it exits, so a stopped server never lingers as a zombie of this process
        threading.Thread(target=process.wait, name=f"reap-{host}", daemon=True).start()
        pid_file = folder / "server.pid"
        recorded = pid_file.read_text(encoding="utf-8") if pid_file.exists() else None
        pid_file.write_text(str(process.pid), encoding="utf-8")  # at once: stop_all must find it while it starts
        log.info("started the %s endpoints' server (pid %s) for endpoint %s", host, process.pid, endpoint)
        try:
            self._wait_ready(endpoint, process.poll, log_path)
        except DeploymentFailed:
            process.kill()  # never leave a server behind that no pid file names
            if read_int(pid_file) == process.pid:
                if recorded is None:
                    pid_file.unlink(missing_ok=True)
                else:
                    pid_file.write_text(recorded, encoding="utf-8")
            raise

    def _wait_ready(self, endpoint: str, exited: Callable[[], int | None], log_path: Path) -> None:
        """Until ``endpoint`` answers; ``DeploymentFailed`` with the log's tail once ``exited()`` gives the
        supervisor's exit status, or after ``ready_timeout_s``."""
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._answers(self.url(endpoint)):
                return
            code = exited()
            if code is not None:
                raise DeploymentFailed(f"endpoint {endpoint} server exited with code {code}:\n{_tail(log_path)}")
            time.sleep(0.1)
        raise DeploymentFailed(
            f"endpoint {endpoint} did not answer on port {self.port(endpoint)} within "
            f"{self.ready_timeout_s:.0f}s:\n{_tail(log_path)}"
        )

    def _answers(self, url: str) -> bool:
        try:
            return self._http.get(url + "/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _publish(self, endpoint: str, url: str, key: str) -> None:
        """Record the endpoint's URL and scoring key in ``<home>/endpoints.json`` (mode 0600)."""
        path = self.home / "endpoints.json"
        try:
            known: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except ValueError:
            known = {}
        if known.get(endpoint) == {"url": url, "key": key}:
            return
        known[endpoint] = {"url": url, "key": key}
        self.home.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(known, indent=2))

    # --- admin API -----------------------------------------------------------------------------

    def _model_dir(self, endpoint: str, model: ModelVersion) -> Path:
        """The version's model folder under the endpoint, downloaded once (atomically: never a half copy)."""
        target = self.endpoint_dir(endpoint) / "models" / str(model.version)
        if (target / "MLmodel").exists():
            return target
        staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
        try:
            self.registry.download(model.name, str(model.version), staging)
            shutil.rmtree(target, ignore_errors=True)
            with contextlib.suppress(OSError):  # another process put it there first
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _admin(
        self,
        endpoint: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        failure: type[Exception] = EndpointRequestError,
    ) -> dict[str, Any]:
        """One admin API call to a running server; errors become the backends' typed errors."""
        url, admin_key = self.url(endpoint), self.keys(endpoint)["admin_key"]
        what = f"{method} {endpoint}{path}"
        try:
            response = self._http.request(
                method, url + path, json=body, timeout=120, headers={"Authorization": f"Bearer {admin_key}"}
            )
        except requests.RequestException as exc:
            raise TransientBackendError(f"{what}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            raise NotFoundError(f"{what}: {response.text[:300]}")
        if response.status_code >= 500:
            raise TransientBackendError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
        if response.status_code in (401, 403):
            raise BackendError(
                f"{what}: HTTP {response.status_code}: the server on {url} does not accept this "
                f"endpoint's admin key (is another server using the port?)"
            )
        if response.status_code >= 400:
            raise failure(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            answer = {}
        return answer if isinstance(answer, dict) else {}

    def _state(self, endpoint: str, url: str, answer: dict[str, Any]) -> EndpointState:
        if "deployments" not in answer:
            answer = self._admin(endpoint, "GET", "/admin/state")
        deployments = {
            str(slot): str(d.get("version") if isinstance(d, dict) else d)
            for slot, d in dict(answer.get("deployments") or {}).items()
        }
        traffic = {str(slot): int(p) for slot, p in dict(answer.get("traffic") or {}).items()}
        return EndpointState(endpoint, url, self.keys(endpoint)["key"], deployments, traffic)


def _holds_deployments(state_file: Path) -> bool:
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and bool(state.get("deployments"))


def _check_slot(slot: str) -> None:
    if slot not in SLOTS:
        raise EndpointRequestError(f"unknown slot {slot!r}; expected one of {', '.join(SLOTS)}")


def status_all(home: Path) -> dict[str, dict[str, Any]]:
    """Every recorded endpoint server: its pid and whether it still runs."""
    found: dict[str, dict[str, Any]] = {}
    for pid_file in sorted((home / "endpoints").glob("*/server.pid")):
        pid = read_int(pid_file)
        found[pid_file.parent.name] = {
            "pid": pid,
            "running": pid is not None and alive(pid, SERVER_MARKER),
            "log": str(pid_file.parent / "server.log"),
        }
    return found


def stop_all(home: Path, timeout_s: float = STOP_TIMEOUT_S) -> list[str]:
    """SIGTERM every recorded endpoint server, wait for them (SIGKILL after ``timeout_s``), remove the pid files.

    Returns the names of the endpoints whose server was running.
    """
    running: dict[str, int] = {}
    for name, entry in status_all(home).items():
        if entry["running"]:
            running[name] = int(entry["pid"])
            _signal(running[name], signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(pid, SERVER_MARKER) for pid in running.values()):
        time.sleep(0.05)
    for pid in running.values():
        if alive(pid, SERVER_MARKER):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(pid, SERVER_MARKER) for pid in running.values()):
        time.sleep(0.05)
    for pid_file in (home / "endpoints").glob("*/server.pid"):
        pid_file.unlink(missing_ok=True)
    return sorted(running)


def _signal(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
