"""Request validation against the model's data contract: shape, types, finiteness, batch and body size.

Errors carry the HTTP status and a message naming the problem (row index, column, expected vs got); the server
turns them into JSON 4xx answers, never a 500.

Two checks with one outcome, because per-call overhead decides the cost here: a batch of up to ``SMALL`` rows is
checked row by row in plain Python (a numpy call costs more than the whole row), a larger one by checking the rows'
shape and converting their values to a float64 matrix in one numpy call (``_matrix``). Either way a failed quick
check falls through to ``_explain``, which walks the rows value by value and raises with the first problem's row
and column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson

from .contract import Contract

SMALL = 8
_NUMBERS = frozenset((int, float))
_LIST = {list}


class RequestError(ValueError):
    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail


class BodyNotJson(RequestError):
    """The body does not parse as JSON (400)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


@dataclass(frozen=True, slots=True)
class Batch:
    """Checked rows as sent (ints and floats); ``matrix`` is their float64 array for batches above ``SMALL``."""

    rows: list[list[float]]
    matrix: Any = None  # numpy.ndarray | None (numpy is imported only once a large batch comes)

    def out_of_range(self, contract: Contract) -> int:
        """How many values fall outside the contract's ranges (scored anyway, counted in /metrics)."""
        if self.matrix is None:
            return contract.out_of_range_rows(self.rows)
        return contract.out_of_range_matrix(self.matrix)


def parse_rows(body: bytes, contract: Contract, max_rows: int) -> Batch:
    """``{"data": [[numbers], ...]}`` → a checked ``Batch``, or ``RequestError`` naming the problem."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyNotJson(f"the body is not valid JSON: {exc}") from None
    if type(doc) is not dict or "data" not in doc:
        raise RequestError(422, 'expected a JSON object {"data": [[...], ...]}', {"got": type(doc).__name__})
    data = doc["data"]
    if type(data) is not list or not data:
        raise RequestError(422, "'data' must be a non-empty list of rows")
    if len(data) > max_rows:
        raise RequestError(413, f"batch of {len(data)} rows exceeds the limit of {max_rows}")
    width = contract.width
    if len(data) <= SMALL:
        for row in data:
            if not (
                type(row) is list
                and len(row) == width
                and frozenset(map(type, row)) <= _NUMBERS
                and math.isfinite(sum(row))
            ):  # a finite sum: every value is finite (orjson never yields NaN)
                _explain(data, contract)
        return Batch(data)
    return Batch(data, _matrix(data, body, contract))


def _matrix(data: list[Any], body: bytes, contract: Contract) -> Any:
    """The rows as a float64 matrix when every row is a list of ``width`` finite numbers, else ``_explain`` raises.

    The rows' shape is checked first (two passes over the row objects), then their values are flattened and
    converted in one call: numpy converts a flat list of numbers in about two thirds of the time it takes for the
    nested lists, whose shape it must first discover. That conversion would take some non-numbers for numbers (the
    text ``"1.5"`` as 1.5, booleans as 0 and 1), so it is used only for a body whose one string is its ``"data"``
    key and that holds no ``true`` or ``false``. ``null`` becomes NaN, which the finiteness check catches; a list in
    place of a number stops the conversion. Any doubt falls through to ``_explain``.
    """
    import numpy as np

    width = contract.width
    if (
        set(map(type, data)) == _LIST
        and set(map(len, data)) == {width}
        and body.count(b'"') == 2
        and b"true" not in body
        and b"false" not in body
    ):
        try:
            flat = np.array(list(chain.from_iterable(data)), dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            flat = None
        if flat is not None and np.isfinite(flat).all():
            return flat.reshape(len(data), width)
    _explain(data, contract)
    return np.array(data, dtype=np.float64)


def _explain(data: list[Any], contract: Contract) -> None:
    """Raise for the first row or value that breaks the contract; return when every value is a finite number."""
    names = contract.names
    for index, row in enumerate(data):
        if type(row) is not list or len(row) != len(names):
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise RequestError(
                422, f"row {index}: expected {len(names)} numbers ({','.join(names)}), got {got}", {"row": index}
            )
        for column, value in enumerate(row):
            kind = type(value)
            if (kind is not float and kind is not int) or not math.isfinite(value):
                raise RequestError(
                    422,
                    f"row {index}, column '{names[column]}': expected a finite number, got {_short(value)}",
                    {"row": index, "column": names[column]},
                )


def _short(value: Any, limit: int = 80) -> str:
    """A rejected value as echoed in the message, cut to ``limit`` characters (a value may be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
