"""Pipeline benchmark: from a data drop to production serving the model it trains, stage by stage.

Usage: .venv/bin/python benchmarks/pipeline_bench.py [--runs 3] [--poll-seconds S]

Azurite (in memory) and devhost serving a copy of the app on free ports, with the settings ``make run`` has (the
training job is polled every 0.5 s unless ``--poll-seconds`` says otherwise). Run 1 drops the diabetes sample on an
empty registry (cold: the QA and production servers start); every further run drops a recalibrated generation
(``ml.sample.synthetic``) that trains a better model, so it is registered and released too (warm servers,
blue/green beside the previous version).

Each run's time, upload → production answering with the new version (a client polls ``/score`` every 20 ms), splits
into what the work itself takes and what the orchestration adds:
- training: the job's process from start to exit (``job.json``);
- evaluation: the evaluate activity;
- deploys: the deploy activities (server start, model download and load);
- other activities: validate, accept, register, API tests, traffic, stage moves, release-slot claims;
- orchestration: the rest — blob detection, scheduling and replay, timer slack after the job ends, event delivery.
The goal: under 15 s, with the orchestration's own overhead under 10% of it.
Prints a table and writes benchmarks/results/pipeline_bench.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.storage import upload  # noqa: E402
from ml.sample import diabetes_frame, synthetic  # noqa: E402
from orchestrators.ids import release_id, retrain_id_for_blob  # noqa: E402
from tests.support.app import KEY, app_values, child_env, copy_app  # noqa: E402
from tests.support.azurite import free_port, start_azurite  # noqa: E402
from triggers.blobs import canonical_etag  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MODEL = "diabetes-ridge"
DEADLINE_S = 300.0
Interval = tuple[float, float]


@dataclass
class Breakdown:
    run: int
    kind: str
    total_s: float
    training_s: float
    evaluation_s: float
    deploys_s: float
    other_activities_s: float
    orchestration_s: float
    detection_s: float
    timer_slack_s: float
    event_delivery_s: float
    stages: dict[str, float] = field(default_factory=dict)
    activities: dict[str, float] = field(default_factory=dict)

    @property
    def orchestration_share(self) -> float:
        return self.orchestration_s / self.total_s


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC).timestamp()


class ProductionWatch:
    """Polls production's /score and records when it first answers with a version other than ``previous``."""

    def __init__(self, home: Path, previous: str | None) -> None:
        self.home, self.previous = home, previous
        self.version: str | None = None
        self.at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        rows = diabetes_frame().drop(columns="target").head(1).to_numpy().tolist()
        deadline = time.monotonic() + DEADLINE_S
        with httpx.Client(timeout=5) as http:
            while not self._stop.is_set() and time.monotonic() < deadline:
                answer = self._score(http, rows)
                if answer is not None and answer != self.previous:
                    self.version, self.at = answer, time.time()
                    return
                time.sleep(0.02)

    def _score(self, http: httpx.Client, rows: list[list[float]]) -> str | None:
        try:
            entry = json.loads((self.home / "endpoints.json").read_text())["production"]
            response = http.post(
                f"{entry['url']}/score", json={"data": rows}, headers={"Authorization": f"Bearer {entry['key']}"}
            )
        except (OSError, KeyError, ValueError, httpx.HTTPError):
            return None
        return str(response.json()["model_version"]) if response.status_code == 200 else None

    def wait(self) -> tuple[str, float]:
        self._thread.join(DEADLINE_S)
        self._stop.set()
        if self.version is None or self.at is None:
            raise RuntimeError("production never served a new version")
        return self.version, self.at


