"""Platform benchmark: many models at once, each added as a spec folder, each with its drops, all to production.

Usage: .venv/bin/python benchmarks/platform_bench.py [--models 10] [--drops 10] [--rows 200]

Azurite and devhost serve a copy of the app to which ``--models + 1`` models were added as spec folders only (copies
of ``models/breast-cancer`` under other names, the way a team onboards a model). In the same run:
1. the baseline: one model's ``--drops`` drops uploaded at once;
2. the platform: ``--models`` other models' ``--drops`` drops each, all uploaded at once.
Each drop is a different random ``--rows``-row sample of the breast-cancer data, so every one is new data that is
validated, accepted and trained on; later versions supersede earlier ones in the release queue of their model.
A phase ends when every retrain has finished and every model's production endpoint answers with its champion.

Reported per phase: wall time; the CPU time the pipeline's own processes used (devhost and the app, the training
jobs, the endpoints, Azurite) and the physical limit it sets (that work spread over every core with nothing waiting:
wall / floor near 1 means the phase was bound by CPU, not by the orchestration), beside the CPU time the whole
machine was busy (the difference is other work sharing it); the training jobs' summed run time (queued jobs wait for
a training slot first); the retrains registered (a later version that does not beat its model's champion is not)
and the models serving their champion; peak memory of devhost and the memory of the local endpoints (one scoring
server and its supervisor per environment, hosting every model's endpoint) once the phase is done.
Goals, as ratios in this run: the platform's drops finish within 3x the baseline's time, and local endpoint memory
grows by under 50 MB per extra model.
Prints a table and writes benchmarks/results/platform_bench-<time>.json and platform_bench.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.storage import upload  # noqa: E402
from ml.sample import breast_cancer_frame  # noqa: E402
from orchestrators.ids import retrain_id_for_blob  # noqa: E402
from tests.support.app import KEY, app_values, child_env, copy_app  # noqa: E402
from tests.support.azurite import free_port, start_azurite  # noqa: E402
from triggers.blobs import canonical_etag  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TEMPLATE = ROOT / "models" / "breast-cancer"
DEADLINE_S = 1800.0
TIME_GOAL = 3.0
MEMORY_GOAL_MB = 50.0
ENDPOINT_MARKERS = ("scoring.server", "backends.local.supervisor")
CORES = psutil.cpu_count() or 1


@dataclass
class Phase:
    name: str
    models: int
    drops: int
    wall_s: float
    training_s: float
    registered: int
    serving: int
    devhost_peak_mb: float
    endpoints_mb: float
    endpoint_processes: int
    #: CPU time the pipeline's own processes used during the phase: devhost (and the app in it), the training
    #: jobs (``cpu_s`` in their job.json), the local endpoints, Azurite
    cpu_s: float
    #: CPU time the whole machine was busy meanwhile: the difference is other work sharing the machine
    machine_busy_s: float
    #: of ``cpu_s``, what devhost used: the host, the Durable engine, the app's triggers, orchestrators and activities
    orchestration_cpu_s: float

    @property
    def cpu_floor_s(self) -> float:
        """The physical limit: the phase's own CPU work spread over every core with nothing waiting."""
        return self.cpu_s / CORES


def machine_busy_s() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


class CpuMeter:
    """The CPU seconds of the pipeline's processes: the running ones' counters, and every ended training job's
    ``cpu_s`` (a job's process is gone by the time a phase ends)."""

    def __init__(self, host: Host, azurite_pid: int) -> None:
        self.host, self.azurite_pid = host, azurite_pid

    def snapshot(self) -> Snapshot:
        running: dict[int, float] = {}
        for pid in (self.host.process.pid, self.azurite_pid):
            with contextlib.suppress(psutil.Error):
                running[pid] = _cpu(psutil.Process(pid))
        for process in psutil.process_iter(["cmdline"]):
            command = " ".join(process.info.get("cmdline") or [])
            if any(marker in command for marker in ENDPOINT_MARKERS) and str(self.host.home) in command:
                with contextlib.suppress(psutil.Error):
                    running[process.pid] = _cpu(process)
        jobs = 0.0
        for job in (self.host.home / "jobs").glob("*/job.json"):
            with contextlib.suppress(OSError, ValueError):
                jobs += float(json.loads(job.read_text()).get("cpu_s") or 0.0)
        return running, jobs

    def used(self, before: Snapshot, after: Snapshot) -> tuple[float, float]:
        """(all the pipeline's CPU seconds, devhost's) between two snapshots."""
        running = sum(cpu - before[0].get(pid, 0.0) for pid, cpu in after[0].items())
        devhost = self.host.process.pid
        return running + after[1] - before[1], after[0].get(devhost, 0.0) - before[0].get(devhost, 0.0)


