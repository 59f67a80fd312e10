"""The BatchScoring port in this process: the orchestration fans out over the file's chunks, each an activity that
reads its byte range (or row group) with range downloads, scores it with the champion (loaded once per process and
version) and stages its output lines as one uncommitted block of the output blob; ``finish`` commits the header
block and the chunks' blocks in order (Put Block List: the service joins them, nothing is copied through here), and
the uncommitted blocks of earlier attempts are discarded by that commit.

Block ids are ``<run token>-<8 digits>`` (one length for every block of a blob, as the service requires); the token
comes from the file's name and etag, so a retried chunk replaces its own block and two versions of a file being
scored at once never share one.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import tempfile
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np

from backends.errors import BatchInputChanged, BlobChangedError, NotFoundError
from backends.ports import ModelRegistry, ModelVersion, Storage
from messages.batch import (
    BatchChunk,
    BatchInput,
    BatchJobStatus,
    BatchPlan,
    BatchProblem,
    BatchResult,
    ChunkResult,
    InvalidRows,
)
from messages.enums import JobState
from ml import batch as core
from ml.errors import TableFormatError
from ml.schema import Schema

log = logging.getLogger(__name__)

#: models kept loaded per process (a model version is a few MB)
CACHED_MODELS = 4


def run_token(name: str, etag: str) -> str:
    return hashlib.sha1(f"{name}|{etag}".encode()).hexdigest()[:12]


def block_id(token: str, number: int) -> str:
    return base64.b64encode(f"{token}-{number:08d}".encode()).decode()


class _Models:
    """Loaded models by (name, version), the newest few, each loaded once however many threads ask at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: OrderedDict[tuple[str, str, str], core.Scorer] = OrderedDict()
        self._loading: dict[tuple[str, str, str], threading.Lock] = {}

    def get(self, registry: ModelRegistry, name: str, version: str, features: list[str]) -> core.Scorer:
        key = (str(id(registry)), name, version)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in self._loaded:
                    return self._loaded[key]
            from ml.models import load

            with tempfile.TemporaryDirectory(prefix="mlops-batch-") as tmp:
                scorer = core.Scorer(load(registry.download(name, version, Path(tmp) / "model")), features)
            log.info("batch scoring: loaded %s version %s", name, version)
            with self._lock:
                self._loaded[key] = scorer
                self._loading.pop(key, None)
                while len(self._loaded) > CACHED_MODELS:
                    self._loaded.popitem(last=False)
            return scorer


MODELS = _Models()


class LocalBatchScoring:
    def __init__(self, storage: Storage, registry: ModelRegistry) -> None:
        self.storage, self.registry = storage, registry

    def _reader(self, run: BatchInput) -> core.ReadRange:
        def read(offset: int, length: int) -> bytes:
            try:
                return self.storage.read_range(run.container, run.name, offset, length, run.etag)
            except (BlobChangedError, NotFoundError) as exc:
                raise BatchInputChanged(
                    f"{run.container}/{run.name} was replaced or deleted after version {run.etag} was uploaded"
                ) from exc

        return read

    def plan(self, run: BatchInput, model: ModelVersion, schema: Schema) -> BatchPlan:
        base = BatchPlan(
            run.model, model.version, output=core.output_name(run.name), token=run_token(run.name, run.etag)
        )
        try:
            info = self.storage.info(run.container, run.name)
            if info.etag != run.etag:
                raise BatchInputChanged(f"{run.container}/{run.name} was replaced after version {run.etag}")
            layout = core.plan(self._reader(run), info.size, run.chunk_bytes)
        except (BatchInputChanged, NotFoundError) as exc:
            return _refused(base, "changed", str(exc))
        except TableFormatError as exc:
            return _refused(base, "not_a_table", f"{run.name}: {exc}")
        problem = core.column_problem(layout.header, schema)
        if problem:
            return _refused(base, "missing_columns", f"{run.name}: {problem}")
        chunks = [BatchChunk(s.index, s.first_row, s.rows, s.start, s.end, s.group) for s in layout.spans]
        return replace(
            base,
            format=layout.format,
            header=layout.header,
            chunks=chunks,
            rows=layout.rows,
            size=info.size,
            id_column=schema.id or "row",
        )

    def score_chunk(self, run: BatchInput, plan: BatchPlan, chunk: BatchChunk, schema: Schema) -> ChunkResult:
        read = self._reader(run)
        try:
            if plan.format == "parquet":
                table = core.read_parquet_chunk(core.open_parquet(read, plan.size), chunk.group, schema)
            else:
                table = core.read_csv_chunk(read(chunk.start, chunk.end - chunk.start), plan.header, schema)
        except TableFormatError as exc:
            raise TableFormatError(f"{run.name}, chunk {chunk.index}: {exc}") from None
        matrix, rejected = core.check_rows(table, schema, chunk.first_row, run.name)
        keep = ~rejected.mask
        scorer = MODELS.get(self.registry, plan.model, plan.version, schema.feature_names)
        predictions = scorer.predict(matrix[keep] if rejected.count else matrix)
        invalid = InvalidRows(rejected.count, rejected.rows, rejected.problems, rejected.messages)
        scored = int(np.count_nonzero(keep))
        if not scored:
            return ChunkResult(chunk.index, table.num_rows, 0, [], invalid)
        lines = core.encode_output(
            table, keep, predictions, first_row=chunk.first_row, schema=schema, version=plan.version
        )
        block = block_id(plan.token, chunk.index + 1)
        self.storage.stage_block(run.container, plan.output, block, lines)
        return ChunkResult(chunk.index, table.num_rows, scored, [block], invalid)

    def job_status(self, plan: BatchPlan) -> BatchJobStatus:
        return BatchJobStatus(plan.job, JobState.FAILED, "the local backend scores in chunks, not in a job")

    def finish(self, run: BatchInput, plan: BatchPlan, results: list[ChunkResult]) -> BatchResult:
        ordered = sorted(results, key=lambda r: r.index)
        rows, scored = sum(r.rows for r in ordered), sum(r.scored for r in ordered)
        header = block_id(plan.token, 0)
        self.storage.stage_block(run.container, plan.output, header, core.output_header(plan.id_column))
        metadata = {
            "source": f"{run.container}/{run.name}",
            "source_etag": run.etag,
            "model": plan.model,
            "model_version": plan.version,
            "rows": str(rows),
            "scored": str(scored),
        }
        blocks = [header, *(b for r in ordered for b in r.blocks)]
        self.storage.commit_blocks(run.container, plan.output, blocks, metadata=metadata)
        return BatchResult(f"{run.container}/{plan.output}", "", rows, scored, rows - scored, plan.version)


def _refused(base: BatchPlan, code: str, message: str) -> BatchPlan:
    return replace(base, problem=BatchProblem(code, message))
