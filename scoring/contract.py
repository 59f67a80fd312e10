"""The data contract a model serves, read from the model folder it travels with.

An MLflow model folder says what it takes in ``MLmodel``: its signature's inputs, one named, typed column per
feature, as MLflow's own servers read it. Training also writes ``schema.json`` beside ``MLmodel`` with what a
signature cannot hold: each feature's plausible range and whether it is an integer, and the label. So the server
needs nothing of the code that trained the model, and one server serves any model:

- ``schema.json`` and a column signature: both, and they must name the same features in the same order;
- a column signature alone (a model trained elsewhere): names and types, no ranges (nothing is out of range);
- ``schema.json`` alone (a model saved without a signature): its features;
- neither: the column names a scikit-learn estimator was fitted with (``feature_names_in_``), no ranges.

Every feature must be numeric (``double``, ``float``, ``long``, ``integer``): requests are rows of numbers.
Out-of-range values are scored anyway and counted (``/metrics``): data-quality monitoring reads the count.
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

SCHEMA_FILE = "schema.json"
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})


class ContractError(ValueError):
    """The model folder does not say (or contradicts itself about) which features it takes."""


@dataclass(frozen=True)
class Feature:
    name: str
    type: str = "double"
    low: float = -math.inf
    high: float = math.inf
    integer: bool = False


@dataclass(frozen=True)
class Contract:
    """The features a model takes, in order. What the request path reads per request (names, width, ranges) is
    computed once per contract (``cached_property``), not per request: a 1-row request is a few microseconds."""

    features: tuple[Feature, ...]
    label: str | None = None

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @cached_property
    def width(self) -> int:
        return len(self.features)

    @cached_property
    def lows(self) -> tuple[float, ...]:
        return tuple(f.low for f in self.features)

    @cached_property
    def highs(self) -> tuple[float, ...]:
        return tuple(f.high for f in self.features)

    @cached_property
    def has_ranges(self) -> bool:
        return any(math.isfinite(f.low) or math.isfinite(f.high) for f in self.features)

    @cached_property
    def range_arrays(self) -> tuple[Any, Any]:
        """(lows, highs) as float64 vectors, for batches scored as a matrix (numpy imported on first use)."""
        import numpy as np

        return np.array(self.lows, dtype=np.float64), np.array(self.highs, dtype=np.float64)

    def out_of_range_rows(self, rows: list[list[float]]) -> int:
        """How many values of these rows fall outside their feature's range."""
        if not self.has_ranges:
            return 0
        lows, highs, lt, gt = self.lows, self.highs, operator.lt, operator.gt
        if len(rows) == 1:
            row = rows[0]
            return sum(map(lt, row, lows)) + sum(map(gt, row, highs))
        return sum(sum(map(lt, row, lows)) + sum(map(gt, row, highs)) for row in rows)

    def out_of_range_matrix(self, matrix: Any) -> int:
        """How many values of a float64 matrix (one row per request row) fall outside their feature's range."""
        if not self.has_ranges:
            return 0
        import numpy as np

        lows, highs = self.range_arrays
        return int(np.count_nonzero(matrix < lows) + np.count_nonzero(matrix > highs))

    def describe(self) -> dict[str, Any]:
        return {"features": list(self.names), "label": self.label}


def read_contract(folder: Path, mlmodel: dict[str, Any]) -> Contract | None:
    """The contract the files of the model in ``folder`` declare (``mlmodel``: its parsed ``MLmodel``), or None."""
    declared = _from_schema_file(folder / SCHEMA_FILE)
    signed = _from_signature(mlmodel.get("signature"))
    if declared is not None and signed is not None and declared.names != signed.names:
        raise ContractError(
            f"{folder / SCHEMA_FILE} names the features {list(declared.names)} but the MLmodel "
            f"signature {list(signed.names)}: they must agree, in order"
        )
    return declared or signed


def from_estimator(estimator: Any, folder: Path) -> Contract:
    """The columns a scikit-learn estimator was fitted with, for a model whose files declare none."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None or not len(names):
        raise ContractError(
            f"the model in {folder} declares no inputs: save it with a signature "
            f"(mlflow.models.infer_signature) or a {SCHEMA_FILE}"
        )
    return Contract(tuple(Feature(str(name)) for name in names))


def _from_signature(signature: Any) -> Contract | None:
    """The features of an MLflow column signature (``signature.inputs`` is a JSON string of column specs)."""
    if not isinstance(signature, dict) or not signature.get("inputs"):
        return None
    try:
        inputs = json.loads(signature["inputs"])
    except (TypeError, ValueError) as exc:
        raise ContractError(f"the MLmodel signature's inputs are not JSON: {exc}") from None
    if not isinstance(inputs, list) or not inputs:
        raise ContractError("the MLmodel signature's inputs must be a list of columns")
    features = []
    for index, column in enumerate(inputs):
        if not isinstance(column, dict) or column.get("type") == "tensor" or not column.get("name"):
            raise ContractError(
                f"input {index} of the MLmodel signature is not a named column ({column!r}): the "
                f"server needs one named numeric column per feature, or a {SCHEMA_FILE}"
            )
        features.append(_feature(str(column["name"]), str(column.get("type", "")), {}))
    return Contract(tuple(features))


def _from_schema_file(path: Path) -> Contract | None:
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        columns = doc["features"]
        if not isinstance(columns, list) or not columns:
            raise TypeError("'features' must be a non-empty list")
        features = tuple(_feature(str(c["name"]), str(c.get("type", "double")), c) for c in columns)
        label = doc.get("label")
        label_name = str(label["name"]) if isinstance(label, dict) and label.get("name") else None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ContractError(f"{path} is not a feature schema ({type(exc).__name__}: {exc})") from None
    if len({f.name for f in features}) != len(features):
        raise ContractError(f"{path} names a feature twice")
    return Contract(features, label_name)


def _feature(name: str, kind: str, spec: dict[str, Any]) -> Feature:
    if kind not in NUMERIC_TYPES:
        raise ContractError(
            f"feature '{name}' is of type {kind!r}: the server scores numeric features only "
            f"({', '.join(sorted(NUMERIC_TYPES))})"
        )
    low, high = _bound(spec.get("low"), -math.inf, name), _bound(spec.get("high"), math.inf, name)
    if low > high:
        raise ContractError(f"feature '{name}': low {low} is above high {high}")
    return Feature(name, kind, low, high, bool(spec.get("integer", False)))


def _bound(value: Any, default: float, name: str) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ContractError(f"feature '{name}': range bound {value!r} is not a number")
    return float(value)
