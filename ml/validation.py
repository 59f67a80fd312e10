"""Validation of a data drop against the data contract: a report of every problem, never an exception.

Row numbers in messages are 1-based data rows (the header is not counted; file line = row + 1). Each batch is
scanned on its own (``_scan``: the per-value checks, the label range, a hash per row, the rows it offers the drift
sample), then the scans are merged in file order, accumulating counts, the first examples, the row hashes (searched
for repeated rows at the end: ``ml.duplicates``) and the drift sample (``ml.drift_sample``). So ``validate_path``
streams a file of any size in bounded memory, scanning batches on a couple of threads while the next are read, and
``validate`` checks bytes already in memory the same way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.data import load_raw
from ml.drift import DriftThresholds, FeatureDrift, compare
from ml.drift_sample import DriftSample
from ml.duplicates import find_repeated_values, later_copies
from ml.errors import TableFormatError
from ml.row_hash import row_hashes
from ml.schema import ACTIVE_SCHEMA, Column, Schema
from ml.streaming import Batch, Parsed, iter_file_batches

_SHOWN = 10
_KEPT_ROWS = 50
# Drift is judged on a uniform sample: against a reference of a few hundred to a few thousand rows, KS's power is
# bounded by the smaller side, and PSI over 10 bins of 20,000 rows is within about ±0.01 of the whole drop's.
_SAMPLE_ROWS = 20_000
_CHUNK_ROWS = 1 << 15
_NO_ROWS = np.empty(0, dtype=np.int64)
#: one finding of a batch: (code, column, 1-based rows, the first offending values shown)
Found = tuple[str, str, np.ndarray, list[str] | None]


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
        return {
            "name": self.name,
            "ok": self.ok,
            "rows": self.rows,
            "summary": self.summary(),
            "problems": [p.to_dict() for p in self.problems],
            "drift": [d.to_dict() for d in self.drift],
        }


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


@dataclass
class _Scan:
    """What one batch shows, rows 1-based within the batch: computed on a reading thread, merged in file order."""

    rows: int
    found: list[Found] = field(default_factory=list)
    values: list[np.ndarray] | None = None  # the schema's columns as floats; None if the batch lacks one
    label: tuple[float, float] = (np.inf, -np.inf)  # the smallest and largest finite label
    hashes: np.ndarray | None = None
    sample: tuple[np.ndarray, list[np.ndarray]] | None = None  # the batch's lowest sample keys and their rows


def _scan(batch: Batch, schema: Schema, sample: DriftSample) -> _Scan:
    """Every per-value check of one batch, its label range, a 64-bit hash per row (for duplicates) and the rows it
    offers the drift ``sample``."""
    scan = _Scan(batch.rows)
    values: list[np.ndarray] = []
    label = schema.label.name
    for column in schema.columns:
        if column in batch.columns:
            parsed = batch.parse(column)
            values.append(_scan_column(scan, parsed, schema.column(column)))
            if column == label:
                scan.label = _finite_bounds(parsed)
    if len(values) == len(schema.columns):
        scan.values, scan.hashes = values, row_hashes(values)
        scan.sample = sample.candidates(scan.hashes, values)
    return scan


def _scan_column(scan: _Scan, parsed: Parsed, spec: Column) -> np.ndarray:
    arr, name = parsed.values, spec.name
    if parsed.missing.size:
        scan.found.append(("missing_values", name, parsed.missing, None))
    if parsed.bad:
        scan.found.append(("unparseable", name, np.array([r for r, _ in parsed.bad]), [repr(v) for _, v in parsed.bad]))
    if parsed.nonfinite.size:
        scan.found.append(("non_finite", name, parsed.nonfinite, None))
    safe = arr if parsed.bounds else np.where(np.isfinite(arr), arr, spec.low)
    if not parsed.bounds or parsed.bounds[0] < spec.low or parsed.bounds[1] > spec.high:
        out = np.flatnonzero((safe < spec.low) | (safe > spec.high))
        if out.size:
            scan.found.append(("out_of_range", name, out + 1, [f"{arr[i]:g}" for i in out[:_SHOWN]]))
    if spec.integer:
        frac = _fractional(safe)
        if frac.size:
            scan.found.append(("not_integer", name, frac + 1, [f"{arr[i]:g}" for i in frac[:_SHOWN]]))
    return arr


def _fractional(values: np.ndarray) -> np.ndarray:
    """Positions of the values that are not whole numbers, ``_CHUNK_ROWS`` at a time through one scratch array (fresh
    memory is slow to fault in, notably in a VM, and a column-sized temporary would be fresh every batch)."""
    scratch = np.empty(min(values.size, _CHUNK_ROWS))
    found = []
    for start in range(0, values.size, _CHUNK_ROWS):
        part = values[start : start + _CHUNK_ROWS]
        rounded = np.rint(part, out=scratch[: part.size])
        if not np.array_equal(rounded, part):
            found.append(np.flatnonzero(rounded != part) + start)
    return np.concatenate(found) if found else _NO_ROWS


def _finite_bounds(parsed: Parsed) -> tuple[float, float]:
    if parsed.bounds:
        return parsed.bounds
    finite = parsed.values[np.isfinite(parsed.values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (np.inf, -np.inf)


class _Checks:
    """Merges the batches' scans in file order, then renders the report."""

    def __init__(self, report: ValidationReport, schema: Schema, keep_frame: bool) -> None:
        self.report, self.schema, self.keep_frame = report, schema, keep_frame
        self.findings: dict[tuple[str, str], _Finding] = {}
        self.hashes: list[np.ndarray] = []
        self.label_low, self.label_high = np.inf, -np.inf
        self.frames: list[np.ndarray] = []
        self.sample = DriftSample(_SAMPLE_ROWS)
        self.complete = True

    def finding(self, code: str, column: str) -> _Finding:
        return self.findings.setdefault((code, column), _Finding())

    def scan(self, batch: Batch) -> _Scan:
        """The checks of one batch that need nothing from the others (safe to run on any thread)."""
        return _scan(batch, self.schema, self.sample)

    def add(self, batch: Batch) -> None:
        self.merge(batch.offset, self.scan(batch))

    def merge(self, offset: int, scan: _Scan) -> None:
        """Add one batch's scan (its first row is ``offset + 1``); batches must come in file order."""
        for code, column, rows, examples in scan.found:
            self.finding(code, column).add(rows + offset, examples)
        self.report.rows += scan.rows
        if scan.values is None or scan.hashes is None or scan.sample is None:
            self.complete = False
            return
        self.label_low, self.label_high = min(self.label_low, scan.label[0]), max(self.label_high, scan.label[1])
        self.hashes.append(scan.hashes)
        self.sample.add(*scan.sample)
        if self.keep_frame:
            self.frames.append(np.column_stack(scan.values))

    def finish(self, reference: pd.DataFrame | None, thresholds: DriftThresholds) -> None:
        report, name = self.report, self.report.name
        for (code, column), found in self.findings.items():
            report.problems.append(Problem(code, _message(name, code, column, found, self.schema), column, found.rows))
        if not self.complete or not report.ok:
            return
        self._table_problems()
        ok = report.ok  # the duplicates found next are warnings
        with ThreadPoolExecutor(2) as pool:  # the duplicate search sorts on the pool while drift is measured here
            repeats = find_repeated_values(self.hashes, pool)
            drift = self._drift(reference, thresholds) if ok else []
            self._duplicates(later_copies(self.hashes, [r.result() for r in repeats]))
        if ok:
            if self.keep_frame and self.frames:
                report.frame = pd.DataFrame(np.concatenate(self.frames), columns=self.schema.columns)
            report.drift = drift
            report.problems += [
                Problem("drift", f"{name}: {d.describe()}", d.column, [], thresholds.severity)
                for d in drift
                if d.drifted
            ]

    def _table_problems(self) -> None:
        report, name = self.report, self.report.name
        if report.rows < self.schema.min_rows:
            report.problems.append(
                Problem("too_few_rows", f"{name}: {report.rows} data row(s); expected at least {self.schema.min_rows}")
            )
        label = self.schema.label.name
        if report.rows > 0 and self.label_low == self.label_high:
            report.problems.append(
                Problem(
                    "constant_label",
                    f"{name}: the label '{label}' is constant "
                    f"({self.label_low:g} in every row); a model cannot learn from it",
                    label,
                )
            )

    def _drift(self, reference: pd.DataFrame | None, thresholds: DriftThresholds) -> list[FeatureDrift]:
        if reference is None:
            return []
        sample = self.sample.frame(self.schema.columns)
        return compare(reference, sample, self.schema, thresholds) if len(sample) else []

    def _duplicates(self, dup: np.ndarray) -> None:
        if dup.size:
            found = _Finding()
            found.add(dup + 1)
            self.report.problems.append(
                Problem(
                    "duplicate_rows",
                    f"{self.report.name}: {found.count} duplicate row(s) at "
                    f"{_rows_text(found.rows, found.count)} (kept; they weigh double in training)",
                    None,
                    found.rows,
                    "warning",
                )
            )


