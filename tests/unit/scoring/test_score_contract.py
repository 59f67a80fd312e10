"""score.py: the Azure ML init()/run() contract, and the folded fast path against predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Lasso, Ridge

from ml.models import load
from ml.sample import diabetes_frame
from scoring import score
from scoring.model import fold_linear, load_model, probe_rows
from tests.support.scoring import save_model


def test_init_and_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = save_model(Ridge(alpha=1.0), tmp_path / "azureml-models" / "diabetes" / "3" / "model")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path / "azureml-models"))
    score.init()
    rows = diabetes_frame().drop(columns=["target"]).head(3)
    out = score.run(json.dumps({"data": rows.to_numpy().tolist()}))
    np.testing.assert_allclose(out["predictions"], load(model_dir).predict(rows))
    assert "expected 10 numbers" in score.run('{"data": [[1]]}')["error"]


@pytest.mark.parametrize("estimator", [Ridge(alpha=3.0), Lasso(alpha=0.5)])
def test_folded_linear_model_matches_predict(tmp_path: Path, estimator: object) -> None:
    path = save_model(estimator, tmp_path / "m")
    served = load_model(path, "1")
    assert served.fast
    rows = probe_rows(200, seed=3)
    np.testing.assert_allclose(served.predict(rows), served.estimator.predict(
        __import__("pandas").DataFrame(rows, columns=diabetes_frame().columns[:-1])), rtol=1e-9)
    np.testing.assert_allclose(served.predict_rows(rows[:3].tolist()), served.predict(rows[:3]), rtol=1e-12)
    assert fold_linear(served.estimator) is not None
