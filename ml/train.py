"""Training: ``python -m ml.train --data PATH_OR_FOLDER... --output DIR [--alpha A | --spec MODEL_FOLDER]``.

With ``--spec`` (a folder ``models/<name>/`` holding ``model.yaml``) the spec decides: its schema validates the
data, its estimator factory builds the model with its parameters, and its task decides the metrics (``ml.metrics``:
a classifier is scored by its class probabilities, and its holdout is stratified by class). Without it, the
default model: scaling + ridge on the diabetes contract.

The same entry point runs as a local subprocess job and as the Azure ML command job. It writes ``DIR/model``
(MLflow model, with its data contract ``schema.json`` so a server needs nothing else to serve it),
``DIR/metrics.json``, ``DIR/holdout.csv`` and ``DIR/holdout_ids.json``.
The holdout split is seeded from the data's hash, so the same data always gives the same metrics.
When ``MLFLOW_TRACKING_URI`` is set (Azure ML sets it inside a job) params and metrics go to MLflow too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

from ml import models
from ml.data import read_paths
from ml.errors import DataValidationError, TrainingError
from ml.metrics import metrics_for, scores
from ml.schema import ACTIVE_SCHEMA, Schema
from ml.spec import ModelSpec, SpecDefaults, SpecError, load_spec
from ml.validation import validate


@dataclass(frozen=True)
class TrainResult:
    output: Path
    metrics: dict[str, Any]
    holdout_ids: list[str]


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows sorted by every column: the same data gives the same table whatever the file order."""
    return frame.sort_values(list(frame.columns), kind="mergesort").reset_index(drop=True)


def data_hash(frame: pd.DataFrame) -> str:
    """sha256 of the canonical table, independent of file order and format."""
    text = canonical(frame).to_csv(index=False, float_format="%.10g")
    return hashlib.sha256(text.encode()).hexdigest()


def row_ids(frame: pd.DataFrame) -> list[str]:
    return [
        hashlib.sha1(",".join(f"{v:.10g}" for v in row).encode()).hexdigest() for row in frame.to_numpy(dtype=float)
    ]


def load_training_data(paths: list[Path], schema: Schema = ACTIVE_SCHEMA) -> pd.DataFrame:
    """Read and validate every file; raise ``DataValidationError`` with all problems of the first bad one."""
    frames = []
    for name, data in read_paths(paths):
        report = validate(data, name, schema=schema)
        if not report.ok or report.frame is None:
            raise DataValidationError(report)
        frames.append(report.frame)
    combined = pd.concat(frames, ignore_index=True)
    if len(combined) < schema.min_rows * 2:
        raise TrainingError(
            f"training data has {len(combined)} rows; at least {schema.min_rows * 2} are needed to train and hold out"
        )
    return combined


