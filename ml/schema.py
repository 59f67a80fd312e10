"""The data contract: column names, types, allowed ranges and the label, declared once.

To train on another table, declare another ``Schema`` (a list of ``Column`` and a label) and point
``ACTIVE_SCHEMA`` at it; validation, training, scoring and drift checks all read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One numeric column and the range a plausible value falls in (inclusive)."""

    name: str
    low: float
    high: float
    description: str = ""
    integer: bool = False


@dataclass(frozen=True)
class Schema:
    name: str
    features: tuple[Column, ...]
    label: Column
    min_rows: int = 20

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    @property
    def columns(self) -> list[str]:
        return [*self.feature_names, self.label.name]

    def column(self, name: str) -> Column:
        for col in (*self.features, self.label):
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
