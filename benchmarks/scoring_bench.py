"""Scoring servers compared in one run, same machine, same load generator (wrk on 127.0.0.1, bounded in time).

Usage: .venv/bin/python benchmarks/scoring_bench.py [--seconds 3] [--runs 2]
Needs `wrk` (Debian package) and, for peer (b), a separate venv benchmarks/.venv-azml with
azureml-inference-server-http 1.5.1 (it pins OpenTelemetry versions that clash with the app's):
  python3 -m venv benchmarks/.venv-azml && benchmarks/.venv-azml/bin/pip install azureml-inference-server-http==1.5.1 \
    mlflow==3.17.2 scikit-learn==1.9.1 pandas==3.1.1 numpy==2.4.6 orjson==3.13.0
Servers: (a) ours (scoring.server, prediction logging ON to an Azurite started here); (a2) ours with
``--workers 2`` on cores 0 and 1; (b) azmlinfsrv serving scoring/score.py; (c) `mlflow models serve --env-manager
local` (dataframe_split body: the model has a column signature); (d) the ceiling: our HTTP stack answering a
constant. Servers pinned to core 1 (a2: cores 0 and 1), wrk to core 0 when `taskset` exists: on a 2-core machine
the second worker shares its core with wrk (and Azurite), so (a2) / (a) is a lower bound of the scaling. Reports
req/s, p50/p99 at c=1 and c=32 for 1-row and 100-row bodies, cold start and RSS, the goals as ratios to the ceiling
of the same run, and audits our prediction log: after a graceful stop, the records in storage against the
requests each process says it answered.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from azure.storage.blob import BlobServiceClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml import models  # noqa: E402
from ml.sample import diabetes_frame  # noqa: E402
from tests.support.azurite import free_port, start_azurite  # noqa: E402

LUA = ROOT / "benchmarks" / "scoring" / "post.lua"
AZML_PY = ROOT / "benchmarks" / ".venv-azml" / "bin" / "python"
PIN = shutil.which("taskset") is not None
POINTS = [(1, 1), (32, 1), (1, 100), (32, 100)]  # (connections, rows per request)


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    body: str  # "data" | "dataframe_split"
    key: str = ""
    path: str = "/score"
    constant: bool = False  # the ceiling answers a constant: any 200 counts as its first answer
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    cold_start_s: float = 0.0
    log_container: str = ""  # ours: the prediction log is audited after a graceful stop
    tag: str = ""  # the report's key (default: the name's first word)
    cores: str = "1"  # where the server runs (taskset); wrk runs on core 0
    output: Path | None = None  # ours: the server's log, which ends with each process's answered/logged counts
    results: dict[str, Any] = field(default_factory=dict)


def bodies(folder: Path) -> dict[tuple[str, int], Path]:
    frame = diabetes_frame().drop(columns=["target"])
    out = {}
    for rows in (1, 100):
        data = frame.head(rows).to_numpy().tolist()
        for kind, doc in (
            ("data", {"data": data}),
            ("dataframe_split", {"dataframe_split": {"columns": list(frame.columns), "data": data}}),
        ):
            path = folder / f"{kind}-{rows}.json"
            path.write_text(json.dumps(doc))
            out[(kind, rows)] = path
    return out


def start(server: Server, body: Path, expected: float) -> None:
    """Spawn (pinned to ``server.cores``), then poll until the first correct 1-row answer: that is the cold start."""
    taskset = ["taskset", "-c", server.cores] if PIN else []
    output = server.output.open("wb") if server.output is not None else subprocess.DEVNULL
    started = time.perf_counter()
    server.process = subprocess.Popen(
        [*taskset, *server.command],
        cwd=ROOT,
        env={**os.environ, **server.env},
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    headers = {"Authorization": f"Bearer {server.key}"} if server.key else {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}")
        try:
            answer = httpx.post(
                f"http://127.0.0.1:{server.port}{server.path}",
                content=body.read_bytes(),
                headers={**headers, "Content-Type": "application/json"},
                timeout=2,
            )
            correct = server.constant or abs(_first(answer.json()) - expected) < 1e-6
            if answer.status_code == 200 and correct:
                server.cold_start_s = time.perf_counter() - started
                return
        except (httpx.TransportError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{server.name} gave no correct answer within 120 s")


def _first(doc: Any) -> float:
    predictions = doc["predictions"] if isinstance(doc, dict) else doc
    return float(predictions[0])


def load(server: Server, body: Path, connections: int, seconds: int) -> dict[str, float]:
    taskset = ["taskset", "-c", "0"] if PIN else []
    command = [
        *taskset,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{server.port}{server.path}",
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
        env={**os.environ, "BODY_FILE": str(body), "AUTH": server.key},
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("{"))
    raw = json.loads(line)
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": raw["errors"] + raw["non2xx"],
    }


def rss_mb(process: subprocess.Popen[bytes]) -> float:
    root = psutil.Process(process.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def stop(server: Server) -> None:
    """SIGTERM: ours to its main process only (a parent of workers stops them itself, each flushing its log);
    a peer's children first, as their launchers may not pass the signal on."""
    if server.process is not None and server.process.poll() is None:
        if server.output is None:
            for child in psutil.Process(server.process.pid).children(recursive=True):
                child.terminate()
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()


