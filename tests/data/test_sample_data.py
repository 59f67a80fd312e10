"""Data tests of the build pipeline: the shipped sample conforms to the contract and the reference."""

from __future__ import annotations

from ml.sample import diabetes_frame, reference_frame, synthetic
from ml.schema import ACTIVE_SCHEMA
from ml.validation import validate


def test_sample_conforms_to_the_schema() -> None:
    frame = diabetes_frame()
    report = validate(frame.to_csv(index=False).encode(), "sample.csv")
    assert report.ok, report.messages()
    assert [p for p in report.problems if p.severity == "error"] == []
    assert report.rows == 442


def test_every_column_is_within_its_declared_range() -> None:
    frame = diabetes_frame()
    for column in (*ACTIVE_SCHEMA.features, ACTIVE_SCHEMA.label):
        values = frame[column.name]
        assert values.between(column.low, column.high).all(), column.name
        if column.integer:
            assert (values == values.round()).all(), column.name


def test_label_varies_and_sample_matches_the_reference_distribution() -> None:
    frame = diabetes_frame()
    assert frame[ACTIVE_SCHEMA.label.name].nunique() > 100
    report = validate(frame.to_csv(index=False).encode(), "sample.csv", reference=reference_frame())
    assert not [d for d in report.drift if d.drifted]


def test_synthetic_drops_conform_without_drift_and_recalibrate_the_label() -> None:
    base = synthetic(2000, seed=7)
    shifted = synthetic(2000, seed=7, shift=100)
    assert base.equals(synthetic(2000, seed=7))  # deterministic per seed
    report = validate(shifted.to_csv(index=False).encode(), "synthetic.csv", reference=reference_frame())
    assert report.ok and [p.code for p in report.problems if p.column != ACTIVE_SCHEMA.label.name] == []
    assert not base.duplicated().any()
    label = ACTIVE_SCHEMA.label.name
    assert (shifted[label] - base[label]).round(6).between(0, 100).all()
    assert (shifted[label] - base[label]).median() == 100
