"""Every validation rule and every bad-input kind gets a clear report, never an exception."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
import pytest

from ml.drift import DriftThresholds
from ml.sample import diabetes_frame
from ml.validation import validate


def csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


@pytest.fixture
def sample() -> pd.DataFrame:
    return diabetes_frame().head(60).reset_index(drop=True)


def codes(data: bytes, name: str = "drop.csv", **kw: object) -> dict[str, str]:
    report = validate(data, name, **kw)  # type: ignore[arg-type]
    return {p.code: p.message for p in report.problems}


def test_valid_csv_passes_with_a_numeric_frame(sample: pd.DataFrame) -> None:
    report = validate(csv(sample), "good.csv")
    assert report.ok and report.problems == []
    assert report.rows == 60
    assert report.frame is not None
    assert list(report.frame.columns) == list(sample.columns)
    assert report.frame.dtypes.unique().tolist() == [np.dtype("float64")]
    assert report.to_dict()["ok"] is True


def test_valid_parquet_passes(sample: pd.DataFrame) -> None:
    buf = io.BytesIO()
    sample.to_parquet(buf, index=False)
    report = validate(buf.getvalue(), "good.parquet")
    assert report.ok, report.messages()
    assert report.rows == 60


def test_utf8_bom_is_accepted(sample: pd.DataFrame) -> None:
    assert validate(b"\xef\xbb\xbf" + csv(sample), "bom.csv").ok


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "bad.csv: the file is empty"),
        (b"   \n\n", "bad.csv: the file is empty"),
        (gzip.compress(b"age,sex\n1,2\n"), "gzip-compressed"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "an HTML/XML page, not a table"),
        ("age,sex\n1,2\n".encode("utf-16"), "UTF-16 encoded"),
        (bytes(range(128, 256)) * 8, "not UTF-8 text (byte 0x80 at offset 0)"),
        (b'{"age": 1}', "JSON, not a CSV table"),
        (b"PK\x03\x04garbage", "ZIP archive"),
        (b"PAR1garbage-not-parquet", "not a readable Parquet file"),
    ],
)
def test_not_a_table_is_reported(data: bytes, expected: str) -> None:
    report = validate(data, "bad.csv")
    assert not report.ok
    assert [p.code for p in report.problems] == ["not_a_table"]
    assert expected in report.messages()[0]


def test_plain_text_is_rejected_by_its_columns() -> None:
    report = validate(b"hello world\nthis is not data\n", "notes.txt")
    assert not report.ok
    assert "missing column(s) age, sex, bmi" in " ".join(report.messages())


def test_missing_column(sample: pd.DataFrame) -> None:
    msg = codes(csv(sample.drop(columns=["bmi"])))["missing_columns"]
    assert "missing column(s) bmi" in msg
    assert "found age,sex,bp" in msg


def test_extra_column(sample: pd.DataFrame) -> None:
    extra = sample.assign(patient_name="x")
    msg = codes(csv(extra))["extra_columns"]
    assert "unexpected column(s) patient_name" in msg


def test_duplicate_column() -> None:
    frame = diabetes_frame().head(30)
    text = frame.to_csv(index=False)
    header, rest = text.split("\n", 1)
    data = (header + ",bmi\n" + "\n".join(line + ",30" for line in rest.strip().split("\n"))).encode()
    assert "duplicate column name(s) bmi" in codes(data)["duplicate_columns"]


def test_unparseable_value_names_row_and_text(sample: pd.DataFrame) -> None:
    frame = sample.astype(object)
    frame.loc[4, "bp"] = "high"
    msg = codes(csv(frame))["unparseable"]
    assert "column 'bp' has 1 value(s) that are not numbers: 'high' (row 5)" in msg


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_non_finite_values(sample: pd.DataFrame, value: str) -> None:
    frame = sample.astype(object)
    frame.loc[2, "s1"] = value
    msg = codes(csv(frame))["non_finite"]
    assert "column 's1' has non-finite value(s) (nan/inf) at row 3" in msg


def test_missing_values_per_column(sample: pd.DataFrame) -> None:
    frame = sample.astype(object)
    frame.loc[[0, 7], "s3"] = ""
    msg = codes(csv(frame))["missing_values"]
    assert "column 's3' has 2 missing value(s) at rows 1, 8" in msg


def test_too_few_rows(sample: pd.DataFrame) -> None:
    msg = codes(csv(sample.head(5)))["too_few_rows"]
    assert "5 data row(s); expected at least 20" in msg


def test_out_of_range_names_column_row_and_range(sample: pd.DataFrame) -> None:
    frame = sample.copy()
    frame.loc[9, "bmi"] = 400.0
    msg = codes(csv(frame))["out_of_range"]
    assert "column 'bmi' has 1 value(s) out of range (expected 10 to 80): 400 (row 10)" in msg


def test_non_integer_in_integer_column(sample: pd.DataFrame) -> None:
    frame = sample.copy()
    frame.loc[0, "age"] = 45.5
    msg = codes(csv(frame))["not_integer"]
    assert "column 'age'" in msg and "45.5 (row 1)" in msg


def test_constant_label(sample: pd.DataFrame) -> None:
    msg = codes(csv(sample.assign(target=100.0)))["constant_label"]
    assert "the label 'target' is constant (100 in every row)" in msg


def test_duplicate_rows_are_a_warning(sample: pd.DataFrame) -> None:
    frame = pd.concat([sample, sample.iloc[[3]]], ignore_index=True)
    report = validate(csv(frame), "dup.csv")
    assert report.ok
    (problem,) = report.problems
    assert problem.code == "duplicate_rows" and problem.severity == "warning"
    assert problem.rows == [61]


def test_long_row_lists_are_truncated(sample: pd.DataFrame) -> None:
    frame = sample.copy()
    frame.loc[:, "bp"] = 999.0
    msg = codes(csv(frame))["out_of_range"]
    assert "and 50 more" in msg


def test_every_problem_is_reported_at_once(sample: pd.DataFrame) -> None:
    frame = sample.drop(columns=["s6"]).astype(object)
    frame.loc[1, "bmi"] = "fat"
    frame.loc[2, "age"] = 300
    found = codes(csv(frame))
    assert {"missing_columns", "unparseable", "out_of_range"} <= set(found)


def test_drift_against_reference_is_detected() -> None:
    reference = diabetes_frame()
    shifted = reference.sample(200, random_state=1).assign(bmi=lambda f: f.bmi + 8)
    report = validate(csv(shifted), "shift.csv", reference=reference)
    assert report.ok, "drift is a warning by default"
    drifted = [d.column for d in report.drift if d.drifted]
    assert drifted == ["bmi"]
    assert any(p.code == "drift" and "column 'bmi' drifted" in p.message for p in report.problems)


def test_resample_of_reference_does_not_drift() -> None:
    reference = diabetes_frame()
    resample = reference.sample(300, random_state=7)
    report = validate(csv(resample), "same.csv", reference=reference)
    assert not [d.column for d in report.drift if d.drifted]


def test_drift_can_be_made_an_error() -> None:
    reference = diabetes_frame()
    shifted = reference.assign(s5=lambda f: f.s5 + 0.8)
    report = validate(csv(shifted), "shift.csv", reference=reference, thresholds=DriftThresholds(severity="error"))
    assert not report.ok
    assert "column 's5' drifted" in report.summary()


def test_drift_reports_every_feature_in_schema_order() -> None:
    reference = diabetes_frame()
    report = validate(csv(reference.sample(300, random_state=3)), "same.csv", reference=reference)
    assert [d.column for d in report.drift] == [c for c in reference.columns if c != "target"]
