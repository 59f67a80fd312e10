"""devhost benchmark: chains, a 1,000-activity fan-out, 100 orchestrations at once, and the SDK's own replay cost.

Usage: .venv/bin/python benchmarks/devhost_bench.py [--sizes 10 50 100] [--runs 2] [--fanout 1000] [--many 100]
- chain of N no-op activities, start POST → status Completed (against the first prototype, ``PROTOTYPE``);
- fan-out/fan-in (``task_all``) of ``--fanout`` activities;
- ``--many`` chains of 10 started at once;
- entity operations per second: ``--entity-ops`` signals to one entity (management API), until its state has them;
- queue-triggered throughput: ``--messages`` queue messages (Azurite's queue service) until every function ran;
- the SDK's replay cost alone: one orchestrator invocation over a history of k completed activities, without
  devhost (so the chain's time splits into the SDK's replay and devhost's own overhead).
Prints tables and writes benchmarks/results/devhost_bench-*.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "fixtures" / "apps" / "bench_app"
KEY = "bench-key"
#: devhost's own cost per activity (total minus the SDK's replay), the goal the durable host was built to
OVERHEAD_GOAL_MS = 3.0
#: the first prototype of the durable host: N activities -> (run 1 s, run 2 s)
PROTOTYPE = {10: (0.057, 0.057), 25: (0.23, 0.17), 50: (0.73, 0.50), 100: (2.14, 1.54), 200: (7.6, 6.3)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(method: str, url: str, body: object = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("devhost exited during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("devhost did not start")


def run_chain(base: str, n: int) -> float:
    wh = f"{base}/runtime/webhooks/durabletask"
    started = time.perf_counter()
    _, doc = _call("POST", f"{wh}/orchestrators/noop_chain?code={KEY}", json.dumps(n))
    iid = doc["id"]  # type: ignore[index]
    while True:
        _, status = _call("GET", f"{wh}/instances/{iid}?code={KEY}")
        if status["runtimeStatus"] in ("Completed", "Failed"):  # type: ignore[index]
            elapsed = time.perf_counter() - started
            if status["runtimeStatus"] != "Completed" or status["output"] != n:  # type: ignore[index]
                raise RuntimeError(f"chain {n} did not complete correctly: {status}")
            return elapsed
        time.sleep(0.005)


def _wait_done(base: str, iid: str) -> dict[str, object]:
    wh = f"{base}/runtime/webhooks/durabletask"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        _, status = _call("GET", f"{wh}/instances/{iid}?code={KEY}")
        if status["runtimeStatus"] in ("Completed", "Failed"):  # type: ignore[index]
            return status  # type: ignore[return-value]
        time.sleep(0.01)
    raise RuntimeError(f"{iid} did not finish within 300 s")


def run_fanout(base: str, n: int) -> float:
    started = time.perf_counter()
    _, doc = _call("POST", f"{base}/runtime/webhooks/durabletask/orchestrators/noop_fanout?code={KEY}", json.dumps(n))
    status = _wait_done(base, doc["id"])  # type: ignore[index]
    if status["output"] != n * (n - 1) // 2:
        raise RuntimeError(f"fan-out {n} gave {status['output']}")
    return time.perf_counter() - started


def run_many(base: str, count: int, length: int = 10) -> float:
    started = time.perf_counter()
    url = f"{base}/runtime/webhooks/durabletask/orchestrators/noop_chain?code={KEY}"
    ids = [_call("POST", url, json.dumps(length))[1]["id"] for _ in range(count)]  # type: ignore[index]
    for iid in ids:
        if _wait_done(base, iid)["output"] != length:
            raise RuntimeError(f"{iid} did not complete correctly")
    return time.perf_counter() - started


def run_entity_ops(base: str, count: int) -> float:
    """``count`` signals (one HTTP call each) to one entity, timed until the entity's state holds them all."""
    wh = f"{base}/runtime/webhooks/durabletask/entities/tally/bench"
    started = time.perf_counter()
    for _ in range(count):
        req = urllib.request.Request(
            f"{wh}?op=add&code={KEY}", data=b"1", method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60):
            pass
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if _call("GET", f"{wh}?code={KEY}")[1] == count:
                return time.perf_counter() - started
        except urllib.error.HTTPError:
            pass
        time.sleep(0.005)
    raise RuntimeError("the entity did not reach its count")


