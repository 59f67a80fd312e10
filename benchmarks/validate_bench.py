"""Validation throughput and peak memory on generated drops of 1 M and 10 M rows, CSV and Parquet.

Usage: .venv/bin/python benchmarks/validate_bench.py [--rows 1000000 10000000] [--runs 1]
Compared in the same run, each in its own subprocess (so peak RSS is its own), ``--runs`` times interleaved in a
rotating order (so a noisy neighbour slows every method alike; the median time and the highest peak RSS are
reported). The timer covers the call on the file; each method's imports and set-up (our reference table, the
pandera schema) come before it:
- floor: pyarrow only reading the same file (no checks);
- ours: ``ml.validation.validate_path`` (streams in blocks; every rule of the contract + drift on a sample);
- pandas + pandera: ``pd.read_csv``/``read_parquet`` and a pandera schema with the same checks.
Goals: ours within 2x of the floor, at least 3x faster than pandas + pandera, 10 M-row CSV under ~2 GB RSS.
Prints a table and writes benchmarks/results/validate_bench-*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.sample import diabetes_frame  # noqa: E402
from ml.schema import ACTIVE_SCHEMA  # noqa: E402

METHODS = ("floor", "ours", "pandera")


def generate(rows: int, folder: Path) -> dict[str, Path]:
    """Plausible rows: the sample resampled with small noise, kept inside the contract's ranges."""
    base = diabetes_frame()
    rng = np.random.default_rng(rows)
    picked = base.to_numpy()[rng.integers(0, len(base), rows)]
    noise = rng.normal(0, 0.01, picked.shape) * picked.std(axis=0)
    data = picked + noise
    for i, column in enumerate((*ACTIVE_SCHEMA.features, ACTIVE_SCHEMA.label)):
        data[:, i] = np.clip(data[:, i], column.low, column.high)
        if column.integer:
            data[:, i] = np.round(data[:, i])
    table = pa.Table.from_pandas(pd.DataFrame(data, columns=ACTIVE_SCHEMA.columns), preserve_index=False)
    paths = {"csv": folder / f"drop-{rows}.csv", "parquet": folder / f"drop-{rows}.parquet"}
    pacsv.write_csv(table, paths["csv"])
    pq.write_table(table, paths["parquet"])
    return paths


def prepare_floor() -> Callable[[Path], int]:
    def run(path: Path) -> int:
        table = pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path)
        return int(table.num_rows)

    return run


def prepare_ours() -> Callable[[Path], int]:
    from ml.validation import validate_path

    reference = diabetes_frame()

    def run(path: Path) -> int:
        report = validate_path(path, reference=reference)
        if not report.ok:
            raise RuntimeError(report.summary())
        return report.rows

    return run


def prepare_pandera() -> Callable[[Path], int]:
    import pandera.pandas as pa_schema

    checks = {}
    for column in (*ACTIVE_SCHEMA.features, ACTIVE_SCHEMA.label):
        rules = [pa_schema.Check.in_range(column.low, column.high)]
        if column.integer:
            rules.append(pa_schema.Check(lambda s: s == s.round(), element_wise=False))
        checks[column.name] = pa_schema.Column(float, rules, nullable=False, coerce=True)
    schema = pa_schema.DataFrameSchema(checks, strict=True, unique=ACTIVE_SCHEMA.columns, report_duplicates="all")

    def run(path: Path) -> int:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        schema.validate(frame, lazy=True)
        return len(frame)

    return run


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM; ``ru_maxrss`` would include the parent's peak inherited over fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(method: str, path: Path) -> dict[str, float]:
    """Run one method in a fresh interpreter; its wall time and peak RSS."""
    code = (
        f"import sys, time, json; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); "
        f"import validate_bench as b; run = b.prepare_{method}(); t = time.perf_counter(); "
        f"n = run(b.Path({str(path)!r})); "
        "print(json.dumps({'seconds': time.perf_counter() - t, 'rows': n, 'rss_mb': b.peak_rss_mb()}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{method} on {path.name} failed: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def timings(path: Path, runs: int) -> dict[str, dict[str, float]]:
    """Every method ``runs`` times, interleaved in an order that rotates each round: the median seconds and the
    highest peak RSS of each. (On a VM that backs memory lazily, a process that starts right after one that freed a
    lot of memory gets its pages faster; rotating gives every method every place.)"""
    got: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    for round_ in range(runs):
        for method in METHODS[round_ % len(METHODS) :] + METHODS[: round_ % len(METHODS)]:
            got[method].append(measure(method, path))
    return {
        m: {"seconds": statistics.median(r["seconds"] for r in rs), "rss_mb": max(r["rss_mb"] for r in rs)}
        for m, rs in got.items()
    }


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| rows | format | method | seconds | M rows/s | peak RSS MB | vs floor | pandera / ours |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rows']:,} | {r['format']} | {r['method']} | {r['seconds']:.2f} | "
            f"{r['mrows_per_s']:.2f} | {r['rss_mb']:.0f} | {r['vs_floor']:.2f}x | "
            f"{r.get('pandera_over_ours', '')} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=1, help="runs of each method; the median time is reported")
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="validate-bench-") as tmp:
        for count in args.rows:
            paths = generate(count, Path(tmp))
            for fmt, path in paths.items():
                timing = timings(path, args.runs)
                floor, ours = timing["floor"]["seconds"], timing["ours"]["seconds"]
                for method, got in timing.items():
                    row: dict[str, object] = {
                        "rows": count,
                        "format": fmt,
                        "method": method,
                        "seconds": got["seconds"],
                        "mrows_per_s": count / got["seconds"] / 1e6,
                        "rss_mb": got["rss_mb"],
                        "vs_floor": got["seconds"] / floor,
                        "file_mb": round(path.stat().st_size / 2**20, 1),
                        "runs": args.runs,
                    }
                    if method == "ours":
                        row["pandera_over_ours"] = f"{timing['pandera']['seconds'] / ours:.1f}x"
                    results.append(row)
                    print(
                        f"{count:>11,} {fmt:<8} {method:<8} {got['seconds']:7.2f} s  {got['rss_mb']:7.0f} MB",
                        flush=True,
                    )
    print()
    print(table(results))
    out = ROOT / "benchmarks" / "results" / f"validate_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"benchmark": "validation", "cpus": os.cpu_count(), "results": results}, indent=2))
    note = f"\nMedian of {args.runs} run(s) per method, interleaved; {os.cpu_count()} CPUs.\n"
    (out.parent / "validate_bench.md").write_text(table(results) + "\n" + note)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
