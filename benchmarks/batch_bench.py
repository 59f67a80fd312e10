"""Batch scoring against the plain loop, same run, same machine, same model and files.

Usage: .venv/bin/python benchmarks/batch_bench.py [--rows 1000000 10000000] [--e2e-rows 1000000] [--no-e2e]

For each size, a CSV of synthetic diabetes rows (features only) is scored into a CSV of predictions by:
  (a) plain: ``pandas.read_csv`` + ``model.predict`` + ``to_csv``, the whole file at once;
  (b) chunks: the activity's own code (``backends.local.batch.LocalBatchScoring``: plan, score every chunk on two
      threads as devhost's activity workers would, commit), in one process, over the file on local disk (a Storage
      stand-in serving range reads and blocks from files) — the scoring path without the host;
  (c) end to end (``--e2e-rows``): Azurite and devhost started here, a champion registered, the file uploaded to
      batch/<model>/in/, timed from the upload to the run's Completed (the blob trigger, the durable fan-out, the
      range downloads, the staged blocks and the commit), with devhost's peak RSS (process tree, sampled).
Each of (a) and (b) runs in a fresh process and reports its peak RSS (``ru_maxrss``). Goals, as ratios of the same
run: (b) rows/s at least 3x (a)'s; (b)'s peak memory the same (within 1.5x) at 1 M and 10 M rows.
Results: benchmarks/results/batch_bench-<UTC>.json and benchmarks/results/batch_bench.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backends.ports import BlobInfo, ModelVersion  # noqa: E402
from messages.batch import BatchInput  # noqa: E402
from ml import models  # noqa: E402
from ml.sample import diabetes_frame  # noqa: E402
from ml.schema import ACTIVE_SCHEMA  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
FEATURES = ACTIVE_SCHEMA.feature_names
MODEL = "diabetes-ridge"


def make_model(folder: Path) -> Path:
    frame = diabetes_frame()
    estimator = models.make_estimator(1.0).fit(frame[FEATURES], frame["target"])
    models.save(estimator, folder, frame[FEATURES], ACTIVE_SCHEMA)
    return folder


def make_file(path: Path, rows: int) -> int:
    """Rows drawn from the sample's ranges, written by pyarrow a million at a time."""
    rng = np.random.default_rng(rows)
    base = diabetes_frame()[FEATURES].to_numpy()
    with pacsv.CSVWriter(path, pa.schema([(c, pa.float64()) for c in FEATURES])) as writer:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            picked = base[rng.integers(0, len(base), n)]
            writer.write_table(pa.table({c: picked[:, i] for i, c in enumerate(FEATURES)}))
    return path.stat().st_size


# --- the measured paths, each in its own process ---------------------------------------------------------------


def plain(source: Path, model_dir: Path, out: Path) -> dict[str, Any]:
    import pandas as pd

    model = models.load(model_dir)
    frame = pd.read_csv(source)
    predictions = model.predict(frame[FEATURES])
    pd.DataFrame({"row": np.arange(len(frame)), "prediction": predictions, "model_version": "1"}).to_csv(
        out, index=False
    )
    return {"rows": len(frame)}


