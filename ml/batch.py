"""Batch scoring, the pure half: cut a CSV or Parquet file into chunks without holding it whole, read one chunk,
check its rows with the drop validation's own checks, score the valid rows with numpy (no Python per row) and
encode the chunk's output lines.

- CSV: ``plan_csv`` reads the file once, piece by piece (range downloads), counting line ends (``bytes.count``, C
  speed) and cutting after the first line end past every ``chunk_bytes``: each chunk is whole lines, with the number
  of the first data row it holds. As in the drop validation, a quoted value must not span lines.
- Parquet: one chunk per row group, from the footer alone (``RangeFile`` reads only the bytes pyarrow asks for).

Rows are numbered from 0, the first data row after the header; the output names each row by the input's id column
when the schema declares one (``schema.id``), else by this number (column ``row``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ml.data import sniff
from ml.errors import TableFormatError
from ml.schema import Column, Schema
from ml.serving_files import fold_linear
from ml.streaming import NULLS, Batch
from ml.validation import check_values, finding_message

#: the longest header line read
MAX_HEADER = 1 << 16
#: row numbers and offending values kept per problem
KEPT = 10

ReadRange = Callable[[int, int], bytes]


def output_name(name: str) -> str:
    """``<model>/in/<path>`` → ``<model>/out/<path>``; the output is a CSV, so ``.csv`` is added to any other name
    (a Parquet input's)."""
    model, _, path = name.partition("/in/")
    out = f"{model}/out/{path}"
    return out if out.lower().endswith(".csv") else out + ".csv"


@dataclass(frozen=True)
class Span:
    """A chunk: bytes ``[start, end)`` (CSV) or row group ``group`` (Parquet), its first row and row count."""

    index: int
    first_row: int
    rows: int
    start: int = 0
    end: int = 0
    group: int = -1


@dataclass(frozen=True)
class Layout:
    format: str
    header: list[str]
    spans: list[Span]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.spans)


def header_of(line: bytes) -> list[str]:
    text = line.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    return [h.strip() for h in next(csv.reader(io.StringIO(text)), [])]


def plan_csv(pieces: Iterable[bytes], chunk_bytes: int) -> Layout:
    """The header and the chunks of a CSV read as consecutive ``pieces``: whole lines, about ``chunk_bytes`` each."""
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    head = bytearray()
    header: list[str] | None = None
    spans: list[Span] = []
    position = 0  # absolute offset of the current piece
    start = first_row = rows = 0
    last_byte = b""
    for piece in pieces:
        if not piece:
            continue
        at = 0
        if header is None:
            newline = piece.find(b"\n")
            head += piece if newline < 0 else piece[: newline + 1]
            if len(head) > MAX_HEADER:
                raise TableFormatError(f"the header line is longer than {MAX_HEADER} bytes")
            if newline < 0:
                position += len(piece)
                continue
            header = header_of(bytes(head))
            at = newline + 1
            start = position + at
        while True:
            cut = piece.find(b"\n", max(at, start + chunk_bytes - 1 - position))
            if cut < 0:
                rows += piece.count(b"\n", at)
                break
            rows += piece.count(b"\n", at, cut + 1)
            spans.append(Span(len(spans), first_row, rows, start, position + cut + 1))
            first_row, rows, start, at = first_row + rows, 0, position + cut + 1, cut + 1
        position += len(piece)
        last_byte = piece[-1:]
    if header is None:
        header = header_of(bytes(head))
        start = position
    if position > start:
        rows += 1 if last_byte != b"\n" else 0
        spans.append(Span(len(spans), first_row, rows, start, position))
    return Layout("csv", header, [s for s in spans if s.end > s.start])


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over ``read_range(offset, length)`` (blob range downloads) of ``size`` bytes."""

    def __init__(self, read_range: ReadRange, size: int) -> None:
        self._read, self._size, self._at = read_range, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        length = min(len(view), self._size - self._at)
        if length <= 0:
            return 0
        data = self._read(self._at, length)
        view[: len(data)] = data
        self._at += len(data)
        return len(data)


def open_parquet(read_range: ReadRange, size: int) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(io.BufferedReader(RangeFile(read_range, size), buffer_size=1 << 16))
    except (OSError, ValueError) as exc:
        raise TableFormatError(f"not a readable Parquet file ({exc})") from None


def plan_parquet(read_range: ReadRange, size: int) -> Layout:
    """One chunk per row group, read from the file's footer."""
    meta = open_parquet(read_range, size).metadata
    spans, first = [], 0
    for group in range(meta.num_row_groups):
        rows = meta.row_group(group).num_rows
        spans.append(Span(group, first, rows, group=group))
        first += rows
    return Layout("parquet", list(meta.schema.to_arrow_schema().names), spans)


def plan(read_range: ReadRange, size: int, chunk_bytes: int, piece_bytes: int = 4 << 20) -> Layout:
    """The layout of a CSV or Parquet file of ``size`` bytes (``TableFormatError`` for anything else)."""
    head = read_range(0, min(size, 4096)) if size else b""
    if sniff(head, "the file") == "parquet":
        return plan_parquet(read_range, size)
    pieces = (read_range(at, min(piece_bytes, size - at)) for at in range(0, size, piece_bytes))
    return plan_csv(pieces, chunk_bytes)


def required_columns(schema: Schema) -> list[str]:
    """What a batch file must hold: the id column (if the schema names one) and every feature."""
    return [*([schema.id] if schema.id else []), *schema.feature_names]


