"""Data drops for the end-to-end scenarios: more of the same with noisier labels, and one drop of every kind the
validator rejects (generations of recalibrated data come from ``ml.sample.synthetic``)."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd

from ml.sample import diabetes_frame, synthetic
from ml.schema import ACTIVE_SCHEMA


def noisier(rows: int, seed: int) -> pd.DataFrame:
    """More patients like the sample's, with noisier labels: a challenger trained with them is no better."""
    frame = synthetic(rows, seed)
    noise = np.random.default_rng(seed + 1).normal(0, 40, rows)
    label = ACTIVE_SCHEMA.label
    frame[label.name] = (frame[label.name] + noise).clip(label.low, label.high).round(1)
    return frame


def csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _with(column: str, row: int, value: str | float) -> bytes:
    frame = diabetes_frame().head(60).astype(object)
    frame.loc[row, column] = value
    return csv(frame)


def _duplicate_column() -> bytes:
    header, rest = diabetes_frame().head(60).to_csv(index=False).split("\n", 1)
    return (header + ",bmi\n" + "\n".join(line + ",30" for line in rest.strip().split("\n"))).encode()


def bad_drops() -> dict[str, tuple[bytes, str]]:
    """Blob name → (content, a phrase the run's reason must contain), one per kind of rejection."""
    sample = diabetes_frame().head(60)
    return {
        "bad-empty.csv": (b"", "the file is empty"),
        "bad-gzip.csv": (gzip.compress(csv(sample)), "gzip-compressed"),
        "bad-html.csv": (b"<!DOCTYPE html><html><body>Sign in</body></html>", "an HTML/XML page, not a table"),
        "bad-utf16.csv": (csv(sample).decode().encode("utf-16"), "UTF-16 encoded"),
        "bad-binary.csv": (bytes(range(128, 256)) * 8, "not UTF-8 text"),
        "bad-json.csv": (b'{"age": 1}', "JSON, not a CSV table"),
        "bad-zip.csv": (b"PK\x03\x04garbage", "ZIP archive"),
        "bad-parquet.parquet": (b"PAR1garbage-not-parquet", "not a readable Parquet file"),
        "bad-missing-column.csv": (csv(sample.drop(columns=["bmi"])), "missing column(s) bmi"),
        "bad-extra-column.csv": (csv(sample.assign(patient_name="x")), "unexpected column(s) patient_name"),
        "bad-duplicate-column.csv": (_duplicate_column(), "duplicate column name(s) bmi"),
        "bad-unparseable.csv": (_with("bp", 4, "high"), "'high' (row 5)"),
        "bad-non-finite.csv": (_with("s1", 2, "inf"), "column 's1' has non-finite value(s)"),
        "bad-missing-value.csv": (_with("s3", 7, ""), "column 's3' has 1 missing value(s) at row 8"),
        "bad-too-few-rows.csv": (csv(sample.head(5)), "5 data row(s); expected at least 20"),
        "bad-out-of-range.csv": (_with("bmi", 9, 400.0), "column 'bmi' has 1 value(s) out of range"),
        "bad-not-integer.csv": (_with("age", 0, 45.5), "45.5 (row 1)"),
        "bad-constant-label.csv": (csv(sample.assign(target=100.0)), "the label 'target' is constant"),
    }
