"""Validation of a data drop against the data contract: a report of every problem, never an exception.

Row numbers in messages are 1-based data rows (the header is not counted; file line = row + 1). The checks run
batch by batch and accumulate counts and the first examples, so ``validate_path`` streams a file of any size in
bounded memory (pyarrow reads it in blocks), while ``validate`` checks bytes already in memory the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.data import load_raw
from ml.drift import DriftThresholds, FeatureDrift, compare
from ml.errors import TableFormatError
from ml.schema import ACTIVE_SCHEMA, Schema
from ml.streaming import Batch, iter_file_batches

_MISSING = {"", "na", "n/a", "null", "none"}
_NONFINITE = {"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_SHOWN = 10
_KEPT_ROWS = 50
_SAMPLE_ROWS = 100_000


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    column: str | None = None
    rows: list[int] = field(default_factory=list)
    severity: str = "error"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ValidationReport:
    name: str
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    drift: list[FeatureDrift] = field(default_factory=list)
    frame: pd.DataFrame | None = None

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def messages(self) -> list[str]:
        return [p.message for p in self.problems]

    def summary(self) -> str:
        if self.ok:
            warnings = len(self.problems)
            return f"{self.name}: {self.rows} rows accepted" + (f" with {warnings} warning(s)" if warnings else "")
        return f"{self.name}: rejected, {len(self.errors)} problem(s): " + "; ".join(p.message for p in self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "rows": self.rows, "summary": self.summary(),
                "problems": [p.to_dict() for p in self.problems], "drift": [d.to_dict() for d in self.drift]}


@dataclass
class _Finding:
    """Rows (first ``_KEPT_ROWS``), examples and the total count of one kind of problem in one column."""

    count: int = 0
    rows: list[int] = field(default_factory=list)
    examples: list[tuple[int, str]] = field(default_factory=list)

    def add(self, rows: np.ndarray, values: list[str] | None = None) -> None:
        self.count += int(rows.size)
        room = _KEPT_ROWS - len(self.rows)
        if room > 0:
            self.rows += [int(r) for r in rows[:room]]
        if values is not None and len(self.examples) < _SHOWN:
            self.examples += [(int(r), v) for r, v in zip(rows[:_SHOWN], values[:_SHOWN], strict=False)]


def _rows_text(rows: list[int], count: int) -> str:
    shown = ", ".join(str(r) for r in rows[:_SHOWN])
    more = f" and {count - min(len(rows), _SHOWN)} more" if count > _SHOWN else ""
    return f"row{'s' if count > 1 else ''} {shown}{more}"


def _examples_text(examples: list[tuple[int, str]], count: int) -> str:
    shown = ", ".join(f"{v} (row {r})" for r, v in examples[:_SHOWN])
    return shown + (f" and {count - _SHOWN} more" if count > _SHOWN else "")


class _Checks:
    """Accumulates the per-value and per-table checks over batches, then renders the report."""

    def __init__(self, report: ValidationReport, schema: Schema, keep_frame: bool) -> None:
        self.report, self.schema, self.keep_frame = report, schema, keep_frame
        self.findings: dict[tuple[str, str], _Finding] = {}
        self.hashes: list[np.ndarray] = []
        self.label_low, self.label_high = np.inf, -np.inf
        self.frames: list[np.ndarray] = []
        self.sample = np.empty((0, len(schema.columns)))
        self.sample_keys = np.empty(0)
        self.rng = np.random.default_rng(0)
        self.complete = True

    def finding(self, code: str, column: str) -> _Finding:
        return self.findings.setdefault((code, column), _Finding())

    def add(self, batch: Batch) -> None:
        numeric: dict[str, np.ndarray] = {}
        for column in self.schema.columns:
            if column in batch.columns:
                numeric[column] = self._column(column, batch, batch.offset)
        self.report.rows += batch.rows
        if len(numeric) != len(self.schema.columns):
            self.complete = False
            return
        table = np.column_stack([numeric[c] for c in self.schema.columns])
        self._table(table)
        if self.keep_frame:
            self.frames.append(table)

    def _column(self, column: str, batch: Batch, offset: int) -> np.ndarray:
        arr, missing, bad, nonfinite = batch.parse(column)
        if missing.size:
            self.finding("missing_values", column).add(missing + offset)
        if bad:
            self.finding("unparseable", column).add(np.array([r for r, _ in bad]) + offset,
                                                    [repr(v) for _, v in bad])
        if nonfinite.size:
            self.finding("non_finite", column).add(nonfinite + offset)
        spec = self.schema.column(column)
        clean = not (missing.size or nonfinite.size or bad)
        safe = arr if clean else np.where(np.isfinite(arr), arr, spec.low)
        if not clean or safe.min() < spec.low or safe.max() > spec.high:
            out = np.flatnonzero((safe < spec.low) | (safe > spec.high))
            if out.size:
                self.finding("out_of_range", column).add(out + offset + 1, [f"{arr[i]:g}" for i in out[:_SHOWN]])
        if spec.integer:
            frac = np.flatnonzero(safe != np.rint(safe))
            if frac.size:
                self.finding("not_integer", column).add(frac + offset + 1, [f"{arr[i]:g}" for i in frac[:_SHOWN]])
        return arr

    def _table(self, table: np.ndarray) -> None:
        """Label range, a 64-bit hash per row (duplicates), and a uniform reservoir sample (drift)."""
        label = table[:, -1]
        finite = label[np.isfinite(label)]
        if finite.size:
            self.label_low, self.label_high = min(self.label_low, finite.min()), max(self.label_high, finite.max())
        self.hashes.append(_row_hashes(table))
        keys = self.rng.random(len(table))
        if len(table) > _SAMPLE_ROWS:
            keep = np.argpartition(keys, _SAMPLE_ROWS)[:_SAMPLE_ROWS]
            table, keys = table[keep], keys[keep]
        merged, all_keys = np.concatenate([self.sample, table]), np.concatenate([self.sample_keys, keys])
        if len(merged) > _SAMPLE_ROWS:
            keep = np.argpartition(all_keys, _SAMPLE_ROWS)[:_SAMPLE_ROWS]
            merged, all_keys = merged[keep], all_keys[keep]
        self.sample, self.sample_keys = merged, all_keys

    def finish(self, reference: pd.DataFrame | None, thresholds: DriftThresholds) -> None:
        report, name = self.report, self.report.name
        for (code, column), found in self.findings.items():
            report.problems.append(Problem(code, _message(name, code, column, found, self.schema), column,
                                           found.rows))
        if not self.complete or not report.ok:
            return
        if report.rows < self.schema.min_rows:
            report.problems.append(Problem("too_few_rows", f"{name}: {report.rows} data row(s); expected at least "
                                           f"{self.schema.min_rows}"))
        label = self.schema.label.name
        if report.rows > 0 and self.label_low == self.label_high:
            report.problems.append(Problem("constant_label", f"{name}: the label '{label}' is constant "
                                           f"({self.label_low:g} in every row); a model cannot learn from it", label))
        self._duplicates()
        if report.ok:
            if self.keep_frame and self.frames:
                report.frame = pd.DataFrame(np.concatenate(self.frames), columns=self.schema.columns)
            if reference is not None and len(self.sample):
                sample = pd.DataFrame(self.sample, columns=self.schema.columns)
                report.drift = compare(reference, sample, self.schema, thresholds)
                report.problems += [Problem("drift", f"{name}: {d.describe()}", d.column, [], thresholds.severity)
                                    for d in report.drift if d.drifted]

    def _duplicates(self) -> None:
        if not self.hashes:
            return
        dup = pd.Series(np.concatenate(self.hashes)).duplicated(keep="first").to_numpy()
        if dup.any():
            rows = np.flatnonzero(dup) + 1
            found = _Finding()
            found.add(rows)
            self.report.problems.append(Problem(
                "duplicate_rows", f"{self.report.name}: {found.count} duplicate row(s) at "
                f"{_rows_text(found.rows, found.count)} (kept; they weigh double in training)", None, found.rows,
                "warning"))


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _row_hashes(table: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's exact float bits (multiply-xorshift over the columns)."""
    bits = np.ascontiguousarray(table).view(np.uint64)
    hashed = np.zeros(len(table), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in range(bits.shape[1]):
            hashed = (hashed ^ bits[:, column]) * _MIX
            hashed ^= hashed >> np.uint64(29)
    return hashed


def _message(name: str, code: str, column: str, found: _Finding, schema: Schema) -> str:
    spec = schema.column(column)
    where = f"{name}: column '{column}'"
    if code == "missing_values":
        return f"{where} has {found.count} missing value(s) at {_rows_text(found.rows, found.count)}"
    if code == "unparseable":
        return (f"{where} has {found.count} value(s) that are not numbers: "
                f"{_examples_text(found.examples, found.count)}; expected a number")
    if code == "non_finite":
        return f"{where} has non-finite value(s) (nan/inf) at {_rows_text(found.rows, found.count)}"
    if code == "out_of_range":
        return (f"{where} has {found.count} value(s) out of range (expected {spec.low:g} to {spec.high:g}): "
                f"{_examples_text(found.examples, found.count)}")
    return (f"{where} has {found.count} value(s) not whole numbers (expected an integer): "
            f"{_examples_text(found.examples, found.count)}")


def _check_columns(report: ValidationReport, header: list[str], schema: Schema) -> None:
    name = report.name
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        report.problems.append(Problem("duplicate_columns",
                                       f"{name}: duplicate column name(s) {', '.join(duplicates)} in the header"))
    missing = [c for c in schema.columns if c not in header]
    if missing:
        report.problems.append(Problem(
            "missing_columns", f"{name}: missing column(s) {', '.join(missing)}; expected the columns "
            f"{','.join(schema.columns)}, found {','.join(header) or 'no header'}"))
    extra = [h for h in header if h not in schema.columns]
    if extra:
        report.problems.append(Problem(
            "extra_columns", f"{name}: unexpected column(s) {', '.join(extra)}; expected only "
            f"{','.join(schema.columns)}"))


def _raw_batch(raw: pd.DataFrame) -> Batch:
    """A whole in-memory table as one batch (columns named twice are left to the header check)."""
    columns = {c: raw[c] for c in dict.fromkeys(raw.columns) if isinstance(raw[c], pd.Series)}
    return Batch.from_series(columns, len(raw), 0)


def validate(data: bytes, name: str, *, schema: Schema = ACTIVE_SCHEMA, reference: pd.DataFrame | None = None,
             thresholds: DriftThresholds | None = None) -> ValidationReport:
    """Check ``data`` (CSV or Parquet bytes) against ``schema`` and, if given, the ``reference`` distribution."""
    report = ValidationReport(name)
    try:
        raw, header = load_raw(data, name)
    except TableFormatError as exc:
        report.problems.append(Problem("not_a_table", str(exc)))
        return report
    _check_columns(report, header, schema)
    checks = _Checks(report, schema, keep_frame=True)
    checks.add(_raw_batch(raw))
    checks.finish(reference, thresholds or DriftThresholds())
    return report


def validate_path(path: Path, name: str | None = None, *, schema: Schema = ACTIVE_SCHEMA,
                  reference: pd.DataFrame | None = None, thresholds: DriftThresholds | None = None,
                  block_size: int = 1 << 24) -> ValidationReport:
    """Stream a CSV or Parquet file of any size through the same checks, in memory bounded by ``block_size``
    (no ``frame`` is kept; drift is judged on a uniform sample of up to 100,000 rows)."""
    report = ValidationReport(name or path.name)
    try:
        header, batches = iter_file_batches(path, report.name, schema, block_size)
        _check_columns(report, header, schema)
        checks = _Checks(report, schema, keep_frame=False)
        for batch in batches:
            checks.add(batch)
    except TableFormatError as exc:
        report.problems = [Problem("not_a_table", str(exc))]
        return report
    checks.finish(reference, thresholds or DriftThresholds())
    return report


def validate_frame(frame: pd.DataFrame, name: str, *, schema: Schema = ACTIVE_SCHEMA) -> ValidationReport:
    """Validate an in-memory table (e.g. a combined training set) with the same rules."""
    return validate(frame.to_csv(index=False).encode(), name, schema=schema)


def parse_text_column(values: pd.Series) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]], np.ndarray]:
    """Floats for a column of text, plus 1-based rows that are missing, unparseable (with the text), non-finite."""
    out = np.full(len(values), np.nan)
    missing: list[int] = []
    nonfinite: list[int] = []
    bad: list[tuple[int, str]] = []
    for i, cell in enumerate(values.astype(str).str.strip()):
        low = cell.lower()
        if low in _MISSING:
            missing.append(i + 1)
        elif low in _NONFINITE:
            nonfinite.append(i + 1)
        else:
            try:
                out[i] = float(cell)
            except ValueError:
                bad.append((i + 1, cell))
    return out, np.array(missing, dtype=int), bad, np.array(nonfinite, dtype=int)
