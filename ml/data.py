"""Reading a drop (CSV or Parquet bytes) into a table of raw values, with a clear error for anything else.

Values are read as text first (``dtype=str``) so that validation can name each unparseable cell and
its row; the numeric frame is built by validation, not here.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from ml.errors import TableFormatError

_MAGIC = {
    b"\x1f\x8b": "is gzip-compressed; upload the uncompressed CSV or Parquet file",
    b"PK\x03\x04": "is a ZIP archive; upload the CSV or Parquet file itself",
    b"\xff\xfe": "is UTF-16 encoded; expected UTF-8 text",
    b"\xfe\xff": "is UTF-16 encoded; expected UTF-8 text",
}
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def is_parquet(data: bytes) -> bool:
    return data[:4] == b"PAR1"


def sniff(head: bytes, name: str) -> str:
    """``"parquet"`` or ``"csv"`` from the first bytes of a file; ``TableFormatError`` for anything else."""
    if not head.strip():
        raise TableFormatError(f"{name}: the file is empty")
    for magic, problem in _MAGIC.items():
        if head.startswith(magic):
            raise TableFormatError(f"{name}: the file {problem}")
    if is_parquet(head):
        return "parquet"
    text = _decode(head, name, partial=True)
    start = text.lstrip()[:200].lower()
    if start.startswith(("<!doctype html", "<html", "<?xml", "<")):
        raise TableFormatError(f"{name}: the file is an HTML/XML page, not a table")
    if start.startswith(("{", "[")):
        raise TableFormatError(f"{name}: the file is JSON, not a CSV table with a header row")
    return "csv"


def load_raw(data: bytes, name: str) -> tuple[pd.DataFrame, list[str]]:
    """Parse bytes into a frame of strings (CSV) or typed values (Parquet) plus the header as written."""
    if sniff(data[:65536], name) == "parquet":
        return _load_parquet(data, name)
    return _load_csv(data, name)


def _load_parquet(data: bytes, name: str) -> tuple[pd.DataFrame, list[str]]:
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise TableFormatError(f"{name}: not a readable Parquet file ({exc})") from None
    return frame.reset_index(drop=True), [str(c) for c in frame.columns]


def _decode(data: bytes, name: str, partial: bool = False) -> str:
    if data.count(b"\x00") > len(data) // 10:
        raise TableFormatError(f"{name}: the file is binary or UTF-16 encoded; expected UTF-8 CSV text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if partial and exc.start >= len(data) - 3:  # a multi-byte character cut at the end of the sniffed head
            return data[: exc.start].decode("utf-8-sig")
        raise TableFormatError(
            f"{name}: the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "expected a UTF-8 CSV or a Parquet file"
        ) from None


def _load_csv(data: bytes, name: str) -> tuple[pd.DataFrame, list[str]]:
    text = _decode(data, name)
    header = next(csv.reader(io.StringIO(text)), [])
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise TableFormatError(f"{name}: not a CSV table ({str(exc).strip()})") from None
    return frame, [h.strip() for h in header]


def read_paths(paths: list[Path]) -> list[tuple[str, bytes]]:
    """Expand files and folders (every .csv/.parquet inside, sorted) into (name, bytes) pairs."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"training data {path} does not exist")
    if not found:
        raise FileNotFoundError(f"no .csv or .parquet file in {', '.join(map(str, paths))}")
    return [(str(p), p.read_bytes()) for p in found]
