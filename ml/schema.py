"""The data contract of a model: its columns with their type, allowed range or values and nullability, the label, an
optional id column, and the task.

A model declares its contract in its spec (``models/<name>/model.yaml``), which ``ml.spec`` reads into a ``Schema``.
Validation, training, scoring and drift checks read ``ACTIVE_SCHEMA``: ``DIABETES``, the shipped sample's contract and
the one ``models/diabetes-ridge`` declares (a test keeps the two equal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Dtype(StrEnum):
    """A column's type. ``category`` takes one of its ``allowed`` values (numbers or text)."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    CATEGORY = "category"


class Task(StrEnum):
    REGRESSION = "regression"
    BINARY = "binary"
    MULTICLASS = "multiclass"

    @property
    def classification(self) -> bool:
        return self is not Task.REGRESSION


Value = float | str


@dataclass(frozen=True)
class Column:
    """One column. Numbers fall in ``[low, high]`` (inclusive); a ``category`` (or a number column with ``allowed``)
    takes one of ``allowed``; a ``nullable`` column may have missing values."""

    name: str
    low: float = -math.inf
    high: float = math.inf
    description: str = ""
    integer: bool = False
    dtype: Dtype | None = None
    allowed: tuple[Value, ...] = ()
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.dtype is None:
            object.__setattr__(self, "dtype", Dtype.INT if self.integer else Dtype.FLOAT)
        if self.dtype is Dtype.INT:
            object.__setattr__(self, "integer", True)
        if self.dtype is Dtype.BOOL:
            object.__setattr__(self, "low", 0.0)
            object.__setattr__(self, "high", 1.0)
            object.__setattr__(self, "integer", True)

    @property
    def kind(self) -> Dtype:
        return self.dtype or Dtype.FLOAT

    @property
    def textual(self) -> bool:
        """A category whose values are text: read as strings, checked against ``allowed`` (not a number)."""
        return self.kind is Dtype.CATEGORY and any(isinstance(v, str) for v in self.allowed)

    @property
    def numeric_allowed(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.allowed if not isinstance(v, str))

    @property
    def has_range(self) -> bool:
        return math.isfinite(self.low) or math.isfinite(self.high)


@dataclass(frozen=True)
class Schema:
    name: str
    features: tuple[Column, ...]
    label: Column
    min_rows: int = 20
    #: a column that names each row (kept with it, never a feature)
    id: str | None = None
    task: Task = Task.REGRESSION

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    @property
    def checked(self) -> tuple[Column, ...]:
        """The columns checked as values (features and the label; the id column is checked apart)."""
        return (*self.features, self.label)

    @property
    def columns(self) -> list[str]:
        """Every column a drop must have, in order: the id (if any), the features, the label."""
        return [*([self.id] if self.id else []), *self.feature_names, self.label.name]

    @property
    def value_columns(self) -> list[str]:
        return [c.name for c in self.checked]

    @property
    def textual(self) -> bool:
        return any(c.textual for c in self.checked)

    @property
    def classes(self) -> tuple[Value, ...]:
        """A classifier's classes (its label's allowed values), in order."""
        return self.label.allowed if self.task.classification else ()

    def column(self, name: str) -> Column:
        for col in self.checked:
            if col.name == name:
                return col
        raise KeyError(name)


#: scikit-learn's diabetes data in raw units (``load_diabetes(scaled=False)``); ranges are wide
#: physiological bounds, not the sample's min/max, so real new patients are accepted.
DIABETES = Schema(
    name="diabetes",
    features=(
        Column("age", 0, 120, "age in years", integer=True),
        Column("sex", 1, 2, "sex, coded 1 or 2", integer=True),
        Column("bmi", 10, 80, "body mass index"),
        Column("bp", 30, 250, "average blood pressure"),
        Column("s1", 50, 500, "tc, total serum cholesterol"),
        Column("s2", 10, 400, "ldl, low-density lipoproteins"),
        Column("s3", 5, 200, "hdl, high-density lipoproteins"),
        Column("s4", 0.5, 20, "tch, total cholesterol / HDL"),
        Column("s5", 2, 8, "ltg, log of serum triglycerides level"),
        Column("s6", 30, 200, "glu, blood sugar level"),
    ),
    label=Column("target", 0, 500, "disease progression one year after baseline"),
)

ACTIVE_SCHEMA = DIABETES