class Host:
    def __init__(self, root: Path, values: dict[str, str], port: int) -> None:
        self.root, self.values, self.port = root, values, port
        self.home = Path(values["MLOPS_HOME"])
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"x-functions-key": KEY}, timeout=30)

    def status(self, instance_id: str, history: bool = False) -> dict[str, Any] | None:
        response = self.http.get(
            f"/runtime/webhooks/durabletask/instances/{instance_id}", params={"showHistory": str(history).lower()}
        )
        return response.json() if response.status_code == 200 else None

    def finished(self, instance_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            found = self.status(instance_id)
            if found and found["runtimeStatus"] in ("Completed", "Failed", "Terminated"):
                return found
            time.sleep(0.2)
        raise RuntimeError(f"{instance_id} did not finish within {DEADLINE_S:.0f}s")


def history(host: Host, instance_id: str) -> tuple[float, list[tuple[str, Interval]]]:
    """When the instance started, and each activity's (name, (scheduled, completed))."""
    events = (host.status(instance_id, history=True) or {}).get("historyEvents", [])
    started = next(epoch(ev["Timestamp"]) for ev in events if ev.get("EventType") == "ExecutionStarted")
    done = [ev for ev in events if ev.get("EventType") in ("TaskCompleted", "TaskFailed") and ev.get("ScheduledTime")]
    return started, [(str(ev["FunctionName"]), (epoch(ev["ScheduledTime"]), epoch(ev["Timestamp"]))) for ev in done]


def training_interval(host: Host, retrain: dict[str, Any]) -> Interval:
    job_id = str(retrain["output"]["evaluation"]["job_id"])
    spec = json.loads((host.home / "jobs" / job_id / "job.json").read_text())
    return epoch(spec["started"]), epoch(spec["ended"])


def covered(intervals: list[Interval], start: float, end: float) -> float:
    """Seconds of [start, end] covered by the union of ``intervals``."""
    total, reach = 0.0, start
    for low, high in sorted((max(a, start), min(b, end)) for a, b in intervals):
        if high > reach:
            total += high - max(low, reach)
            reach = high
    return total


def one_run(host: Host, number: int, name: str, data: bytes, previous: str | None) -> Breakdown:
    watch = ProductionWatch(host.home, previous)
    started = time.time()
    etag = upload(host.values["AzureWebJobsStorage"], host.values["INCOMING_CONTAINER"], name, data)
    retrain = host.finished(retrain_id_for_blob(name, canonical_etag(etag)))
    if (retrain.get("output") or {}).get("outcome") != "registered":
        raise RuntimeError(f"run {number}: expected a registered model, got {json.dumps(retrain)[:800]}")
    version, served = watch.wait()
    release = host.finished(release_id(MODEL, version))
    retrain_started, retrain_acts = history(host, retrain["instanceId"])
    release_started, release_acts = history(host, release["instanceId"])
    activities = retrain_acts + release_acts
    training = training_interval(host, retrain)
    evaluation = [span for fn, span in activities if fn == "evaluate_challenger"]
    deploys = [span for fn, span in activities if fn == "deploy_model"]
    others = [span for fn, span in activities if fn not in ("evaluate_challenger", "deploy_model")]
    total = served - started
    work = [training, *evaluation, *deploys, *others]
    after_job = [span[0] for fn, span in retrain_acts if fn == "training_status" and span[0] >= training[1]]
    registered = max(span[1] for fn, span in retrain_acts if fn == "register_model")
    stages = {
        f"{kind}:{s['name']}": round(epoch(s["finished"]) - epoch(s["started"]), 3)
        for kind, run in (("retrain", retrain), ("release", release))
        for s in (run.get("customStatus") or {}).get("stages", [])
        if s.get("finished")
    }
    return Breakdown(
        number,
        "cold" if previous is None else "warm",
        total,
        covered([training], started, served),
        covered(evaluation, started, served),
        covered(deploys, started, served),
        covered(others, started, served) - _overlap(others, [training, *evaluation, *deploys], started, served),
        total - covered(work, started, served),
        retrain_started - started,
        min(after_job, default=training[1]) - training[1],
        release_started - registered,
        stages,
        _per_activity(activities),
    )


def _per_activity(activities: list[tuple[str, Interval]]) -> dict[str, float]:
    """Seconds per activity function, summed over its calls (scheduled → completed)."""
    sums: dict[str, float] = {}
    for name, (low, high) in activities:
        sums[name] = round(sums.get(name, 0.0) + high - low, 3)
    return dict(sorted(sums.items(), key=lambda kv: -kv[1]))


def _overlap(these: list[Interval], those: list[Interval], start: float, end: float) -> float:
    """Seconds of ``these`` already counted under ``those`` (concurrent spans are counted once)."""
    return covered(these, start, end) + covered(those, start, end) - covered([*these, *those], start, end)


def run_all(runs: int, poll_seconds: str, workdir: Path, keep_log: Path | None = None) -> list[Breakdown]:
    azurite = start_azurite()
    root = copy_app(workdir / "app")
    port = free_port()
    values = {
        **app_values(azurite.connection_string, root / ".mlops", port),
        "DURABLE_TASK_HUB": "PipelineBench",
        "TRAINING_POLL_SECONDS": poll_seconds,
    }
    (root / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    log = (root / "devhost.log").open("wb")
    devhost = subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--script-root", str(root), "--port", str(port)],
        cwd=root,
        env=child_env(root, values),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    host = Host(root, values, port)
    try:
        _wait_ready(host, devhost)
        drops = [("diabetes-sample.csv", diabetes_frame())]
        drops += [(f"generation-{i}.csv", synthetic(400 * 3**i, i, shift=100.0 * (i % 2))) for i in range(1, runs)]
        results, previous = [], None
        for number, (name, frame) in enumerate(drops, start=1):
            result = one_run(host, number, name, frame.to_csv(index=False).encode(), previous)
            previous = _serving(host)
            results.append(result)
            print(f"run {number} ({result.kind}): {result.total_s:.2f} s", flush=True)
        return results
    finally:
        host.http.close()
        devhost.terminate()
        devhost.wait(timeout=60)
        from backends.local.endpoints import stop_all

        stop_all(root / ".mlops")
        azurite.stop()
        log.close()
        if keep_log:
            keep_log.write_bytes((root / "devhost.log").read_bytes())


def _serving(host: Host) -> str:
    models = host.http.get(f"/api/models/{MODEL}/versions").json()
    return str(next(m["version"] for m in models if m["stage"] == "champion"))


def _wait_ready(host: Host, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"devhost exited with {process.returncode}: see {host.root / 'devhost.log'}")
        try:
            if host.http.get("/api/runs").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("devhost did not answer within 120 s")


def table(results: list[Breakdown]) -> str:
    lines = [
        "| run | kind | drop → production serving s | training s | evaluation s | deploys s | other activities s "
        "| orchestration s (share) | of which: blob detection / timer slack / event delivery s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.run} | {r.kind} | {r.total_s:.2f} | {r.training_s:.2f} | {r.evaluation_s:.2f} | "
            f"{r.deploys_s:.2f} | {r.other_activities_s:.2f} | {r.orchestration_s:.2f} "
            f"({r.orchestration_share:.1%}) | {r.detection_s:.2f} / {r.timer_slack_s:.2f} / "
            f"{r.event_delivery_s:.2f} |"
        )
    stages = sorted(
        {name for r in results for name in r.stages},
        key=lambda n: min(list(r.stages).index(n) for r in results if n in r.stages),
    )
    lines += ["", "| stage | " + " | ".join(f"run {r.run} s" for r in results) + " |", "|---|" + "---|" * len(results)]
    lines += [
        f"| {name} | " + " | ".join(f"{r.stages.get(name, float('nan')):.2f}" for r in results) + " |"
        for name in stages
    ]
    names = sorted(
        {n for r in results for n in r.activities}, key=lambda n: -max(r.activities.get(n, 0) for r in results)
    )
    lines += [
        "",
        "| activity (all calls) | " + " | ".join(f"run {r.run} s" for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    lines += [
        f"| {name} | " + " | ".join(f"{r.activities.get(name, 0.0):.3f}" for r in results) + " |" for name in names
    ]
    worst = max(results, key=lambda r: r.total_s)
    lines += [
        "",
        f"- drop → production serving < 15 s: worst {worst.total_s:.2f} s (run {worst.run}, {worst.kind})",
        f"- orchestration overhead < 10%: worst {max(r.orchestration_share for r in results):.1%}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--poll-seconds", default="", help="TRAINING_POLL_SECONDS (default: the app's)")
    parser.add_argument("--log", type=Path, default=None, help="keep devhost's log here")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        results = run_all(max(1, args.runs), args.poll_seconds, Path(tmp), args.log)
    text = table(results)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pipeline_bench.md").write_text(text + "\n")
    (RESULTS / "pipeline_bench.json").write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "poll_seconds": args.poll_seconds or "default",
                "runs": [{**asdict(r), "orchestration_share": r.orchestration_share} for r in results],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
