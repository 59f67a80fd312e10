"""Tables as batches for validation: a whole in-memory frame, or a file read by pyarrow in bounded pieces.

``iter_file_batches`` hands every batch to a ``scan`` function on a few threads as soon as it is read (pyarrow and
numpy release the GIL) and yields the results in file order.

- CSV: the file is cut at line ends into pieces of about ``block_size`` bytes, each parsed by ``pyarrow.csv`` with
  the schema's columns typed as float64. (Arrow's own streaming reader parses on one thread, half the speed of its
  table reader.) A piece holding a value that is not a number is parsed again as text, so every bad cell is still
  named with its row. Like Arrow's multi-threaded reader (``newlines_in_values=False``), a quoted value must not
  span lines.
- Parquet: row groups are decoded (memory-mapped, a couple at a time) batch by batch, the columns of a batch in
  parallel.

A reader runs at most a few batches ahead of the caller, so memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import csv
import io
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from queue import Full, Queue
from threading import Event
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ml.data import sniff
from ml.errors import TableFormatError
from ml.parsing import parse_text_column
from ml.schema import Schema

NULLS = ["", "NA", "N/A", "na", "n/a", "null", "NULL", "None", "none"]
_ROW = re.compile(r"Row #\d+: ")
_THREADS = max(1, min(4, pa.cpu_count()))

T = TypeVar("T")
R = TypeVar("R")


class Parsed(NamedTuple):
    """A column as floats, with the 1-based rows of each problem; ``bounds`` (min, max) when all are finite."""

    values: np.ndarray
    missing: np.ndarray
    bad: list[tuple[int, str]]
    nonfinite: np.ndarray
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class Batch:
    """Rows ``offset + 1 ..`` of a table; ``parse(column)`` gives its floats and problems."""

    columns: dict[str, Any]
    rows: int
    offset: int

    @classmethod
    def from_series(cls, columns: dict[str, pd.Series], rows: int, offset: int) -> Batch:
        return cls(dict(columns), rows, offset)

    @classmethod
    def from_arrow(cls, batch: pa.RecordBatch, offset: int) -> Batch:
        return cls({name: batch.column(i) for i, name in enumerate(batch.schema.names)}, batch.num_rows, offset)

    def parse(self, column: str) -> Parsed:
        values = self.columns[column]
        if isinstance(values, pa.Array | pa.ChunkedArray):
            if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
                arr = values.to_numpy(zero_copy_only=False).astype(float, copy=False)
                if values.null_count == 0:
                    return _numeric(arr, None)
                return _numeric(arr, values.is_null().to_numpy(zero_copy_only=False))
            values = values.to_pandas()
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            arr = values.to_numpy(dtype=float, na_value=np.nan)
            return _numeric(arr, np.isnan(arr))
        return Parsed(*parse_text_column(values))


_NONE = np.empty(0, dtype=int)


def _numeric(arr: np.ndarray, nulls: np.ndarray | None) -> Parsed:
    """Floats with the rows of nulls and non-finite values. Without nulls, min and max tell at once whether every
    value is finite (both propagate NaN), and are kept for the range check."""
    if nulls is None:
        if arr.size == 0:
            return Parsed(arr, _NONE, [], _NONE)
        low, high = float(arr.min()), float(arr.max())
        if np.isfinite(low) and np.isfinite(high):
            return Parsed(arr, _NONE, [], _NONE, (low, high))
        nulls = np.zeros(arr.shape, dtype=bool)
    nonfinite = np.flatnonzero(~np.isfinite(arr) & ~nulls) + 1
    return Parsed(arr, np.flatnonzero(nulls) + 1, [], nonfinite)


def iter_file_batches(
    path: Path, name: str, schema: Schema, block_size: int, scan: Callable[[Batch], T]
) -> tuple[list[str], Iterator[tuple[int, T]]]:
    """The header as written, and ``(offset, scan(batch))`` for the batches of a CSV or Parquet file in order
    (``TableFormatError`` if it is neither). ``scan`` sees each batch with offset 0 (it runs before the rows ahead
    of it are counted), so it reports rows relative to the batch."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    if sniff(head, name) == "parquet":
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, ValueError) as exc:
            raise TableFormatError(f"{name}: not a readable Parquet file ({exc})") from None
        header = list(parquet.schema_arrow.names)
        jobs = _parquet_jobs(path, parquet, [c for c in header if c in schema.columns], block_size)
        return header, _offsets(_ordered(jobs, scan), name, "not a readable Parquet file ({})")
    with path.open("rb") as handle:  # the pieces start after this line
        first = handle.readline().decode("utf-8-sig", errors="replace")
    header = [h.strip() for h in next(csv.reader(io.StringIO(first)), [])]
    columns = [c for c in schema.columns if c in header]
    jobs = _csv_jobs(path, header, columns, block_size) if header else _serial_csv_jobs(path, columns, block_size)
    return header, _offsets(_ordered(jobs, scan), name, "not a CSV table ({})")


def _offsets(results: Iterator[tuple[int, T]], name: str, problem: str) -> Iterator[tuple[int, T]]:
    """Each result with the offset of its first row; Arrow's parse errors as ``TableFormatError``."""
    offset = 0
    try:
        for rows, result in results:
            yield offset, result
            offset += rows
    except pa.ArrowInvalid as exc:  # a row number Arrow gives would count from the start of a piece: dropped
        raise TableFormatError(f"{name}: {problem.format(_ROW.sub('', str(exc)).strip())}") from None