def column_problem(header: list[str], schema: Schema) -> str | None:
    missing = [c for c in required_columns(schema) if c not in header]
    duplicated = sorted({h for h in header if header.count(h) > 1 and h in required_columns(schema)})
    if missing:
        return (
            f"missing column(s) {', '.join(missing)}; expected the columns {','.join(required_columns(schema))} "
            f"(the label and other columns may be present and are ignored), found {','.join(header) or 'no header'}"
        )
    if duplicated:
        return f"duplicate column name(s) {', '.join(duplicated)} in the header"
    return None


def unsupported(schema: Schema) -> str | None:
    textual = [c.name for c in schema.features if c.textual]
    return f"features with text values ({', '.join(textual)}) are not scored in batch" if textual else None


def read_csv_chunk(data: bytes, header: list[str], schema: Schema) -> pa.Table:
    """The rows of one CSV chunk (whole lines, no header): features as floats, the id as text. A value that is
    not a number makes the chunk read as text, so that each bad cell is named with its row."""
    read = pacsv.ReadOptions(column_names=header, use_threads=False, block_size=1 << 30)
    features = schema.feature_names

    def convert(typed: bool) -> pacsv.ConvertOptions:
        types = {c: pa.float64() if typed else pa.string() for c in features}
        if schema.id:
            types[schema.id] = pa.string()
        return pacsv.ConvertOptions(
            column_types=types,
            include_columns=required_columns(schema),
            null_values=NULLS if typed else [],
            strings_can_be_null=typed,
            quoted_strings_can_be_null=typed,
        )

    try:
        return pacsv.read_csv(pa.BufferReader(data), read_options=read, convert_options=convert(True))
    except pa.ArrowInvalid as exc:
        if "conversion error" not in str(exc):
            raise TableFormatError(f"not a CSV table ({exc})") from None
    try:
        return pacsv.read_csv(pa.BufferReader(data), read_options=read, convert_options=convert(False))
    except pa.ArrowInvalid as exc:
        raise TableFormatError(f"not a CSV table ({exc})") from None


def read_parquet_chunk(file: pq.ParquetFile, group: int, schema: Schema) -> pa.Table:
    return file.read_row_group(group, columns=required_columns(schema))


@dataclass
class Rejected:
    """The rows of a chunk that cannot be scored: a mask, the count per problem and the first examples."""

    mask: np.ndarray
    count: int = 0
    rows: list[int] = field(default_factory=list)
    problems: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def check_rows(table: pa.Table, schema: Schema, first_row: int, name: str) -> tuple[np.ndarray, Rejected]:
    """The features as a float matrix (rows by features) and the rows to skip: every value checked as a drop's is
    (``ml.validation.check_values``); row numbers in messages are 1-based data rows of the whole file."""
    batch = Batch.from_arrow(table.combine_chunks().to_batches()[0], 0) if table.num_rows else None
    columns: tuple[Column, ...] = schema.features
    if batch is None:
        return np.empty((0, len(columns))), Rejected(np.zeros(0, dtype=bool))
    values, found = check_values(batch, columns)
    matrix = np.column_stack(values) if values else np.empty((batch.rows, 0))
    rejected = Rejected(np.zeros(batch.rows, dtype=bool))
    for code, column, rows, examples in found:
        rejected.mask[rows - 1] = True
        rejected.problems[f"{code}:{column}"] = rejected.problems.get(f"{code}:{column}", 0) + int(rows.size)
        shown = [int(r) + first_row for r in rows[:KEPT]]
        pairs = list(zip(shown, examples or [], strict=False))
        if len(rejected.messages) < KEPT:
            found_here = (int(rows.size), shown, pairs)
            rejected.messages.append(finding_message(name, code, column, found_here, schema=schema))
    bad = np.flatnonzero(rejected.mask)
    rejected.count = int(bad.size)
    rejected.rows = [int(r) + 1 + first_row for r in bad[:KEPT]]
    return matrix, rejected


class Scorer:
    """A loaded model as batch scoring uses it: a linear model as its weights and bias (one matrix product),
    anything else through ``predict`` on a frame with the feature names."""

    def __init__(self, model: Any, features: list[str]) -> None:
        self.model, self.features = model, features
        self.linear = fold_linear(model) if hasattr(model, "predict") else None

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        if not matrix.shape[0]:
            return np.empty(0)
        if self.linear is not None:
            weights, bias = self.linear
            return np.asarray(matrix @ weights + bias)
        import pandas as pd

        return np.asarray(self.model.predict(pd.DataFrame(matrix, columns=self.features)))


def output_header(id_column: str) -> bytes:
    """The output's header line: the id column (or ``row``), ``prediction``, ``model_version``."""
    return f"{id_column},prediction,model_version\n".encode()


def encode_output(
    table: pa.Table, keep: np.ndarray, predictions: np.ndarray, *, first_row: int, schema: Schema, version: str
) -> bytes:
    """The chunk's output lines (no header): the row's id (or number), its prediction and the model version."""
    kept = np.flatnonzero(keep)
    if schema.id:
        ids: pa.Array = table.column(schema.id).combine_chunks().take(pa.array(kept))
    else:
        ids = pa.array(kept + first_row)
    versions = pa.DictionaryArray.from_arrays(pa.array(np.zeros(kept.size, dtype=np.int32)), pa.array([version]))
    out = pa.table({"id": ids, "prediction": pa.array(predictions), "model_version": versions})
    sink = io.BytesIO()
    pacsv.write_csv(out, sink, pacsv.WriteOptions(include_header=False))
    return sink.getvalue()
