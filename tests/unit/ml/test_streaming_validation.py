"""validate_path streams files in blocks and reports exactly what validate reports for the same bytes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from ml.sample import diabetes_frame
from ml.schema import ACTIVE_SCHEMA
from ml.streaming import iter_file_batches
from ml.validation import validate, validate_path

BLOCK = 4096  # tiny blocks: the 442-row sample spans many batches


def big_frame(copies: int = 4) -> pd.DataFrame:
    frame = pd.concat([diabetes_frame()] * copies, ignore_index=True)
    frame["s6"] = frame["s6"] + (frame.index % 7) * 0.001  # keep rows distinct
    return frame


def write(frame: pd.DataFrame, path: Path, row_group_size: int | None = None) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False, row_group_size=row_group_size)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("suffix", "row_group_size"),
    [(".csv", None), (".parquet", None), (".parquet", 300)],
    ids=["csv", "parquet-one-row-group", "parquet-many-row-groups"],
)
def test_valid_file_streams_in_many_batches(tmp_path: Path, suffix: str, row_group_size: int | None) -> None:
    frame = big_frame()
    path = write(frame, tmp_path / f"big{suffix}", row_group_size)
    report = validate_path(path, block_size=BLOCK, reference=diabetes_frame())
    assert report.ok, report.messages()
    assert report.rows == len(frame) and report.frame is None
    assert not [d for d in report.drift if d.drifted]
    _, batches = iter_file_batches(path, path.name, ACTIVE_SCHEMA, BLOCK, lambda batch: batch.rows)
    offsets, sizes = zip(*batches, strict=True)
    assert len(sizes) > 5 and sum(sizes) == len(frame)
    assert list(offsets) == [sum(sizes[:i]) for i in range(len(sizes))]


def test_problems_match_the_in_memory_validation(tmp_path: Path) -> None:
    frame = big_frame().astype(object)
    frame.loc[5, "bmi"] = 400
    frame.loc[1500, "bmi"] = 5
    frame.loc[900, "age"] = 40.5
    frame.loc[1200, "s3"] = ""
    frame.loc[1700, "s1"] = "inf"
    frame.loc[1701] = frame.loc[3]
    path = write(frame, tmp_path / "bad.csv")
    streamed = validate_path(path, block_size=BLOCK)
    in_memory = validate(path.read_bytes(), "bad.csv")
    assert sorted(streamed.messages()) == sorted(in_memory.messages())
    text = " ".join(streamed.messages())
    assert "column 'bmi' has 2 value(s) out of range (expected 10 to 80): 400 (row 6), 5 (row 1501)" in text
    assert "column 's3' has 1 missing value(s) at row 1201" in text
    assert "column 's1' has non-finite value(s) (nan/inf) at row 1701" in text


def test_unparseable_value_late_in_the_file_switches_to_text_and_names_its_row(tmp_path: Path) -> None:
    frame = big_frame().astype(object)
    frame.loc[1600, "bp"] = "high"
    frame.loc[1650, "bp"] = "low"
    frame.loc[20, "bmi"] = 500
    path = write(frame, tmp_path / "late.csv")
    report = validate_path(path, block_size=BLOCK)
    assert report.rows == len(frame)
    text = " ".join(report.messages())
    assert "column 'bp' has 2 value(s) that are not numbers: 'high' (row 1601), 'low' (row 1651)" in text
    assert "500 (row 21)" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (gzip.compress(b"age\n1\n"), "gzip-compressed"),
        (b"<html><body>x</body></html>", "HTML/XML page"),
        ("age,sex\n1,2\n".encode("utf-16"), "UTF-16"),
        (b"age,sex,bmi\n1,2\n3,4,5,6,7\n", "not a CSV table"),
    ],
)
def test_not_a_table(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    report = validate_path(path, block_size=BLOCK)
    assert [p.code for p in report.problems] == ["not_a_table"]
    assert message in report.messages()[0]


def test_missing_column_and_constant_label(tmp_path: Path) -> None:
    missing = validate_path(write(big_frame().drop(columns=["s2"]), tmp_path / "m.csv"), block_size=BLOCK)
    assert "missing column(s) s2" in " ".join(missing.messages())
    constant = validate_path(write(big_frame().assign(target=7.0), tmp_path / "c.parquet"), block_size=BLOCK)
    assert "the label 'target' is constant (7 in every row)" in " ".join(constant.messages())


def test_duplicates_across_batches_match_the_in_memory_validation(tmp_path: Path) -> None:
    frame = big_frame()
    frame = pd.concat([frame, frame.iloc[[3, 1000, 3]]], ignore_index=True)
    path = write(frame, tmp_path / "dup.csv")
    streamed = validate_path(path, block_size=BLOCK)
    assert streamed.ok and [p.code for p in streamed.problems] == ["duplicate_rows"]
    assert streamed.problems[0].rows == [len(frame) - 2, len(frame) - 1, len(frame)]
    assert streamed.messages() == validate(path.read_bytes(), "dup.csv").messages()


@pytest.mark.parametrize("bad", [False, True])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_report_does_not_depend_on_the_block_size(tmp_path: Path, suffix: str, bad: bool) -> None:
    frame = big_frame()
    if bad:
        frame.loc[[17, 1500], "bmi"] = 300.0
    path = tmp_path / f"many{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path, index=False, row_group_size=200)  # row groups read whole, or in slices
    else:
        frame.to_csv(path, index=False)
    reports = [
        validate_path(path, block_size=size, reference=diabetes_frame()).to_dict() for size in (100, BLOCK, 1 << 24)
    ]  # 100 bytes: shorter than a line
    assert reports[0] == reports[1] == reports[2]
    assert reports[0]["rows"] == len(frame)
    if bad:
        assert "300 (row 18), 300 (row 1501)" in reports[0]["summary"]
    else:
        assert reports[0]["ok"] and len(reports[0]["drift"]) == 10


def test_header_names_are_stripped_and_parse_errors_name_no_piece_row(tmp_path: Path) -> None:
    text = big_frame().to_csv(index=False).replace("age,sex", "age, sex", 1)
    path = tmp_path / "spaced.csv"
    path.write_text(text)
    assert validate_path(path, block_size=BLOCK).ok
    path.write_text(text + "1,2,3\n")
    (message,) = validate_path(path, block_size=BLOCK).messages()
    assert "Expected 11 columns, got 3" in message and "Row #" not in message