def servers(model: Path, state: Path, logs: str) -> list[Server]:
    py = sys.executable
    state.mkdir(parents=True, exist_ok=True)
    (state / "keys.json").write_text(json.dumps({"key": "bench", "admin_key": "bench-admin"}))
    ours = Server(
        "ours (logging on)",
        [
            py,
            "-m",
            "scoring.server",
            "--name",
            "bench",
            "--port",
            "{port}",
            "--state-dir",
            str(state),
            "--model-dir",
            str(model),
            "--version",
            "1",
        ],
        {"AzureWebJobsStorage": logs, "SCORING_LOGS_CONTAINER": "bench-logs"},
        "data",
        key="bench",
        log_container="bench-logs",
    )
    two = Server(
        "ours, 2 workers on 2 cores (logging on)",
        [*ours.command, "--workers", "2"],
        {**ours.env, "SCORING_LOGS_CONTAINER": "bench-logs-2"},
        "data",
        key="bench",
        log_container="bench-logs-2",
        tag="ours2",
        cores="0,1",
        output=state.parent / "ours2.log",
    )
    ours.output = state.parent / "ours.log"
    launcher = str(ROOT / "benchmarks" / "scoring" / "azml_local.py")
    azml = Server(
        "azureml-inference-server-http",
        [
            str(AZML_PY),
            launcher,
            "--entry_script",
            str(ROOT / "scoring" / "score.py"),
            "--model_dir",
            str(model),
            "--port",
            "{port}",
        ],
        {"AZUREML_MODEL_DIR": str(model), "PYTHONPATH": str(ROOT), "HOME": str(state.parent)},
        "data",
    )
    mlflow = Server(
        "mlflow models serve",
        [
            str(Path(py).parent / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model),
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            "{port}",
        ],
        {
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "PATH": f"{Path(py).parent}:{os.environ.get('PATH', '')}",
        },
        "dataframe_split",
        path="/invocations",
    )
    ceiling = Server(
        "ceiling (constant)",
        [
            py,
            "-m",
            "uvicorn",
            "benchmarks.scoring.constant:app",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        {"BENCH_KEY": "bench"},
        "data",
        key="bench",
        constant=True,
    )
    found = [ours, two, mlflow, ceiling]
    if AZML_PY.exists():
        found.insert(1, azml)
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="scoring-bench-"))
    frame = diabetes_frame()
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    x = frame.drop(columns=["target"])
    fitted = Pipeline([("scale", StandardScaler()), ("model", Ridge(alpha=1.0))]).fit(x, frame["target"])
    models.save(fitted, work / "model", x.head(5))
    expected = float(fitted.predict(x.head(1))[0])
    files = bodies(work)
    azurite = start_azurite()
    try:
        for server in servers(work / "model", work / "state", azurite.connection_string):
            measure_server(server, files, expected, args, azurite.connection_string)
            print_row(server)
            all_servers.append(server)
    finally:
        azurite.stop()
    report(all_servers, args)
    shutil.rmtree(work, ignore_errors=True)
    return 0


all_servers: list[Server] = []


def measure_server(
    server: Server, files: dict[tuple[str, int], Path], expected: float, args: argparse.Namespace, logs: str
) -> None:
    server.port = free_port()
    server.command = [c.replace("{port}", str(server.port)) for c in server.command]
    try:
        start(server, files[(server.body, 1)], expected)
        load(server, files[(server.body, 1)], 8, 1)  # warm-up
        for connections, rows in POINTS:
            runs = [load(server, files[(server.body, rows)], connections, args.seconds) for _ in range(args.runs)]
            server.results[f"c{connections}_r{rows}"] = {
                key: statistics.median(r[key] for r in runs) for key in ("rps", "p50_ms", "p99_ms", "errors")
            }
        assert server.process is not None
        server.results["rss_mb"] = rss_mb(server.process)
        if server.log_container:
            started = time.perf_counter()
            stop(server)
            server.results["log"] = {
                "served": served_requests(server),
                "stop_s": time.perf_counter() - started,
                "logged": logged_lines(server, logs),
                "graceful": server.process.returncode == 0,
            }
    finally:
        stop(server)