@dataclass
class FileStorage:
    """The Storage calls batch scoring makes, on local files: range reads, blocks as files, commit by copy."""

    root: Path

    def _path(self, container: str, name: str) -> Path:
        return self.root / container / name

    def info(self, container: str, name: str) -> BlobInfo:
        size = self._path(container, name).stat().st_size
        return BlobInfo(container, name, "e1", size, "")

    def read_range(self, container: str, name: str, offset: int, length: int, etag: str | None = None) -> bytes:
        with self._path(container, name).open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    def stage_block(self, container: str, name: str, block_id: str, data: bytes) -> None:
        part = self.root / "blocks" / block_id.replace("/", "_")
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(data)

    def commit_blocks(self, container: str, name: str, block_ids: list[str], **_: Any) -> BlobInfo:
        target = self._path(container, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            for block in block_ids:
                with (self.root / "blocks" / block.replace("/", "_")).open("rb") as part:
                    shutil.copyfileobj(part, out)
        return self.info(container, name)


@dataclass
class FolderRegistry:
    folder: Path

    def download(self, name: str, version: str, dest: Path) -> Path:
        shutil.copytree(self.folder, dest)
        return dest


def chunks(source: Path, model_dir: Path, chunk_mb: int, parallel: int) -> dict[str, Any]:
    from backends.local.batch import LocalBatchScoring

    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        root = Path(tmp)
        (root / "batch" / MODEL / "in").mkdir(parents=True)
        (root / "batch" / MODEL / "in" / "rows.csv").symlink_to(source)
        scoring = LocalBatchScoring(FileStorage(root), FolderRegistry(model_dir))  # type: ignore[arg-type]
        run = BatchInput("batch", MODEL, f"{MODEL}/in/rows.csv", "e1", chunk_bytes=chunk_mb << 20, parallel=parallel)
        plan = scoring.plan(run, ModelVersion(MODEL, "1", "champion"), ACTIVE_SCHEMA)
        assert plan.problem is None, plan.problem
        with ThreadPoolExecutor(parallel) as pool:
            results = list(pool.map(lambda c: scoring.score_chunk(run, plan, c, ACTIVE_SCHEMA), plan.chunks))
        done = scoring.finish(run, plan, results)
    return {"rows": done.scored, "chunks": len(plan.chunks)}


def child(argv: list[str]) -> None:
    mode, source, model_dir = argv[0], Path(argv[1]), Path(argv[2])
    started = time.perf_counter()
    if mode == "plain":
        with tempfile.TemporaryDirectory() as tmp:
            found = plain(source, model_dir, Path(tmp) / "out.csv")
    else:
        found = chunks(source, model_dir, int(argv[3]), int(argv[4]))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**found, "seconds": seconds, "peak_mb": peak}))