def _message(name: str, code: str, column: str, found: _Finding, schema: Schema) -> str:
    spec = schema.column(column)
    where = f"{name}: column '{column}'"
    if code == "missing_values":
        return f"{where} has {found.count} missing value(s) at {_rows_text(found.rows, found.count)}"
    if code == "unparseable":
        return (
            f"{where} has {found.count} value(s) that are not numbers: "
            f"{_examples_text(found.examples, found.count)}; expected a number"
        )
    if code == "non_finite":
        return f"{where} has non-finite value(s) (nan/inf) at {_rows_text(found.rows, found.count)}"
    if code == "out_of_range":
        return (
            f"{where} has {found.count} value(s) out of range (expected {spec.low:g} to {spec.high:g}): "
            f"{_examples_text(found.examples, found.count)}"
        )
    return (
        f"{where} has {found.count} value(s) not whole numbers (expected an integer): "
        f"{_examples_text(found.examples, found.count)}"
    )


def _check_columns(report: ValidationReport, header: list[str], schema: Schema) -> None:
    name = report.name
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        report.problems.append(
            Problem("duplicate_columns", f"{name}: duplicate column name(s) {', '.join(duplicates)} in the header")
        )
    missing = [c for c in schema.columns if c not in header]
    if missing:
        report.problems.append(
            Problem(
                "missing_columns",
                f"{name}: missing column(s) {', '.join(missing)}; expected the columns "
                f"{','.join(schema.columns)}, found {','.join(header) or 'no header'}",
            )
        )
    extra = [h for h in header if h not in schema.columns]
    if extra:
        report.problems.append(
            Problem(
                "extra_columns",
                f"{name}: unexpected column(s) {', '.join(extra)}; expected only {','.join(schema.columns)}",
            )
        )