#: (CPU seconds of each running process by pid, the ended training jobs' CPU seconds)
Snapshot = tuple[dict[int, float], float]


class Host:
    def __init__(self, root: Path, values: dict[str, str], port: int, process: subprocess.Popen[bytes]) -> None:
        self.root, self.values, self.port, self.process = root, values, port, process
        self.home = Path(values["MLOPS_HOME"])
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"x-functions-key": KEY}, timeout=60)

    def run(self, instance_id: str) -> dict[str, Any] | None:
        answer = self.http.get(f"/api/runs/{instance_id}")
        return answer.json() if answer.status_code == 200 else None

    def rss_mb(self) -> float:
        try:
            return psutil.Process(self.process.pid).memory_info().rss / 2**20
        except psutil.Error:
            return 0.0


class PeakMemory:
    """Samples devhost's RSS every 0.2 s while a phase runs."""

    def __init__(self, host: Host) -> None:
        self.host, self.peak = host, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.host.rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self.host.rss_mb())


def endpoint_memory(home: Path) -> tuple[float, int]:
    """(MB, processes) of the local endpoint servers and supervisors of ``home``."""
    total, count = 0.0, 0
    for process in psutil.process_iter(["cmdline", "memory_info"]):
        command = " ".join(process.info.get("cmdline") or [])
        mine = any(marker in command for marker in ENDPOINT_MARKERS) and str(home) in command
        if mine and process.info.get("memory_info"):
            total += process.info["memory_info"].rss / 2**20
            count += 1
    return total, count


def write_models(models: Path, names: list[str]) -> None:
    for name in names:
        shutil.copytree(TEMPLATE, models / name)


def drop_bytes(rows: int, seed: int) -> bytes:
    return breast_cancer_frame().sample(n=rows, random_state=seed).to_csv(index=False).encode()


def phase(host: Host, meter: CpuMeter, name: str, models: list[str], *, drops: int, rows: int, seed: int) -> Phase:
    """Upload every model's drops at once; wait until every retrain finished and every production serves."""
    payloads = [
        (model, f"{model}/drop-{i:02d}.csv", drop_bytes(rows, seed + k * drops + i))
        for k, model in enumerate(models)
        for i in range(drops)
    ]
    before = _training_seconds(host)
    memory = PeakMemory(host)
    busy, cpu = machine_busy_s(), meter.snapshot()
    started = time.monotonic()
    ids: list[tuple[str, str]] = []
    lock = threading.Lock()

    def send(item: tuple[str, str, bytes]) -> None:
        model, blob, data = item
        etag = upload(host.values["AzureWebJobsStorage"], "incoming", blob, data)
        with lock:
            ids.append((model, retrain_id_for_blob(blob, canonical_etag(etag))))

    senders = [threading.Thread(target=send, args=(item,)) for item in payloads]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    runs = [_finished(host, instance_id) for _, instance_id in ids]
    registered = sum(1 for run in runs if run["outcome"] == "registered")
    for model in models:
        _wait_serving(host, model)
    wall = time.monotonic() - started
    busy, (cpu_s, orchestration_s) = machine_busy_s() - busy, meter.used(cpu, meter.snapshot())
    peak = memory.stop()
    serving = len(models)  # every model's production answered with its champion (``_wait_serving``)
    endpoints_mb, processes = endpoint_memory(host.home)
    return Phase(
        name,
        len(models),
        drops,
        wall,
        _training_seconds(host) - before,
        registered,
        serving,
        peak,
        endpoints_mb,
        processes,
        cpu_s,
        busy,
        orchestration_s,
    )


