"""Models added to a test's copy of the app by writing a spec folder only, as a user onboards one: no code change.

``iris-forest`` is a multiclass random forest on scikit-learn's iris data with its own sample file;
``iris-strict`` is the same model with release thresholds no endpoint can meet, so its release fails in QA.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.datasets import load_iris

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")

SPEC = """\
task: multiclass
description: "iris species from four flower measurements (a spec folder written by the test)"
schema:
  features:
    - {{name: sepal_length, dtype: float, low: 0, high: 20}}
    - {{name: sepal_width, dtype: float, low: 0, high: 20}}
    - {{name: petal_length, dtype: float, low: 0, high: 20}}
    - {{name: petal_width, dtype: float, low: 0, high: 20}}
  label: {{name: species, dtype: category, allowed: [0, 1, 2]}}
  min_rows: 20
estimator: {{factory: "sklearn.ensemble:RandomForestClassifier", params: {{n_estimators: 30, random_state: 0}}}}
metrics: [log_loss, accuracy, auc]
promotion: {{metric: log_loss, confidence: 0.95, min_improvement: 0.0, floor: {{metric: accuracy, value: 0.8}}}}
drift: {{psi: 0.25, ks_pvalue: 0.001}}
data: {{policy: all}}
schedule: "0 0 3 * * *"
release:
  steps:
    - {{step: qa, api_test: {{requests: 20, max_p99_ms: {p99}, max_error_rate: 0.01}}}}
    - {{step: full, api_test: {{requests: 20, max_p99_ms: {p99}, max_error_rate: 0.01}}}}
sample: {{file: sample.csv}}
"""


def iris_frame() -> pd.DataFrame:
    bunch = load_iris(as_frame=True)
    frame = bunch.frame.rename(columns=dict(zip(bunch.feature_names, FEATURES, strict=True)))
    return frame.rename(columns={"target": "species"})[[*FEATURES, "species"]].astype("float64")


def write_iris_specs(models: Path) -> None:
    """``iris-forest`` (releasable) and ``iris-strict`` (a QA p99 limit of a microsecond: its release fails)."""
    for name, p99 in (("iris-forest", 2000), ("iris-strict", 0.001)):
        folder = models / name
        folder.mkdir(parents=True)
        (folder / "model.yaml").write_text(SPEC.format(p99=p99))
        iris_frame().sample(frac=1.0, random_state=1).head(40).to_csv(folder / "sample.csv", index=False)