def _raw_batch(raw: pd.DataFrame) -> Batch:
    """A whole in-memory table as one batch (columns named twice are left to the header check)."""
    columns = {c: raw[c] for c in dict.fromkeys(raw.columns) if isinstance(raw[c], pd.Series)}
    return Batch.from_series(columns, len(raw), 0)


def validate(
    data: bytes,
    name: str,
    *,
    schema: Schema = ACTIVE_SCHEMA,
    reference: pd.DataFrame | None = None,
    thresholds: DriftThresholds | None = None,
) -> ValidationReport:
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


def validate_path(
    path: Path,
    name: str | None = None,
    *,
    schema: Schema = ACTIVE_SCHEMA,
    reference: pd.DataFrame | None = None,
    thresholds: DriftThresholds | None = None,
    block_size: int = 1 << 24,
) -> ValidationReport:
    """Stream a CSV or Parquet file of any size through the same checks, in memory bounded by a few pieces of
    ``block_size`` bytes (no ``frame`` is kept; drift is judged on a uniform sample of up to 20,000 rows). Pieces
    are parsed and checked on a few threads; the per-batch results are merged here in file order."""
    report = ValidationReport(name or path.name)
    checks = _Checks(report, schema, keep_frame=False)
    try:
        header, scans = iter_file_batches(path, report.name, schema, block_size, checks.scan)
        _check_columns(report, header, schema)
        for offset, scan in scans:
            checks.merge(offset, scan)
    except TableFormatError as exc:
        report.problems = [Problem("not_a_table", str(exc))]
        return report
    checks.finish(reference, thresholds or DriftThresholds())
    return report


def validate_frame(frame: pd.DataFrame, name: str, *, schema: Schema = ACTIVE_SCHEMA) -> ValidationReport:
    """Validate an in-memory table (e.g. a combined training set) with the same rules."""
    return validate(frame.to_csv(index=False).encode(), name, schema=schema)


def check_values(batch: Batch, columns: tuple[Column, ...]) -> tuple[list[np.ndarray], list[Found]]:
    """The per-value checks of a drop (missing, not a number, non-finite, out of range, not a whole number) on
    ``columns`` of one batch: each column as floats, and every finding as (code, column, 1-based rows of the batch,
    the first offending values shown) — what batch scoring uses to pick out the rows it cannot score."""
    scan = _Scan(batch.rows)
    values = [_scan_column(scan, batch.parse(column.name), column) for column in columns]
    return values, scan.found


def finding_message(
    name: str, code: str, column: str, found: tuple[int, list[int], list[tuple[int, str]]], *, schema: Schema
) -> str:
    """The message a drop's report gives for values of ``column`` failing check ``code``: ``found`` is their count,
    the first rows and the first (row, value) examples."""
    count, rows, examples = found
    return _message(name, code, column, _Finding(count, rows, examples), schema)
