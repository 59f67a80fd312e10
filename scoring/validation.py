"""Request validation against the data contract: shape, types, finiteness, batch and body size.

Errors carry the HTTP status and a message naming the problem (row index, column, expected vs got); the server
turns them into JSON 4xx answers, never a 500.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson

from ml.schema import ACTIVE_SCHEMA

FEATURES = ACTIVE_SCHEMA.feature_names
WIDTH = len(FEATURES)
_LOW = np.array([c.low for c in ACTIVE_SCHEMA.features])
_HIGH = np.array([c.high for c in ACTIVE_SCHEMA.features])


class RequestError(ValueError):
    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail


def parse_rows(body: bytes, max_rows: int) -> np.ndarray:
    """``{"data": [[10 numbers], ...]}`` → a float array (rows by features)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or "data" not in doc:
        raise RequestError(422, 'expected a JSON object {"data": [[...], ...]}', {"got": type(doc).__name__})
    data = doc["data"]
    if not isinstance(data, list) or not data:
        raise RequestError(422, "'data' must be a non-empty list of rows")
    if len(data) > max_rows:
        raise RequestError(413, f"batch of {len(data)} rows exceeds the limit of {max_rows}")
    for index, row in enumerate(data):
        if type(row) is not list or len(row) != WIDTH:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise RequestError(422, f"row {index}: expected {WIDTH} numbers ({','.join(FEATURES)}), got {got}",
                               {"row": index})
        for column, value in enumerate(row):
            kind = type(value)
            if (kind is not float and kind is not int) or (kind is float and not math.isfinite(value)):
                raise RequestError(422, f"row {index}, column '{FEATURES[column]}': expected a finite number, "
                                   f"got {value!r}", {"row": index, "column": FEATURES[column]})
    rows = np.array(data, dtype=np.float64)
    if not np.isfinite(rows).all():
        raise RequestError(422, "values must be finite numbers")
    return rows


def out_of_range(rows: np.ndarray) -> int:
    """How many values fall outside the contract's ranges (scored anyway, counted in /metrics)."""
    return int(np.count_nonzero((rows < _LOW) | (rows > _HIGH)))
