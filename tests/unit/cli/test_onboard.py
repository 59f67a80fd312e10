"""`python -m cli models new`: a spec inferred from a sample, written for review, that the app's checks accept."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cli.__main__ import main
from ml.sample import breast_cancer_frame, diabetes_frame
from ml.schema import Dtype, Task
from ml.spec import load_spec


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "sample.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_a_regression_sample_gives_a_spec_the_app_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = _csv(tmp_path, diabetes_frame())
    code = main(["--root", str(tmp_path), "models", "new", "my-diabetes", "--from", str(sample), "--label", "target"])
    assert code == 0 and "review it" in capsys.readouterr().out
    spec = load_spec(tmp_path / "models" / "my-diabetes")
    assert spec.task is Task.REGRESSION and spec.estimator.factory == "ml.estimators:ridge"
    assert spec.schema.columns == list(diabetes_frame().columns)
    frame = diabetes_frame()
    bmi = spec.schema.column("bmi")
    span = frame["bmi"].max() - frame["bmi"].min()
    assert bmi.kind is Dtype.FLOAT
    assert bmi.low == pytest.approx(max(0.0, frame["bmi"].min() - 0.5 * span), abs=1e-6)
    assert bmi.high == pytest.approx(frame["bmi"].max() + 0.5 * span, abs=1e-6)
    assert spec.schema.column("age").kind is Dtype.INT
    assert spec.schema.column("sex").kind is Dtype.INT  # coded 1/2, not a 0/1 truth value


def test_a_classification_sample_gives_a_classifier(tmp_path: Path) -> None:
    sample = _csv(tmp_path, breast_cancer_frame())
    assert main(["--root", str(tmp_path), "models", "new", "tumours", "--from", str(sample), "--label", "target"]) == 0
    spec = load_spec(tmp_path / "models" / "tumours")
    assert spec.task is Task.BINARY and spec.schema.classes == (0.0, 1.0)
    assert spec.estimator.factory == "ml.estimators:logistic" and spec.promotion.metric == "auc"


def test_text_categories_missing_values_truth_values_and_an_id_are_inferred(tmp_path: Path) -> None:
    rows = 40
    frame = pd.DataFrame(
        {
            "patient": [f"p-{i:03d}" for i in range(rows)],
            "region": ["north", "south"] * (rows // 2),
            "smoker": ["yes", "no", "no", "yes"] * (rows // 4),
            "weight": [60.5 + i if i % 7 else None for i in range(rows)],
            "outcome": ["a", "b", "c", "a"] * (rows // 4),
        }
    )
    sample = _csv(tmp_path, frame)
    assert main(["--root", str(tmp_path), "models", "new", "mixed", "--from", str(sample), "--label", "outcome"]) == 0
    spec = load_spec(tmp_path / "models" / "mixed")
    assert spec.schema.id == "patient" and spec.task is Task.MULTICLASS
    assert spec.schema.column("region").allowed == ("north", "south")
    assert spec.schema.column("smoker").kind is Dtype.BOOL
    assert spec.schema.column("weight").nullable
    assert spec.schema.classes == ("a", "b", "c")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad_Name", "--label", "target"], "cannot name a model"),
        (["ok-name", "--label", "nope"], "has no column 'nope'"),
        (["ok-name", "--label", "target", "--margin", "-1"], "--margin must be from 0 to 10"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    sample = _csv(tmp_path, diabetes_frame())
    name, *rest = args
    assert main(["--root", str(tmp_path), "models", "new", name, "--from", str(sample), *rest]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_a_label_of_one_value_and_an_existing_spec_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = _csv(tmp_path, diabetes_frame().assign(target=1), "one.csv")
    assert main(["--root", str(tmp_path), "models", "new", "flat", "--from", str(one), "--label", "target"]) == 1
    assert "single value" in capsys.readouterr().err
    good = _csv(tmp_path, diabetes_frame())
    args = ["--root", str(tmp_path), "models", "new", "twice", "--from", str(good), "--label", "target"]
    assert main(args) == 0
    written = (tmp_path / "models" / "twice" / "model.yaml").read_text()
    assert main(args) == 1 and "pass --force" in capsys.readouterr().err
    assert (tmp_path / "models" / "twice" / "model.yaml").read_text() == written
    assert main([*args, "--force"]) == 0
