"""Loading a served model from its folder alone: the linear form, the estimator, the contract, Azure ML's layout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Lasso, Ridge
from sklearn.tree import DecisionTreeRegressor

from ml.models import load
from ml.sample import diabetes_frame
from ml.schema import ACTIVE_SCHEMA
from scoring.model import ModelLoadError, find_model_dir, load_model
from tests.support.azurite import ROOT
from tests.support.scoring import save_model

FEATURES = diabetes_frame().drop(columns=["target"])
ROWS = FEATURES.head(50)


@pytest.mark.parametrize("estimator", [Ridge(alpha=3.0), Lasso(alpha=0.5)])
def test_a_linear_model_is_served_from_its_weights_and_matches_predict(tmp_path: Path, estimator: object) -> None:
    path = save_model(estimator, tmp_path / "m")
    served = load_model(path, "1")
    assert served.fast and served.estimator is None
    expected = load(path).predict(ROWS)
    np.testing.assert_allclose(served.predict_matrix(ROWS.to_numpy()), expected, rtol=1e-9)
    np.testing.assert_allclose(served.predict_rows(ROWS.head(3).to_numpy().tolist()), expected[:3], rtol=1e-9)


def test_the_linear_form_needs_neither_scikit_learn_nor_mlflow_nor_numpy(tmp_path: Path) -> None:
    path = save_model(Ridge(alpha=1.0), tmp_path / "m")
    probe = (
        "import sys; from pathlib import Path; from scoring.model import load_model; "
        f"m = load_model(Path({str(path)!r}), '1'); print(m.predict_rows([[50, 1, 25, 90, 180, 100, 50, 4, 4.5, "
        "90]])[0]); print(sorted(n for n in ('sklearn', 'mlflow', 'pandas', 'scipy', 'numpy') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    value, imported = done.stdout.splitlines()
    row = FEATURES.head(0).copy()
    row.loc[0] = [50, 1, 25, 90, 180, 100, 50, 4, 4.5, 90]
    assert float(value) == pytest.approx(load(path).predict(row)[0], rel=1e-9)
    assert imported == "[]"


def test_a_model_file_changed_after_training_is_served_by_its_estimator(tmp_path: Path) -> None:
    ridge, other = save_model(Ridge(alpha=1.0), tmp_path / "a"), save_model(Ridge(alpha=80.0), tmp_path / "b")
    shutil.copy(other / "model.skops", ridge / "model.skops")  # linear.json now describes a file that is gone
    served = load_model(ridge, "1")
    assert not served.fast
    np.testing.assert_allclose(served.predict_matrix(ROWS.to_numpy()), load(other).predict(ROWS), rtol=1e-9)


def test_a_non_linear_model_is_served_by_its_estimator(tmp_path: Path) -> None:
    path = save_model(DecisionTreeRegressor(max_depth=4, random_state=0), tmp_path / "tree")
    assert not (path / "linear.json").exists()
    served = load_model(path, "2")
    assert not served.fast
    np.testing.assert_allclose(served.predict_matrix(ROWS.to_numpy()), load(path).predict(ROWS))


def test_the_contract_comes_from_the_model_folder(tmp_path: Path) -> None:
    path = save_model(Ridge(), tmp_path / "m")
    contract = load_model(path, "1").contract
    assert contract.names == tuple(ACTIVE_SCHEMA.feature_names) and contract.label == "target"
    assert [(f.low, f.high) for f in contract.features] == [(c.low, c.high) for c in ACTIVE_SCHEMA.features]
    (path / "schema.json").unlink()  # a model trained elsewhere: its signature gives names, no ranges
    bare = load_model(path, "1").contract
    assert bare.names == contract.names and not bare.has_ranges and bare.label is None


def test_a_schema_that_contradicts_the_signature_is_refused(tmp_path: Path) -> None:
    path = save_model(Ridge(), tmp_path / "m")
    doc = json.loads((path / "schema.json").read_text())
    doc["features"][0], doc["features"][1] = doc["features"][1], doc["features"][0]
    (path / "schema.json").write_text(json.dumps(doc))
    with pytest.raises(ModelLoadError, match="must agree, in order"):
        load_model(path, "1")


def test_a_non_numeric_feature_is_refused(tmp_path: Path) -> None:
    path = save_model(Ridge(), tmp_path / "m")
    doc = json.loads((path / "schema.json").read_text())
    doc["features"][2]["type"] = "string"
    (path / "schema.json").write_text(json.dumps(doc))
    with pytest.raises(ModelLoadError, match="feature 'bmi' is of type 'string'"):
        load_model(path, "1")


def test_azure_ml_mount_layouts(tmp_path: Path) -> None:
    mount = tmp_path / "azureml-models" / "diabetes" / "3"
    folder = save_model(Ridge(), mount / "model")
    assert find_model_dir(mount) == folder  # a model registered from a folder sits in that folder
    assert find_model_dir(folder) == folder
    save_model(Ridge(), mount / "other")
    with pytest.raises(ModelLoadError, match="several MLflow models"):
        find_model_dir(mount)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no MLflow model"):
        find_model_dir(tmp_path / "empty")


def test_a_model_saved_without_signature_or_schema_takes_the_columns_it_was_fitted_with(tmp_path: Path) -> None:
    import mlflow.sklearn

    target = diabetes_frame()["target"]
    mlflow.sklearn.save_model(Ridge().fit(FEATURES, target), str(tmp_path / "named"))
    named = load_model(tmp_path / "named", "1")
    assert named.contract.names == tuple(FEATURES.columns) and not named.contract.has_ranges
    np.testing.assert_allclose(named.predict_matrix(ROWS.to_numpy()), load(tmp_path / "named").predict(ROWS))
    mlflow.sklearn.save_model(Ridge().fit(FEATURES.to_numpy(), target), str(tmp_path / "anonymous"))
    with pytest.raises(ModelLoadError, match="declares no inputs: save it with a signature"):
        load_model(tmp_path / "anonymous", "1")
