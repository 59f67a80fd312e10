"""Request validation against the data contract: shape, types, finiteness, batch and body size.

Errors carry the HTTP status and a message naming the problem (row index, column, expected vs got); the server
turns them into JSON 4xx answers, never a 500.

Two checks with one outcome, because per-call overhead decides the cost here: a batch of up to ``SMALL`` rows is
checked row by row in plain Python (a numpy call costs more than the whole row), a larger one by letting numpy
build the matrix and reading its dtype (strings and nulls give a non-numeric dtype; booleans, which numpy would
turn into 0/1, are caught by their literals in the body). Either way a failed quick check falls through to
``_explain``, which walks the rows value by value and raises with the first problem's row and column.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ml.schema import ACTIVE_SCHEMA

FEATURES = ACTIVE_SCHEMA.feature_names
WIDTH = len(FEATURES)
SMALL = 8
_LOW = tuple(float(c.low) for c in ACTIVE_SCHEMA.features)
_HIGH = tuple(float(c.high) for c in ACTIVE_SCHEMA.features)
_LOW_ARRAY, _HIGH_ARRAY = np.array(_LOW), np.array(_HIGH)
_NUMBERS = frozenset((int, float))


class RequestError(ValueError):
    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail


@dataclass(frozen=True, slots=True)
class Batch:
    """Checked rows as sent (ints and floats); ``matrix`` is their float64 array for batches above ``SMALL``."""

    rows: list[list[float]]
    matrix: np.ndarray | None

    def array(self) -> np.ndarray:
        return self.matrix if self.matrix is not None else np.array(self.rows, dtype=np.float64)

    def out_of_range(self) -> int:
        """How many values fall outside the contract's ranges (scored anyway, counted in /metrics)."""
        if self.matrix is not None:
            return int(np.count_nonzero((self.matrix < _LOW_ARRAY) | (self.matrix > _HIGH_ARRAY)))
        lt, gt = operator.lt, operator.gt
        return sum(sum(map(lt, row, _LOW)) + sum(map(gt, row, _HIGH)) for row in self.rows)


def parse_rows(body: bytes, max_rows: int) -> Batch:
    """``{"data": [[10 numbers], ...]}`` → a checked ``Batch``, or ``RequestError`` naming the problem."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"the body is not valid JSON: {exc}") from None
    if type(doc) is not dict or "data" not in doc:
        raise RequestError(422, 'expected a JSON object {"data": [[...], ...]}', {"got": type(doc).__name__})
    data = doc["data"]
    if type(data) is not list or not data:
        raise RequestError(422, "'data' must be a non-empty list of rows")
    if len(data) > max_rows:
        raise RequestError(413, f"batch of {len(data)} rows exceeds the limit of {max_rows}")
    if len(data) <= SMALL:
        if not all(map(_plain_row, data)):
            _explain(data)
        return Batch(data, None)
    return Batch(data, _matrix(data, body))


def _plain_row(row: Any) -> bool:
    """A list of ``WIDTH`` ints/floats with a finite sum (so every value is finite; orjson never yields NaN)."""
    return (type(row) is list and len(row) == WIDTH and frozenset(map(type, row)) <= _NUMBERS
            and math.isfinite(sum(row)))


def _matrix(data: list[Any], body: bytes) -> np.ndarray:
    if b"true" not in body and b"false" not in body:
        try:
            matrix = np.array(data)
        except ValueError:
            matrix = None
        if (matrix is not None and matrix.dtype.kind in "fi" and matrix.shape == (len(data), WIDTH)
                and np.isfinite(matrix).all()):
            return matrix.astype(np.float64, copy=False)
    _explain(data)
    return np.array(data, dtype=np.float64)


def _explain(data: list[Any]) -> None:
    """Raise for the first row or value that breaks the contract; return when every value is a finite number."""
    for index, row in enumerate(data):
        if type(row) is not list or len(row) != WIDTH:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise RequestError(422, f"row {index}: expected {WIDTH} numbers ({','.join(FEATURES)}), got {got}",
                               {"row": index})
        for column, value in enumerate(row):
            kind = type(value)
            if (kind is not float and kind is not int) or not math.isfinite(value):
                raise RequestError(422, f"row {index}, column '{FEATURES[column]}': expected a finite number, "
                                   f"got {value!r}", {"row": index, "column": FEATURES[column]})
