"""Tables as batches for validation: a whole in-memory frame, or a file streamed by pyarrow in bounded blocks.

CSV files are read with the schema's columns typed as float64 (Arrow's parser, multi-threaded); the first value
that is not a number switches the rest of the file to text columns, resuming after the rows already checked, so
every bad cell is still named with its row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ml.data import sniff
from ml.errors import TableFormatError
from ml.schema import Schema

NULLS = ["", "NA", "N/A", "na", "n/a", "null", "NULL", "None", "none"]


@dataclass(frozen=True)
class Batch:
    """Rows ``offset + 1 ..`` of a table; ``parse(column)`` gives floats and the rows of each problem (1-based)."""

    columns: dict[str, Any]
    rows: int
    offset: int

    @classmethod
    def from_series(cls, columns: dict[str, pd.Series], rows: int, offset: int) -> Batch:
        return cls(dict(columns), rows, offset)

    @classmethod
    def from_arrow(cls, batch: pa.RecordBatch, offset: int) -> Batch:
        return cls({name: batch.column(i) for i, name in enumerate(batch.schema.names)}, batch.num_rows, offset)

    def parse(self, column: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]], np.ndarray]:
        from ml.validation import parse_text_column

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
        return parse_text_column(values)


_NONE = np.empty(0, dtype=int)


def _numeric(arr: np.ndarray, nulls: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]],
                                                                  np.ndarray]:
    """Floats with the rows of nulls and non-finite values (fast when there are none, the common case)."""
    if nulls is None and np.isfinite(arr.sum()):
        return arr, _NONE, [], _NONE
    nulls = np.zeros(arr.shape, dtype=bool) if nulls is None else nulls
    nonfinite = np.flatnonzero(~np.isfinite(arr) & ~nulls) + 1
    return arr, np.flatnonzero(nulls) + 1, [], nonfinite


def iter_file_batches(path: Path, name: str, schema: Schema, block_size: int) -> tuple[list[str], Iterator[Batch]]:
    """The header as written and the batches of a CSV or Parquet file (``TableFormatError`` if neither)."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    if sniff(head, name) == "parquet":
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, ValueError) as exc:
            raise TableFormatError(f"{name}: not a readable Parquet file ({exc})") from None
        header = list(parquet.schema_arrow.names)
        per_batch = max(1024, block_size // (8 * max(1, len(header))))
        return header, _parquet_batches(parquet, per_batch)
    header = [h.strip() for h in next(csv.reader(io.StringIO(head.decode("utf-8-sig", errors="replace"))), [])]
    return header, _csv_batches(path, name, [c for c in schema.columns if c in header], block_size)


def _parquet_batches(parquet: pq.ParquetFile, per_batch: int) -> Iterator[Batch]:
    offset = 0
    for record in parquet.iter_batches(batch_size=per_batch):
        yield Batch.from_arrow(record, offset)
        offset += record.num_rows


def _reader(path: Path, columns: list[str], block_size: int, typed: bool, skip: int) -> Any:
    convert = pacsv.ConvertOptions(
        column_types={c: pa.float64() if typed else pa.string() for c in columns}, include_columns=columns,
        null_values=NULLS if typed else [], strings_can_be_null=typed, quoted_strings_can_be_null=typed)
    read = pacsv.ReadOptions(block_size=block_size, skip_rows_after_names=skip, encoding="utf8")
    return pacsv.open_csv(path, read_options=read, convert_options=convert)


def _csv_batches(path: Path, name: str, columns: list[str], block_size: int) -> Iterator[Batch]:
    offset, typed = 0, True
    while True:
        try:
            reader = _reader(path, columns, block_size, typed, offset)
            for record in reader:
                yield Batch.from_arrow(record, offset)
                offset += record.num_rows
            return
        except pa.ArrowInvalid as exc:
            if typed and "conversion error" in str(exc):
                typed = False  # a value that is not a number: name it (and every later one) with its row
                continue
            raise TableFormatError(f"{name}: not a CSV table ({str(exc).strip()})") from None