def served_requests(server: Server) -> int:
    """Answered /score requests (status 200), summed over the server's processes: after a graceful stop each one
    logs ``stopped: answered=N …`` as its last line (a worker's counters are its own)."""
    assert server.output is not None
    found = re.findall(rb"stopped: answered=(\d+) ", server.output.read_bytes())
    if not found:
        raise RuntimeError(f"{server.name} logged no counts at its stop: see {server.output}")
    return sum(int(n) for n in found)


def logged_lines(server: Server, connection_string: str) -> int:
    """Records in the prediction-log blobs: after a graceful stop, one per answered request."""
    box = BlobServiceClient.from_connection_string(connection_string).get_container_client(server.log_container)
    return sum(box.download_blob(blob.name).readall().count(b"\n") for blob in box.list_blobs())


def print_row(server: Server) -> None:
    r = server.results
    print(
        f"{server.name:<32} cold {server.cold_start_s:5.2f} s  c32/1row {r['c32_r1']['rps']:8.0f} req/s "
        f"p99 {r['c32_r1']['p99_ms']:6.2f} ms  errors {r['c32_r1']['errors']:.0f}",
        flush=True,
    )


def report(found: list[Server], args: argparse.Namespace) -> None:
    by = {s.tag or s.name.split(" ")[0]: s for s in found}
    ours = by["ours"].results["c32_r1"]["rps"]
    lines = [
        "| server | c=1 1-row req/s | c=1 p50/p99 ms | c=32 1-row req/s | c=32 p50/p99 ms | c=32 100-row req/s "
        "(rows/s) | c=32 100-row p99 ms | cold start s | RSS MB | ours / this (c=32 1-row) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in found:
        r = s.results
        a, b, c = r["c1_r1"], r["c32_r1"], r["c32_r100"]
        lines.append(
            f"| {s.name} | {a['rps']:,.0f} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | {b['rps']:,.0f} | "
            f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} | {c['rps']:,.0f} ({c['rps'] * 100:,.0f}) | "
            f"{c['p99_ms']:.2f} | {s.cold_start_s:.2f} | {r['rss_mb']:.0f} | {ours / b['rps']:.2f}x |"
        )
    table = "\n".join(lines)
    ceiling = by["ceiling"]
    mine, roof = by["ours"].results, ceiling.results
    goals = {
        "c=32 1-row, share of the ceiling's req/s (>= 0.85)": mine["c32_r1"]["rps"] / roof["c32_r1"]["rps"],
        "c=32 1-row, p99 over the ceiling's p99 (<= 2)": mine["c32_r1"]["p99_ms"] / roof["c32_r1"]["p99_ms"],
        "c=32 100-row, share of the ceiling's req/s (>= 0.5)": mine["c32_r100"]["rps"] / roof["c32_r100"]["rps"],
        "cold start over the ceiling's (<= 4)": by["ours"].cold_start_s / ceiling.cold_start_s,
        "2 workers on 2 cores over 1 worker on 1 core, c=32 1-row (>= 1.8)": by["ours2"].results["c32_r1"]["rps"]
        / mine["c32_r1"]["rps"]
        if "ours2" in by
        else None,
        "2 workers over 1 worker, c=32 100-row": by["ours2"].results["c32_r100"]["rps"] / mine["c32_r100"]["rps"]
        if "ours2" in by
        else None,
        "vs azml, c=32 1-row (>= 5)": ours / by["azureml-inference-server-http"].results["c32_r1"]["rps"]
        if "azureml-inference-server-http" in by
        else None,
        "vs mlflow, c=32 1-row (>= 2)": ours / by["mlflow"].results["c32_r1"]["rps"],
    }
    notes = [f"- {g}: {'n/a' if v is None else f'{v:.2f}'}" for g, v in goals.items()]
    for s in found:
        audit = s.results.get("log", {})
        if audit:
            notes.append(
                f"- prediction log of {s.name}: {audit['logged']:,} records in storage for {audit['served']:,} "
                f"answered requests after a graceful stop of {audit['stop_s']:.1f} s (exit code 0: {audit['graceful']})"
            )
    print()
    print(table)
    print()
    print("\n".join(notes))
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out = ROOT / "benchmarks" / "results" / f"scoring_bench-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "scoring",
                "pinned": PIN,
                "seconds": args.seconds,
                "runs": args.runs,
                "servers": {s.name: {"cold_start_s": s.cold_start_s, **s.results} for s in found},
                "goals": goals,
            },
            indent=2,
        )
    )
    (out.parent / "scoring_bench.md").write_text(table + "\n\n" + "\n".join(notes) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    sys.exit(main())