def metrics_of(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {
        "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


def train(
    data: list[Path], output: Path, alpha: float | None = None, test_size: float = 0.2, schema: Schema = ACTIVE_SCHEMA
) -> TrainResult:
    """Train the default model (scaling + ridge) on ``data``."""
    frame = canonical(load_training_data(data, schema))
    digest = data_hash(frame)
    train_rows, holdout = train_test_split(frame, test_size=test_size, random_state=int(digest[:8], 16))
    features, label = schema.feature_names, schema.label.name
    model = models.make_estimator(alpha).fit(train_rows[features], train_rows[label])
    found = metrics_of(holdout[label].to_numpy(), model.predict(holdout[features]))
    metrics: dict[str, Any] = {**found, "alpha": models.chosen_alpha(model)}
    return _finish(output, model, train_rows, holdout, schema, metrics, digest, {"alpha": alpha})


def train_spec(spec: ModelSpec, data: list[Path], output: Path, test_size: float = 0.2) -> TrainResult:
    """Train the model ``spec`` declares on ``data``: its schema, its estimator, its task's metrics."""
    schema, classification = spec.schema, spec.task.classification
    frame = canonical(load_training_data(data, schema))
    digest = data_hash(frame)
    features, label = schema.feature_names, schema.label.name
    stratify = None
    if classification:  # (validation refused a constant label) a class seen once cannot be in both halves
        stratify = frame[label] if frame[label].value_counts().min() >= 2 else None
    train_rows, holdout = train_test_split(
        frame, test_size=test_size, random_state=int(digest[:8], 16), stratify=stratify
    )
    try:
        estimator = spec.estimator_factory()(**spec.estimator.params)
    except (SpecError, ImportError, TypeError) as exc:
        raise TrainingError(f"{spec.path}: estimator {spec.estimator.factory} cannot be built: {exc}") from None
    model = estimator.fit(train_rows[features], train_rows[label])
    if classification:
        if not hasattr(model, "predict_proba"):
            raise TrainingError(
                f"{spec.estimator.factory} gives no predict_proba: a classifier must give probabilities"
            )
        output_, classes = model.predict_proba(holdout[features]), getattr(model, "classes_", None)
    else:
        output_, classes = model.predict(holdout[features]), None
    found = scores(holdout[label].to_numpy(), output_, classification=classification, classes=classes)
    metrics: dict[str, Any] = {**found, "model": spec.name, "task": spec.task.value, "spec_sha256": spec.digest}
    return _finish(output, model, train_rows, holdout, schema, metrics, digest, dict(spec.estimator.params))


def _finish(  # noqa: PLR0917 (one training's parts, written the same way for every model)
    output: Path,
    model: Any,
    train_rows: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    metrics: dict[str, Any],
    digest: str,
    params: dict[str, Any],
) -> TrainResult:
    """Write the model, its holdout rows and its metrics to ``output``; log them to MLflow inside a job."""
    features = schema.feature_names
    metrics = {
        **metrics,
        "n_train": len(train_rows),
        "n_holdout": len(holdout),
        "data_sha256": digest,
        "estimator": type(model.steps[-1][1]).__name__ if hasattr(model, "steps") else type(model).__name__,
    }
    output.mkdir(parents=True, exist_ok=True)
    model_dir = output / "model"
    if model_dir.exists():
        raise TrainingError(f"{model_dir} already exists; use an empty output folder")
    models.save(model, model_dir, train_rows[features].head(5), schema)
    ids = row_ids(holdout)
    holdout = holdout.copy()
    holdout.insert(0, "row_id", ids)
    holdout.to_csv(output / "holdout.csv", index=False)
    (output / "holdout_ids.json").write_text(json.dumps(ids))
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    if os.environ.get("MLFLOW_TRACKING_URI"):
        _log_to_mlflow(metrics, params, output)
    return TrainResult(output, metrics, ids)


def _log_to_mlflow(metrics: dict[str, Any], requested: dict[str, Any], output: Path) -> None:
    import mlflow

    params = {f"{k}_requested": ("cv" if v is None else v) for k, v in requested.items()}
    params |= {k: metrics[k] for k in ("estimator", "data_sha256", "n_train", "n_holdout", "alpha") if k in metrics}
    task_metrics = metrics_for(metrics.get("task", "regression") != "regression")
    active = mlflow.active_run()
    with mlflow.start_run(nested=active is not None):
        mlflow.log_params(params)
        mlflow.log_metrics({k: float(metrics[k]) for k in task_metrics if k in metrics})
        mlflow.log_artifact(str(output / "metrics.json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.train", description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", required=True, type=Path, help="CSV/Parquet files or folders")
    parser.add_argument("--output", required=True, type=Path, help="empty folder for the model and metrics")
    parser.add_argument("--alpha", type=float, default=None, help="ridge alpha (default: cross-validated)")
    parser.add_argument("--test-size", type=float, default=0.2, help="holdout fraction (default 0.2)")
    parser.add_argument(
        "--spec", type=Path, default=None, help="a model folder (models/<name>): train what it declares"
    )
    args = parser.parse_args(argv)
    if args.spec is not None and args.alpha is not None:
        print(
            "training failed: --alpha is the default model's; a spec gives its estimator's parameters", file=sys.stderr
        )
        return 1
    try:
        if args.spec is not None:
            result = train_spec(load_spec(args.spec, SpecDefaults()), args.data, args.output, args.test_size)
        else:
            result = train(args.data, args.output, args.alpha, args.test_size)
    except DataValidationError as exc:
        print("training data rejected:", *exc.report.messages(), sep="\n  ", file=sys.stderr)
        return 2
    except SpecError as exc:
        print(f"training failed: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, TrainingError) as exc:
        print(f"training failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"output": str(result.output), **result.metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
