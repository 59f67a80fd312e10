"""Batch scoring's pure half: chunks of a CSV cut at line ends, Parquet row groups, row checks with the drop
validation's rules, ids, and the output lines."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml import batch
from ml.errors import TableFormatError
from ml.models import make_estimator
from ml.sample import diabetes_frame
from ml.schema import ACTIVE_SCHEMA, Column, Schema

FEATURES = ACTIVE_SCHEMA.feature_names
WITH_ID = Schema("ids", (Column("x", 0, 10), Column("y", 0, 10)), Column("t"), id="key")


def _csv(rows: int, newline: bytes = b"\n", last_newline: bool = True) -> bytes:
    frame = diabetes_frame().drop(columns=["target"]).head(rows)
    text = frame.to_csv(index=False, lineterminator=newline.decode()).encode()
    return text if last_newline else text.rstrip(b"\r\n")


def _reader(data: bytes) -> batch.ReadRange:
    return lambda offset, length: data[offset : offset + length]


@pytest.mark.parametrize("chunk_bytes", [1, 100, 1000, 10**7])
@pytest.mark.parametrize("piece_bytes", [1, 13, 4096])
@pytest.mark.parametrize("ending", [(b"\n", True), (b"\r\n", True), (b"\n", False)])
def test_csv_chunks_are_whole_lines_that_cover_the_file_in_order(
    chunk_bytes: int, piece_bytes: int, ending: tuple[bytes, bool]
) -> None:
    data = _csv(57, *ending)
    layout = batch.plan(_reader(data), len(data), chunk_bytes, piece_bytes)
    header_end = data.index(b"\n") + 1
    assert layout.format == "csv" and layout.header == FEATURES
    assert b"".join(data[s.start : s.end] for s in layout.spans) == data[header_end:]
    assert all(data[s.end - 1 : s.end] == b"\n" for s in layout.spans[:-1])
    assert all(s.end - s.start >= chunk_bytes for s in layout.spans[:-1])
    assert [s.first_row for s in layout.spans] == list(np.cumsum([0] + [s.rows for s in layout.spans])[:-1])
    assert layout.rows == 57
    assert [s.index for s in layout.spans] == list(range(len(layout.spans)))
    for span in layout.spans:  # each chunk parses alone to its own rows
        table = batch.read_csv_chunk(data[span.start : span.end], layout.header, ACTIVE_SCHEMA)
        assert table.num_rows == span.rows


def test_a_csv_with_a_header_only_has_no_chunk() -> None:
    data = b"age,sex,bmi\n"
    layout = batch.plan(_reader(data), len(data), 10, 4)
    assert layout.header == ["age", "sex", "bmi"] and layout.spans == []


def test_parquet_chunks_are_its_row_groups_read_through_ranges() -> None:
    frame = pd.DataFrame(np.random.default_rng(0).uniform(1, 2, (17_680, 10)), columns=FEATURES)  # ~1.4 MB
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, row_group_size=4000)
    data = sink.getvalue()
    asked: list[tuple[int, int]] = []

    def read(offset: int, length: int) -> bytes:
        asked.append((offset, length))
        return data[offset : offset + length]

    layout = batch.plan(read, len(data), 1 << 20)
    assert layout.format == "parquet" and layout.header == FEATURES
    assert [(s.group, s.first_row, s.rows) for s in layout.spans] == [
        (0, 0, 4000),
        (1, 4000, 4000),
        (2, 8000, 4000),
        (3, 12000, 4000),
        (4, 16000, 1680),
    ]
    assert sum(length for _, length in asked) < len(data) / 4  # the head and the footer, not the whole file
    file = batch.open_parquet(_reader(data), len(data))
    group = batch.read_parquet_chunk(file, 4, ACTIVE_SCHEMA)
    assert group.num_rows == 1680 and group.column_names == FEATURES


@pytest.mark.parametrize(
    ("data", "problem"),
    [(b"\x1f\x8b\x08rest", "gzip"), (b'{"a": 1}', "JSON"), (b"", "empty"), (b"PAR1 not really", "Parquet")],
)
def test_a_file_that_is_no_table_says_what_it_is(data: bytes, problem: str) -> None:
    with pytest.raises(TableFormatError, match=problem):
        batch.plan(_reader(data), len(data), 100)


def test_columns_needed_are_the_id_and_the_features_only() -> None:
    assert batch.column_problem(["key", "y", "x", "t", "other"], WITH_ID) is None
    problem = batch.column_problem(["x", "t"], WITH_ID)
    assert problem is not None and "missing column(s) key, y" in problem


def test_invalid_rows_are_found_with_the_validation_rules_and_numbered_in_the_file() -> None:
    data = b"1,a,2\n2,20,3\n3,,4\n4,x,5\n5,1,2\n"
    table = batch.read_csv_chunk(data, ["key", "x", "y"], WITH_ID)
    matrix, rejected = batch.check_rows(table, WITH_ID, first_row=100, name="f.csv")
    assert matrix.shape == (5, 2)
    assert rejected.mask.tolist() == [True, True, True, True, False]
    assert rejected.count == 4 and rejected.rows == [101, 102, 103, 104]
    assert rejected.problems == {"unparseable:x": 2, "out_of_range:x": 1, "missing_values:x": 1}
    assert any("'a' (row 101)" in m for m in rejected.messages)
    assert any("out of range (expected 0 to 10): 20 (row 102)" in m for m in rejected.messages)


def test_output_names_rows_by_the_id_column_or_the_row_number() -> None:
    table = batch.read_csv_chunk(b"k1,1,2\nk2,3,4\nk3,5,6\n", ["key", "x", "y"], WITH_ID)
    keep = np.array([True, False, True])
    lines = batch.encode_output(table, keep, np.array([0.5, 1.5]), first_row=7, schema=WITH_ID, version="3")
    out = pd.read_csv(io.BytesIO(batch.output_header("key") + lines))
    assert out.to_dict("list") == {"key": ["k1", "k3"], "prediction": [0.5, 1.5], "model_version": [3, 3]}
    plain = Schema("plain", WITH_ID.features, WITH_ID.label)
    lines = batch.encode_output(table, keep, np.array([0.5, 1.5]), first_row=7, schema=plain, version="v")
    assert pd.read_csv(io.BytesIO(batch.output_header("row") + lines))["row"].tolist() == [7, 9]


def test_the_scorer_gives_the_models_own_predictions() -> None:
    frame = diabetes_frame()
    model = make_estimator(1.0).fit(frame[FEATURES], frame["target"])
    scorer = batch.Scorer(model, FEATURES)
    assert scorer.linear is not None  # a ridge pipeline is one matrix product
    np.testing.assert_allclose(scorer.predict(frame[FEATURES].to_numpy()), model.predict(frame[FEATURES]))


@pytest.mark.parametrize(
    ("name", "out"),
    [("m/in/a.csv", "m/out/a.csv"), ("m/in/2026/b.parquet", "m/out/2026/b.parquet.csv"), ("m/in/c", "m/out/c.csv")],
)
def test_the_output_sits_under_out(name: str, out: str) -> None:
    assert batch.output_name(name) == out
