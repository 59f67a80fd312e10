"""Small batches (plain-Python check) and large ones (numpy check) must reject the same things the same way."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from ml.schema import ACTIVE_SCHEMA
from scoring.contract import Contract, Feature
from scoring.validation import SMALL, RequestError, parse_rows

CONTRACT = Contract(tuple(Feature(c.name, "double", c.low, c.high, c.integer) for c in ACTIVE_SCHEMA.features))

GOOD = [50, 1, 25.5, 90, 180, 100, 50, 4, 4.5, 90]
BAD_ROWS = [
    ([1, 2, 3], "expected 10 numbers"),
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "got 11 values"),
    ({"age": 1}, "got dict"),
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, "x"], "column 's6': expected a finite number, got 'x'"),
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, "1.5"], "column 's6': expected a finite number, got '1.5'"),
    ([True, 2, 3, 4, 5, 6, 7, 8, 9, 10], "column 'age': expected a finite number, got True"),
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, False], "column 's6': expected a finite number, got False"),
    ([1, None, 3, 4, 5, 6, 7, 8, 9, 10], "column 'sex': expected a finite number, got None"),
    ([1, 2, [3], 4, 5, 6, 7, 8, 9, 10], "column 'bmi': expected a finite number, got [3]"),
]


@pytest.mark.parametrize("size", [1, SMALL, SMALL + 1, 200])
@pytest.mark.parametrize(("bad", "message"), BAD_ROWS)
def test_the_first_bad_row_is_named_whatever_the_batch_size(size: int, bad: object, message: str) -> None:
    rows = [GOOD] * (size - 1) + [bad]
    with pytest.raises(RequestError) as caught:
        parse_rows(orjson.dumps({"data": rows}), CONTRACT, max_rows=1000)
    assert caught.value.status == 422
    assert f"row {size - 1}" in caught.value.message and message in caught.value.message


@pytest.mark.parametrize("size", [1, SMALL, SMALL + 1, 200])
def test_good_batches_keep_their_values(size: int) -> None:
    rows = [[value + index for value in GOOD] for index in range(size)]
    batch = parse_rows(orjson.dumps({"data": rows}), CONTRACT, max_rows=1000)
    assert batch.rows == rows
    if size > SMALL:
        np.testing.assert_array_equal(batch.matrix, np.array(rows, dtype=np.float64))
        assert batch.matrix.dtype == np.float64
    else:
        assert batch.matrix is None


def test_spacing_and_exponents_keep_the_values_a_json_parser_reads() -> None:
    rows = [[1e-05, 2, 3.5e2, 4, 5, 6, 7, 8, 9, -1.25e-3]] * 20
    body = b'{ "data" : [ ' + b" , ".join(b"[ " + b" ,".join(repr(v).encode() for v in row) + b" ]" for row in rows)
    batch = parse_rows(body + b" ] }", CONTRACT, max_rows=1000)
    np.testing.assert_array_equal(batch.matrix, np.array(rows, dtype=np.float64))


def test_boolean_literals_elsewhere_in_the_body_do_not_reject_a_good_batch() -> None:
    body = orjson.dumps({"data": [GOOD] * 20, "note": "true or false"})
    assert parse_rows(body, CONTRACT, max_rows=1000).matrix.shape == (20, 10)


@pytest.mark.parametrize("size", [1, 20])
def test_out_of_range_values_are_counted_not_rejected(size: int) -> None:
    row = list(GOOD)
    row[0], row[9] = -5, 10_000
    batch = parse_rows(orjson.dumps({"data": [row] * size}), CONTRACT, max_rows=1000)
    assert batch.out_of_range(CONTRACT) == 2 * size