def _ordered(
    jobs: Iterable[Callable[[], Iterable[pa.RecordBatch]]], scan: Callable[[Batch], T]
) -> Iterator[tuple[int, T]]:
    """Run the jobs (reads) on reading threads, a few ahead; each batch a job gives is scanned on a scanning thread
    as soon as it is read; ``(rows, scan result)`` of every batch, in order. A reader waits while a few of its
    batches are not taken yet (memory stays bounded), and gives up if the caller stops."""
    readers = ThreadPoolExecutor(_THREADS, thread_name_prefix="read")
    scanners = ThreadPoolExecutor(_THREADS, thread_name_prefix="scan")
    stop = Event()

    def read(job: Callable[[], Iterable[pa.RecordBatch]], out: _Results[T]) -> None:
        try:
            for batch in job():
                if not _put(out, scanners.submit(_scan_one, scan, batch), stop):
                    return
        finally:
            _put(out, None, stop)

    def start(job: Callable[[], Iterable[pa.RecordBatch]]) -> tuple[Future[None], _Results[T]]:
        out: _Results[T] = Queue(maxsize=2 * _THREADS)
        return readers.submit(read, job, out), out

    try:
        for reading, out in _ahead((start(job) for job in jobs), _THREADS):
            while (scanned := out.get()) is not None:
                yield scanned.result()
            reading.result()  # the read's own error, if any
    finally:
        stop.set()
        readers.shutdown(wait=True, cancel_futures=True)
        scanners.shutdown(wait=True, cancel_futures=True)


_Results = Queue[Future[tuple[int, T]] | None]  # a read's scans, then None


def _put(out: Queue[Any], item: object, stop: Event) -> bool:
    """``out.put(item)`` unless ``stop`` is set first (checked every 0.1 s while the queue is full)."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except Full:
            continue
    return False


def _ahead(items: Iterator[R], depth: int) -> Iterator[R]:
    """The items in order, each taken (started) up to ``depth`` items before it is needed."""
    window: deque[R] = deque()
    for item in items:
        window.append(item)
        if len(window) > depth:
            yield window.popleft()
    yield from window


def _scan_one(scan: Callable[[Batch], T], batch: pa.RecordBatch) -> tuple[int, T]:
    return batch.num_rows, scan(Batch.from_arrow(batch, 0))


def _convert(columns: list[str], typed: bool) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types={c: pa.float64() if typed else pa.string() for c in columns},
        include_columns=columns,
        null_values=NULLS if typed else [],
        strings_can_be_null=typed,
        quoted_strings_can_be_null=typed,
    )


def _csv_jobs(
    path: Path, header: list[str], columns: list[str], block_size: int
) -> Iterator[Callable[[], Iterable[pa.RecordBatch]]]:
    read = pacsv.ReadOptions(column_names=header, use_threads=False, block_size=1 << 30)
    for piece in _pieces(path, block_size):
        yield partial(_parse_piece, piece, read, columns)


def _parse_piece(piece: memoryview, read: pacsv.ReadOptions, columns: list[str]) -> list[pa.RecordBatch]:
    """Rows of one piece, as floats unless a value is not a number (then as text, to name each bad cell)."""
    try:
        table = pacsv.read_csv(pa.BufferReader(piece), read_options=read, convert_options=_convert(columns, True))
    except pa.ArrowInvalid as exc:
        if "conversion error" not in str(exc):
            raise
        table = pacsv.read_csv(pa.BufferReader(piece), read_options=read, convert_options=_convert(columns, False))
    return table.to_batches()


def _pieces(path: Path, size: int) -> Iterator[memoryview]:
    """The data lines after the header line, in pieces of about ``size`` bytes that end at a line end."""
    with path.open("rb") as handle:
        handle.readline()
        position = handle.tell()
        while data := handle.read(size):
            cut = len(data) if len(data) < size else data.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a piece
                size *= 2
            else:
                yield memoryview(data)[:cut]
                position += cut
            handle.seek(position)


def _serial_csv_jobs(
    path: Path, columns: list[str], block_size: int
) -> Iterator[Callable[[], Iterable[pa.RecordBatch]]]:
    """Arrow's own serial reader, for a file whose first line is blank (Arrow then finds a header further down; no
    schema column is named, so none is typed)."""
    read = pacsv.ReadOptions(block_size=block_size, encoding="utf8")
    for batch in pacsv.open_csv(path, read_options=read, convert_options=_convert(columns, True)):
        yield partial(list, [batch])


def _parquet_jobs(
    path: Path, parquet: pq.ParquetFile, columns: list[str], block_size: int
) -> Iterator[Callable[[], Iterable[pa.RecordBatch]]]:
    """A job per row group (each job opens the file for itself: a reader is not shared across threads), read in
    batches of ``block_size // 128`` rows (128 Ki by default), the columns of each batch decoded in parallel. A batch
    is scanned while the next is decoded (reading a whole group first left the scans waiting for all of it), and
    memory stays bounded whatever the size of a row group."""
    per_batch = max(1, block_size // 128)
    for group in range(parquet.num_row_groups):
        yield partial(_read_group, path, group, columns, per_batch)


def _read_group(path: Path, group: int, columns: list[str], per_batch: int) -> Iterator[pa.RecordBatch]:
    return pq.ParquetFile(path, memory_map=True).iter_batches(
        per_batch, row_groups=[group], columns=columns, use_threads=True
    )
