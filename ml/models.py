"""The model: which scikit-learn estimator is trained, and how it is saved and loaded (MLflow format).

To train another scikit-learn regressor, change ``ESTIMATOR`` (one line), e.g.
``ESTIMATOR = lambda alpha: Pipeline([("scale", StandardScaler()), ("model", GradientBoostingRegressor())])``.
Anything with ``fit``/``predict`` works: evaluation, registration, serving and drift read no model internals
(a linear pipeline is also saved as weights and a bias, which the scoring server computes without scikit-learn;
any other estimator is served through its ``predict``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml import serving_files
from ml.schema import ACTIVE_SCHEMA, Schema

ALPHAS = np.logspace(-3, 3, 13)


#: import name → distribution name, where they differ
_DISTRIBUTIONS = {"sklearn": "scikit-learn"}


def ridge(alpha: float | None) -> Pipeline:
    """Scaling + ridge; with no ``alpha`` it is chosen by cross-validation (efficient leave-one-out)."""
    model = Ridge(alpha=alpha) if alpha is not None else RidgeCV(alphas=ALPHAS)
    return Pipeline([("scale", StandardScaler()), ("model", model)])


ESTIMATOR: Callable[[float | None], Any] = ridge


def make_estimator(alpha: float | None = None) -> Any:
    return ESTIMATOR(alpha)


def chosen_alpha(model: Any) -> float | None:
    """The regularisation actually used (RidgeCV's pick), if the estimator has one."""
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    value = getattr(final, "alpha_", getattr(final, "alpha", None))
    return float(value) if value is not None else None


def save(model: Any, path: Path, sample: pd.DataFrame, schema: Schema = ACTIVE_SCHEMA) -> None:
    """Write ``model`` as an MLflow sklearn model with a column signature taken from ``sample``, and beside it the
    data contract (``schema.json``) and, for a linear model, its weights (``linear.json``): see ``ml.serving_files``.

    MLflow serialises with skops, which refuses to load types it was not told to trust; the types of the model we
    just trained are ours, so they are recorded as trusted (any scikit-learn estimator then loads back).
    The pip requirements are given (``requirements``) rather than inferred: MLflow's inference reloads the model
    in a child interpreter, which costs seconds per training job.
    """
    import mlflow.sklearn
    from mlflow.models import Model, infer_signature
    from skops.io import dumps, get_untrusted_types

    signature = infer_signature(sample, model.predict(sample))
    trusted = get_untrusted_types(data=dumps(model)) or None
    mlflow.sklearn.save_model(
        model, str(path), signature=signature, skops_trusted_types=trusted, pip_requirements=requirements(model)
    )
    serving_files.write_schema(path, schema)
    model_file = Model.load(str(path)).flavors["sklearn"]["pickled_model"]
    serving_files.write_linear_form(path, model, schema, str(model_file))


def requirements(model: Any) -> list[str]:
    """Pinned distributions the saved model needs: scikit-learn and skops, plus the package of every step of the
    estimator (so a plugged-in ``xgboost`` or ``lightgbm`` regressor brings its own)."""
    from importlib.metadata import PackageNotFoundError, version

    steps = [step for _, step in model.steps] if isinstance(model, Pipeline) else [model]
    names = {"scikit-learn", "skops"} | {
        _DISTRIBUTIONS.get(root, root) for root in (type(step).__module__.split(".")[0] for step in steps)
    }
    pinned = []
    for name in sorted(names):
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:  # a module of this project or of the standard library
            continue
    return pinned


def load(path: Path) -> Any:
    """Load the scikit-learn estimator of an MLflow model folder (the folder holding ``MLmodel``)."""
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(find_model_dir(path)))


def find_model_dir(path: Path) -> Path:
    """``path`` itself if it holds an ``MLmodel`` file, else the single folder below it that does."""
    if (path / "MLmodel").is_file():
        return path
    found = sorted(p.parent for p in path.rglob("MLmodel"))
    if not found:
        raise FileNotFoundError(f"no MLflow model (MLmodel file) under {path}")
    return found[0]
