"""A first spec inferred from a sample table, for a person to review: ``python -m cli models new NAME --from
sample.csv --label COLUMN`` writes ``models/NAME/model.yaml`` from ``infer_spec``.

Per column: text → a category with its values; values 0/1 (or true/false) → bool; whole numbers → int (a label of
few whole values → a category: the classes); others → float with a range widened by ``margin`` of its span on each
side (never below 0 for a column that never is); missing values → nullable. A text column with one distinct value
per row is the id. The label decides the task: a category → binary (2 classes) or multiclass, a number →
regression. The estimator and promotion rule are the shipped defaults for the task (ridge regression, logistic
regression on AUC).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import yaml

from ml.parsing import FALSE, MISSING, TRUE

#: a column with at most this many distinct whole values (or any text column up to it) is a category
MAX_CATEGORIES = 20


class OnboardError(ValueError):
    """The sample cannot give a spec (no rows, no such label, a label of one value)."""


def _cells(series: pd.Series) -> pd.Series:
    text = series.astype(str).str.strip()
    return series.where(~text.str.lower().isin(MISSING) & series.notna())


def _number(value: float) -> float | int:
    rounded = round(value, 6)
    return int(rounded) if float(rounded).is_integer() else rounded


def _column(name: str, series: pd.Series, margin: float, *, label: bool) -> dict[str, Any]:
    present = _cells(series).dropna()
    doc: dict[str, Any] = {"name": name}
    if len(present) < len(series) and not label:
        doc["nullable"] = True
    numbers = pd.to_numeric(present, errors="coerce")
    text_values = {str(v).strip().lower() for v in present.unique()}
    if numbers.isna().any():  # text
        if text_values <= TRUE | FALSE and len(text_values) == 2 and not label:
            return {**doc, "dtype": "bool"}
        values = sorted({str(v).strip() for v in present.unique()})
        return {**doc, "dtype": "category", "allowed": values}
    whole = bool((numbers == numbers.round()).all())
    distinct = sorted(numbers.unique())
    if whole and distinct in ([0, 1], [0.0, 1.0]) and not label:
        return {**doc, "dtype": "bool"}
    if label and whole and len(distinct) <= MAX_CATEGORIES:
        return {**doc, "dtype": "category", "allowed": [_number(float(v)) for v in distinct]}
    low, high = float(numbers.min()), float(numbers.max())
    span = (high - low) or abs(high) or 1.0
    wide_low, wide_high = low - margin * span, high + margin * span
    if low >= 0:
        wide_low = max(0.0, wide_low)
    if whole:
        wide_low, wide_high = math.floor(wide_low), math.ceil(wide_high)
    return {**doc, "dtype": "int" if whole else "float", "low": _number(wide_low), "high": _number(wide_high)}


def infer_spec(frame: pd.DataFrame, label: str, *, margin: float = 0.5, description: str = "") -> dict[str, Any]:
    """The spec document (``model.yaml``'s content) inferred from ``frame``."""
    if frame.empty:
        raise OnboardError("the sample has no rows")
    if label not in frame.columns:
        raise OnboardError(f"the sample has no column {label!r}; its columns: {', '.join(map(str, frame.columns))}")
    columns = [str(c) for c in frame.columns]
    id_column = next(
        (
            c
            for c in columns
            if c != label
            and frame[c].dtype == object
            and frame[c].nunique() == len(frame)
            and len(frame) > MAX_CATEGORIES
        ),
        None,
    )
    features = [_column(c, frame[c], margin, label=False) for c in columns if c not in (label, id_column)]
    target = _column(label, frame[label], margin, label=True)
    if target.get("dtype") == "category":
        classes = target["allowed"]
        if len(classes) < 2:
            raise OnboardError(f"the label {label!r} has a single value {classes}: nothing to learn")
        task = "binary" if len(classes) == 2 else "multiclass"
        estimator = {"factory": "ml.estimators:logistic", "params": {"C": 1.0}}
        promotion = {
            "metric": "auc",
            "confidence": 0.95,
            "min_improvement": 0.0,
            "floor": {"metric": "auc", "value": 0.7},
        }
    else:
        task = "regression"
        estimator = {"factory": "ml.estimators:ridge", "params": {}}
        promotion = {
            "metric": "rmse",
            "confidence": 0.95,
            "min_improvement": 0.0,
            "floor": {"metric": "r2", "value": 0.3},
        }
    schema: dict[str, Any] = {"features": features, "label": target}
    if id_column:
        schema["id"] = id_column
    schema["min_rows"] = 20
    doc: dict[str, Any] = {"task": task}
    if description:
        doc["description"] = description
    doc.update(
        schema=schema,
        estimator=estimator,
        promotion=promotion,
        drift={"psi": 0.25, "ks_pvalue": 0.001},
        data={"policy": "all"},
    )
    return doc


def spec_yaml(doc: dict[str, Any], source: str) -> str:
    """The document as the YAML a person reviews, one column per line."""
    header = (
        f"# Inferred from {source} by `python -m cli models new`: review the ranges, allowed values and\n"
        "# nullability (they are the contract every drop is checked against), then commit this folder.\n"
    )
    schema = doc["schema"]
    lines = [header]
    for key in ("task", "description"):
        if key in doc:
            lines.append(yaml.safe_dump({key: doc[key]}, sort_keys=False, allow_unicode=True))
    lines.append("schema:\n  features:\n")
    for feature in schema["features"]:
        lines.append("    - " + _flow(feature) + "\n")
    lines.append("  label: " + _flow(schema["label"]) + "\n")
    for key in ("id", "min_rows"):
        if key in schema:
            lines.append(f"  {key}: {_flow([schema[key]])[1:-1]}\n")
    for key in ("estimator", "promotion", "drift", "data"):
        lines.append(f"{key}: {_flow(doc[key])}\n")
    return "".join(lines)


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000, allow_unicode=True).strip()