def measure(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True, cwd=ROOT
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- end to end on devhost ----------------------------------------------------------------------------------


def end_to_end(source: Path, model_dir: Path, rows: int) -> dict[str, Any]:
    import psutil

    from backends.local.registry import MlflowRegistry
    from cli.storage import upload
    from orchestrators.ids import batch_id_for_blob
    from tests.e2e.conftest import running_devhost
    from tests.support.app import app_values, copy_app
    from tests.support.azurite import free_port, start_azurite
    from triggers.blobs import canonical_etag

    with tempfile.TemporaryDirectory(prefix="batch-e2e-") as tmp:
        azurite = start_azurite(location=Path(tmp) / "azurite")
        try:
            root = copy_app(Path(tmp) / "app")
            port = free_port()
            values = {**app_values(azurite.connection_string, root / ".mlops", port), "DURABLE_TASK_HUB": "BatchBench"}
            _register_champion(MlflowRegistry(Path(values["MLOPS_HOME"])), model_dir)  # before devhost starts
            with running_devhost(root, values, port) as host:
                tree = psutil.Process(host.process.pid)
                peak = [0.0]
                stop = threading.Event()

                def sample() -> None:
                    while not stop.wait(0.25):
                        try:
                            procs = [tree, *tree.children(recursive=True)]
                            rss = sum(p.memory_info().rss for p in procs if "scoring" not in " ".join(p.cmdline()))
                            peak[0] = max(peak[0], rss / 2**20)
                        except psutil.Error:
                            continue

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                idle = sum(p.memory_info().rss for p in [tree, *tree.children(recursive=True)]) / 2**20
                started = time.perf_counter()
                etag = upload(values["AzureWebJobsStorage"], "batch", f"{MODEL}/in/bench.csv", source.read_bytes())
                run_id = batch_id_for_blob(f"{MODEL}/in/bench.csv", canonical_etag(etag))
                run = _finished(host.http, run_id)
                seconds = time.perf_counter() - started
                stop.set()
                sampler.join()
                assert run.get("outcome") == "scored", run
                return {
                    "rows": rows,
                    "seconds": seconds,
                    "rows_per_s": rows / seconds,
                    "chunks": run["progress"]["chunks_total"],
                    "devhost_idle_mb": idle,
                    "devhost_peak_mb": peak[0],
                }
        finally:
            azurite.stop()


def _register_champion(registry: Any, model_dir: Path) -> None:
    version = registry.register(MODEL, str(model_dir), {"job_id": "bench", "run_id": "bench"}).version
    for stage in ("production", "champion"):
        registry.set_stage(MODEL, version, stage)


def _finished(http: Any, run_id: str) -> dict[str, Any]:
    """The run once it ended (polled with a deadline)."""
    run: dict[str, Any] = {}
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        answer = http.get(f"/api/runs/{run_id}")
        run = answer.json() if answer.status_code == 200 else {}
        if run.get("status") in ("Completed", "Failed", "Terminated"):
            break
        time.sleep(0.5)
    return run


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--e2e-rows", type=int, default=1_000_000)
    parser.add_argument("--no-e2e", action="store_true")
    parser.add_argument("--chunk-mb", type=int, default=16)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, Any] = {"when": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"), "sizes": []}
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        model_dir = make_model(Path(tmp) / "model")
        for rows in args.rows:
            source = Path(tmp) / f"rows-{rows}.csv"
            size = make_file(source, rows)
            a = measure("plain", str(source), str(model_dir))
            b = measure("chunks", str(source), str(model_dir), str(args.chunk_mb), str(args.parallel))
            entry = {"rows": rows, "bytes": size, "plain": a, "chunks": b, "speedup": a["seconds"] / b["seconds"]}
            results["sizes"].append(entry)
            print(
                f"{rows:>11,} rows  plain {rows / a['seconds']:>10,.0f} rows/s {a['peak_mb']:>7,.0f} MB   "
                f"chunks {rows / b['seconds']:>10,.0f} rows/s {b['peak_mb']:>7,.0f} MB   {entry['speedup']:.1f}x"
            )
            if rows == args.e2e_rows and not args.no_e2e:
                results["end_to_end"] = end_to_end(source, model_dir, rows)
            source.unlink()
    sizes = results["sizes"]
    results["goals"] = {
        "speedup_at_least_3x": all(s["speedup"] >= 3 for s in sizes),
        "memory_bounded": max(s["chunks"]["peak_mb"] for s in sizes)
        <= 1.5 * min(s["chunks"]["peak_mb"] for s in sizes),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"batch_bench-{results['when']}.json").write_text(json.dumps(results, indent=1))
    lines = [
        f"# batch_bench ({results['when']}, {len(sizes)} sizes, chunk {args.chunk_mb} MiB, {args.parallel} threads)",
        "",
        "| rows | file | plain rows/s | plain peak MB | chunks rows/s | chunks peak MB | speedup |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sizes:
        a, b = s["plain"], s["chunks"]
        lines.append(
            f"| {s['rows']:,} | {s['bytes'] / 2**20:,.0f} MiB | {s['rows'] / a['seconds']:,.0f} | {a['peak_mb']:,.0f} "
            f"| {s['rows'] / b['seconds']:,.0f} | {b['peak_mb']:,.0f} | {s['speedup']:.1f}x |"
        )
    if "end_to_end" in results:
        e = results["end_to_end"]
        lines += [
            "",
            f"End to end on devhost + Azurite, {e['rows']:,} rows in {e['chunks']} chunks: {e['seconds']:.1f} s "
            f"({e['rows_per_s']:,.0f} rows/s, upload to Completed), devhost {e['devhost_idle_mb']:,.0f} MB idle, "
            f"{e['devhost_peak_mb']:,.0f} MB peak (process tree, endpoints excluded).",
        ]
    lines += ["", f"Goals: {json.dumps(results['goals'])}", ""]
    (RESULTS / "batch_bench.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
