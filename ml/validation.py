"""Validation of a data drop against the data contract: a report of every problem, never an exception.

Row numbers in messages are 1-based data rows (the header is not counted; file line = row + 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.data import load_raw
from ml.drift import DriftThresholds, FeatureDrift, compare
from ml.errors import TableFormatError
from ml.schema import ACTIVE_SCHEMA, Column, Schema

_MISSING = {"", "na", "n/a", "null", "none"}
_NONFINITE = {"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_SHOWN = 10


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


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:_SHOWN])
    more = f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def _values_text(values: list[tuple[int, str]]) -> str:
    shown = ", ".join(f"{v!s} (row {r})" for r, v in values[:_SHOWN])
    return shown + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def validate(data: bytes, name: str, *, schema: Schema = ACTIVE_SCHEMA, reference: pd.DataFrame | None = None,
             thresholds: DriftThresholds | None = None) -> ValidationReport:
    """Check ``data`` (CSV or Parquet bytes) against ``schema`` and, if given, the ``reference`` distribution."""
    report = ValidationReport(name)
    try:
        raw, header = load_raw(data, name)
    except TableFormatError as exc:
        report.problems.append(Problem("not_a_table", str(exc)))
        return report
    report.rows = len(raw)
    _check_columns(report, header, schema)
    numeric = _check_values(report, raw, schema)
    if numeric is None:
        return report
    _check_table(report, numeric, schema)
    if report.ok:
        report.frame = numeric
        if reference is not None:
            _check_drift(report, numeric, reference, schema, thresholds or DriftThresholds())
    return report


def validate_frame(frame: pd.DataFrame, name: str, *, schema: Schema = ACTIVE_SCHEMA) -> ValidationReport:
    """Validate an in-memory table (e.g. a combined training set) with the same rules."""
    return validate(frame.to_csv(index=False).encode(), name, schema=schema)


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


def _parse_column(values: pd.Series) -> tuple[np.ndarray, list[int], list[tuple[int, str]], list[int]]:
    """Floats for a column, plus rows that are missing, unparseable (with the text) and non-finite."""
    missing: list[int] = []
    nonfinite: list[int] = []
    bad: list[tuple[int, str]] = []
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        arr = values.to_numpy(dtype=float, na_value=np.nan)
        missing += [int(i) + 1 for i in np.flatnonzero(np.isnan(arr))]
        nonfinite += [int(i) + 1 for i in np.flatnonzero(np.isinf(arr))]
        return arr, missing, [], nonfinite
    out = np.full(len(values), np.nan)
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
    return out, missing, bad, nonfinite


def _check_values(report: ValidationReport, raw: pd.DataFrame, schema: Schema) -> pd.DataFrame | None:
    """Per-column parsing, missing, finiteness, integer and range checks; the numeric frame if complete."""
    numeric: dict[str, np.ndarray] = {}
    name = report.name
    for column in schema.columns:
        if column not in raw.columns or isinstance(raw[column], pd.DataFrame):
            continue
        arr, missing, bad, nonfinite = _parse_column(raw[column])
        spec = schema.column(column)
        if missing:
            report.problems.append(Problem("missing_values", f"{name}: column '{column}' has {len(missing)} "
                                           f"missing value(s) at {_rows_text(missing)}", column, missing))
        if bad:
            report.problems.append(Problem(
                "unparseable", f"{name}: column '{column}' has {len(bad)} value(s) that are not numbers: "
                f"{_values_text([(r, repr(v)) for r, v in bad])}; expected a number", column, [r for r, _ in bad]))
        if nonfinite:
            report.problems.append(Problem("non_finite", f"{name}: column '{column}' has non-finite value(s) "
                                           f"(nan/inf) at {_rows_text(nonfinite)}", column, nonfinite))
        _check_range(report, column, spec, arr)
        numeric[column] = arr
    if len(numeric) != len(schema.columns) or not report.ok:
        return None
    return pd.DataFrame(numeric, columns=schema.columns).astype("float64")


def _check_range(report: ValidationReport, column: str, spec: Column, arr: np.ndarray) -> None:
    finite = np.isfinite(arr)
    rule: list[tuple[str, Callable[[np.ndarray], np.ndarray], str]] = [
        ("out_of_range", lambda a: (a < spec.low) | (a > spec.high),
         f"out of range (expected {spec.low:g} to {spec.high:g})")]
    if spec.integer:
        rule.append(("not_integer", lambda a: a != np.round(a), "not whole numbers (expected an integer)"))
    for code, test, what in rule:
        hits = np.flatnonzero(finite & test(np.where(finite, arr, 0.0)))
        if hits.size:
            values = [(int(i) + 1, f"{arr[i]:g}") for i in hits]
            report.problems.append(Problem(code, f"{report.name}: column '{column}' has {hits.size} value(s) {what}: "
                                           f"{_values_text(values)}", column, [r for r, _ in values]))


def _check_table(report: ValidationReport, frame: pd.DataFrame, schema: Schema) -> None:
    name = report.name
    if len(frame) < schema.min_rows:
        report.problems.append(Problem("too_few_rows", f"{name}: {len(frame)} data row(s); expected at least "
                                       f"{schema.min_rows}"))
    label = frame[schema.label.name]
    if len(frame) > 0 and label.nunique() <= 1:
        report.problems.append(Problem("constant_label", f"{name}: the label '{schema.label.name}' is constant "
                                       f"({label.iloc[0]:g} in every row); a model cannot learn from it",
                                       schema.label.name))
    dup = frame.duplicated(keep="first").to_numpy()
    if dup.any():
        rows = [int(i) + 1 for i in np.flatnonzero(dup)]
        report.problems.append(Problem("duplicate_rows", f"{name}: {len(rows)} duplicate row(s) at "
                                       f"{_rows_text(rows)} (kept; they weigh double in training)",
                                       None, rows, "warning"))


def _check_drift(report: ValidationReport, frame: pd.DataFrame, reference: pd.DataFrame, schema: Schema,
                 thresholds: DriftThresholds) -> None:
    report.drift = compare(reference, frame, schema, thresholds)
    for d in report.drift:
        if d.drifted:
            report.problems.append(Problem("drift", f"{report.name}: {d.describe()}", d.column, [],
                                           thresholds.severity))