def _finished(host: Host, instance_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = host.run(instance_id)
        if found and found["status"] in ("Completed", "Failed", "Terminated"):
            return found
        time.sleep(0.5)
    raise RuntimeError(f"{instance_id} did not finish within {DEADLINE_S:.0f} s")


def _wait_serving(host: Host, model: str) -> None:
    """Until the model has a champion (its release finished) and its production endpoint serves that version."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        listed: list[dict[str, Any]] = host.http.get("/api/models").json()
        summary = next((m for m in listed if m["name"] == model), {})
        if summary.get("champion") and _serves(host, model, str(summary["champion"])):
            return
        time.sleep(0.5)
    raise RuntimeError(f"{model}'s production never served its champion")


def _serves(host: Host, model: str, version: str) -> bool:
    try:
        entry = json.loads((host.home / "endpoints.json").read_text())[f"{model}-production"]
        rows = breast_cancer_frame().drop(columns="target").head(1).to_numpy().tolist()
        answer = httpx.post(
            f"{entry['url']}/score", json={"data": rows}, headers={"Authorization": f"Bearer {entry['key']}"}
        )
    except (OSError, KeyError, ValueError, httpx.HTTPError):
        return False
    return answer.status_code == 200 and str(answer.json().get("model_version")) == version


def _training_seconds(host: Host) -> float:
    """The training jobs' processes' run time, summed (``jobs/<job>/job.json``: ``started`` → ``ended``)."""
    total = 0.0
    for job in (host.home / "jobs").glob("*/job.json"):
        spec = json.loads(job.read_text())
        if spec.get("started") and spec.get("ended"):
            total += max(0.0, _epoch(str(spec["ended"])) - _epoch(str(spec["started"])))
    return total


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def start_host(workdir: Path, names: list[str]) -> tuple[Host, Any]:
    azurite = start_azurite()
    root = copy_app(workdir / "app")
    write_models(root / "models", names)
    port = free_port()
    values = {**app_values(azurite.connection_string, root / ".mlops", port), "DURABLE_TASK_HUB": "PlatformBench"}
    (root / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    log = (root / "devhost.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--script-root", str(root), "--port", str(port)],
        cwd=root,
        env=child_env(root, values),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    host = Host(root, values, port, process)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"devhost exited with {process.returncode}: see {root / 'devhost.log'}")
        try:
            if host.http.get("/api/models").status_code == 200:
                return host, azurite
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("devhost did not answer within 120 s")


def table(base: Phase, platform: Phase) -> tuple[str, dict[str, float]]:
    lines = [
        "| phase | models x drops | wall s | own CPU s | of it devhost (orchestration) | CPU floor s "
        "| wall / CPU floor "
        "| machine busy CPU s "
        "| training jobs s (summed) | registered | models serving their champion | devhost peak MB "
        "| local endpoints MB (processes) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in (base, platform):
        lines.append(
            f"| {p.name} | {p.models} x {p.drops} | {p.wall_s:.1f} | {p.cpu_s:.0f} | "
            f"{p.orchestration_cpu_s:.0f} ({p.orchestration_cpu_s / max(p.cpu_s, 1e-9):.0%}) | {p.cpu_floor_s:.1f} | "
            f"{p.wall_s / max(p.cpu_floor_s, 1e-9):.2f} | {p.machine_busy_s:.0f} | {p.training_s:.1f} | "
            f"{p.registered} | {p.serving} | "
            f"{p.devhost_peak_mb:.0f} | {p.endpoints_mb:.0f} ({p.endpoint_processes}) |"
        )
    per_model = (platform.endpoints_mb - base.endpoints_mb) / max(1, platform.models)
    goals = {
        "platform wall time / baseline wall time (<= 3)": platform.wall_s / base.wall_s,
        f"platform CPU work / baseline CPU work (the floor of the ratio above on {CORES} cores)": platform.cpu_s
        / max(base.cpu_s, 1e-9),
        "local endpoint memory per extra model, MB (< 50)": per_model,
        "devhost peak memory, platform / baseline": platform.devhost_peak_mb / max(1.0, base.devhost_peak_mb),
    }
    lines += ["", *(f"- {name}: {value:.2f}" for name, value in goals.items())]
    return "\n".join(lines), goals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--drops", type=int, default=10)
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args()
    if not (1 <= args.models <= 50 and 1 <= args.drops <= 50 and 40 <= args.rows <= 569):
        print("--models and --drops from 1 to 50, --rows from 40 to 569", file=sys.stderr)
        return 2
    names = [f"bench-{i:02d}" for i in range(args.models + 1)]
    workdir = Path(tempfile.mkdtemp(prefix="platform-bench-"))
    host, azurite = start_host(workdir, names)
    try:
        meter = CpuMeter(host, azurite.process.pid)
        base = phase(host, meter, "baseline: one model", names[:1], drops=args.drops, rows=args.rows, seed=0)
        print(f"baseline: {base.wall_s:.1f} s", flush=True)
        many = f"platform: {args.models} models at once"
        platform = phase(host, meter, many, names[1:], drops=args.drops, rows=args.rows, seed=1000)
        print(f"platform: {platform.wall_s:.1f} s", flush=True)
    finally:
        host.http.close()
        host.process.terminate()
        host.process.wait(timeout=60)
        from backends.local.endpoints import stop_all

        stop_all(host.home)
        azurite.stop()
    text, goals = table(base, platform)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out = RESULTS / f"platform_bench-{stamp}.json"
    document = {
        "benchmark": "platform",
        "args": vars(args),
        "cores": CORES,
        "load_average_after": os.getloadavg(),  # other work on the machine shows in the CPU busy figures
        "phases": [asdict(base), asdict(platform)],
    }
    out.write_text(json.dumps({**document, "goals": goals}, indent=2))
    (RESULTS / "platform_bench.md").write_text(text + "\n")
    print(f"saved {out}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
