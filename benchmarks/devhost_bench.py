"""devhost benchmark: a chain of N no-op activities, timed from the start POST until the status reads Completed.

Usage: .venv/bin/python benchmarks/devhost_bench.py [--sizes 10 50 100] [--runs 2]
Prints a table, compares with the prototype (durable-host-spec.md section 7) and writes benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "fixtures" / "apps" / "bench_app"
KEY = "bench-key"
# prototype figures (spec section 7): N -> (run 1 s, run 2 s)
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="devhost-bench-"))
    shutil.copytree(APP, work / "app")
    port = _free_port()
    env = {**os.environ, "DEVHOST_MASTER_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-m", "devhost", "start", "--script-root", str(work / "app"),
                             "--port", str(port), "--log-level", "WARNING"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        _wait_port(port, proc)
        base = f"http://127.0.0.1:{port}"
        run_chain(base, 3)  # warm-up
        for n in args.sizes:
            times = [run_chain(base, n) for _ in range(args.runs)]
            best = min(times)
            proto = min(PROTOTYPE[n]) if n in PROTOTYPE else None
            rows.append({"n": n, "runs_s": [round(t, 4) for t in times], "best_s": round(best, 4),
                         "ms_per_activity": round(best * 1000 / n, 2), "prototype_best_s": proto,
                         "ratio_vs_prototype": round(best / proto, 2) if proto else None})
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'N':>5} {'runs (s)':>22} {'best s':>8} {'ms/act':>8} {'proto s':>8} {'ratio':>6}")
    for r in rows:
        runs = " / ".join(f"{t:.3f}" for t in r["runs_s"])
        print(f"{r['n']:>5} {runs:>22} {r['best_s']:>8.3f} {r['ms_per_activity']:>8.2f} "
              f"{r['prototype_best_s'] or float('nan'):>8.3f} {r['ratio_vs_prototype'] or float('nan'):>6.2f}")
    out = ROOT / "benchmarks" / "results" / f"devhost_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "devhost noop chain", "python": sys.version.split()[0],
                               "cpus": os.cpu_count(), "rows": rows}, indent=2))
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