def run_queue(connection: str, counts: Path, count: int) -> float:
    """``count`` messages sent at once, timed until the queue-triggered function ran for each."""
    import base64

    from azure.storage.queue import QueueServiceClient

    with QueueServiceClient.from_connection_string(connection) as svc:
        queue = svc.get_queue_client("bench-q")
        bodies = [base64.b64encode(str(i).encode()).decode() for i in range(count)]
        started = time.perf_counter()
        for body in bodies:
            queue.send_message(body)
    path = counts / "queue"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return time.perf_counter() - started
        time.sleep(0.01)
    raise RuntimeError("the queue trigger did not process every message")


def start_azurite(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    ports = [_free_port() for _ in range(3)]
    proc = subprocess.Popen(
        [
            str(ROOT / "node_modules" / ".bin" / "azurite"),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(ports[0]),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(ports[1]),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(ports[2]),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
            "--loose",
        ],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    account = "devstoreaccount1"
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    for port in ports:
        _wait_port(port, proc)
    return proc, (
        f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{ports[0]}/{account};"
        f"QueueEndpoint=http://127.0.0.1:{ports[1]}/{account};"
        f"TableEndpoint=http://127.0.0.1:{ports[2]}/{account};"
    )


def sdk_replay_ms(k: int, repeats: int = 5) -> float:
    """One SDK invocation of the chain orchestrator over a history of k completed activities (no devhost)."""
    import azure.durable_functions as df

    sys.path.insert(0, str(ROOT))
    from devhost import history as h
    from devhost.replay import call_orchestrator  # the same call the host drives the SDK with

    def chain(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
        n = int(context.get_input())
        for i in range(n):
            yield context.call_activity("noop", i)
        return n

    handle = df.Orchestrator.create(chain)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    events = [h.event(h.ORCHESTRATOR_STARTED, at), h.execution_started(at, "i", "e", "chain", json.dumps(str(k + 1)))]
    for i in range(k):
        events += [
            h.event(h.TASK_SCHEDULED, at, i, Name="noop", Input=str(i)),
            h.event(h.ORCHESTRATOR_COMPLETED, at),
            h.event(h.ORCHESTRATOR_STARTED, at),
            h.event(h.TASK_COMPLETED, at, TaskScheduledId=i, Result=str(i)),
        ]
    history = [{**e, "IsPlayed": e["EventType"] != h.ORCHESTRATOR_STARTED} for e in events]
    context = json.dumps(
        {
            "history": history,
            "input": json.dumps(str(k + 1)),
            "instanceId": "i",
            "parentInstanceId": None,
            "isReplaying": True,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
        }
    )
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        state = call_orchestrator(handle, context)
        best = min(best, time.perf_counter() - started)
        if state.get("error"):
            raise RuntimeError(state["error"])
    return best * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--many", type=int, default=100)
    parser.add_argument("--entity-ops", type=int, default=500)
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    extra: dict[str, object] = {}
    work = Path(tempfile.mkdtemp(prefix="devhost-bench-"))
    shutil.copytree(APP, work / "app")
    (work / "counts").mkdir()
    azurite, connection = start_azurite(work)
    port = _free_port()
    env = {
        **os.environ,
        "DEVHOST_MASTER_KEY": KEY,
        "AzureWebJobsStorage": connection,
        "COUNT_DIR": str(work / "counts"),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devhost",
            "start",
            "--script-root",
            str(work / "app"),
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows: list[dict[str, Any]] = []
    try:
        _wait_port(port, proc)
        base = f"http://127.0.0.1:{port}"
        run_chain(base, 3)  # warm-up
        for n in args.sizes:
            times = [run_chain(base, n) for _ in range(args.runs)]
            best = min(times)
            proto = min(PROTOTYPE[n]) if n in PROTOTYPE else None
            rows.append(
                {
                    "n": n,
                    "runs_s": [round(t, 4) for t in times],
                    "best_s": round(best, 4),
                    "ms_per_activity": round(best * 1000 / n, 2),
                    "prototype_best_s": proto,
                    "ratio_vs_prototype": round(best / proto, 2) if proto else None,
                }
            )
        extra["fanout"] = {"n": args.fanout, "seconds": round(run_fanout(base, args.fanout), 3)}
        extra["many"] = {"orchestrations": args.many, "chain": 10, "seconds": round(run_many(base, args.many), 3)}
        seconds = run_entity_ops(base, args.entity_ops)
        extra["entity"] = {
            "operations": args.entity_ops,
            "seconds": round(seconds, 3),
            "ops_per_second": round(args.entity_ops / seconds, 1),
        }
        seconds = run_queue(connection, work / "counts", args.messages)
        extra["queue"] = {
            "messages": args.messages,
            "seconds": round(seconds, 3),
            "messages_per_second": round(args.messages / seconds, 1),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        azurite.terminate()
        azurite.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)
    replay = report(rows, extra, args)
    out = ROOT / "benchmarks" / "results" / f"devhost_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "devhost noop chain",
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "rows": rows,
                "sdk_replay_ms": replay,
                **extra,
            },
            indent=2,
        )
    )
    print(f"saved {out}")
    return 0


def report(rows: list[dict[str, Any]], extra: dict[str, Any], args: argparse.Namespace) -> dict[int, float]:
    """Print the tables (and add the SDK/devhost split to ``rows``); returns the SDK replay figures."""
    print(f"{'N':>5} {'runs (s)':>22} {'best s':>8} {'ms/act':>8} {'proto s':>8} {'ratio':>6}")
    for r in rows:
        runs = " / ".join(f"{t:.3f}" for t in r["runs_s"])
        print(
            f"{r['n']:>5} {runs:>22} {r['best_s']:>8.3f} {r['ms_per_activity']:>8.2f} "
            f"{r['prototype_best_s'] or float('nan'):>8.3f} {r['ratio_vs_prototype'] or float('nan'):>6.2f}"
        )
    replay = {k: round(sdk_replay_ms(k), 3) for k in (25, 50, 100, 200, 400)}
    for r in rows:
        n, best_s = int(r["n"]), float(r["best_s"])
        sdk_total_ms = sum(_interpolate(replay, k) for k in range(n + 1))
        r["sdk_replay_ms"] = round(sdk_total_ms, 1)
        r["devhost_overhead_ms_per_activity"] = round((best_s * 1000 - sdk_total_ms) / n, 2)
    print("\nSDK replay alone (one invocation over k completed activities):")
    for k, ms in replay.items():
        print(f"  k={k:>4}: {ms:8.2f} ms  ({ms * 1000 / (4 * k + 2):.0f} µs per history event)")
    print("\nchain time split: SDK replay (sum over its episodes) vs devhost's own overhead per activity:")
    for r in rows:
        overhead = r["devhost_overhead_ms_per_activity"]
        print(f"  N={r['n']:>4}: SDK {r['sdk_replay_ms']:8.1f} ms, devhost {overhead:6.2f} ms/activity")
    print(f"\nfan-out/fan-in of {args.fanout}: {extra['fanout']['seconds']} s")
    print(f"{args.many} chains of 10 started at once: {extra['many']['seconds']} s")
    print(
        f"entity: {args.entity_ops} signals in {extra['entity']['seconds']} s "
        f"({extra['entity']['ops_per_second']} operations/s, one HTTP call each)"
    )
    print(
        f"queue trigger: {args.messages} messages in {extra['queue']['seconds']} s "
        f"({extra['queue']['messages_per_second']} messages/s)"
    )
    worst = max(float(r["devhost_overhead_ms_per_activity"]) for r in rows)
    extra["overhead_goal_ms_per_activity"] = OVERHEAD_GOAL_MS
    extra["overhead_within_goal"] = worst <= OVERHEAD_GOAL_MS
    print(
        f"devhost overhead per activity: worst {worst:.2f} ms (goal <= {OVERHEAD_GOAL_MS} ms): "
        f"{'within' if worst <= OVERHEAD_GOAL_MS else 'OVER'} the goal"
    )
    return replay


def _interpolate(points: dict[int, float], k: int) -> float:
    """Replay cost at k from the measured points (linear between them, and through 0 below the first)."""
    keys = sorted(points)
    if k <= keys[0]:
        return points[keys[0]] * k / keys[0]
    for low, high in itertools.pairwise(keys):
        if k <= high:
            return points[low] + (points[high] - points[low]) * (k - low) / (high - low)
    return points[keys[-1]] * k / keys[-1]


if __name__ == "__main__":
    sys.exit(main())
