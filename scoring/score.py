"""The Azure ML scoring contract, so a managed online endpoint can serve the model unchanged.

``init()`` loads the MLflow model found under ``AZUREML_MODEL_DIR``; ``run(raw)`` takes ``{"data": [[...], ...]}``
and returns ``{"predictions": [...], "model_version": ...}`` or ``{"error": ...}`` naming the problem.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from scoring.model import LoadedModel, load_model
from scoring.validation import RequestError, parse_rows

MAX_ROWS = 1000
_model: LoadedModel | None = None


def init() -> None:
    global _model
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set: Azure ML sets it to the registered model's folder")
    _model = load_model(Path(model_dir), os.environ.get("MODEL_VERSION", Path(model_dir).name))


def run(raw: str | bytes) -> dict[str, Any]:
    if _model is None:
        return {"error": "init() has not run"}
    try:
        batch = parse_rows(raw.encode() if isinstance(raw, str) else raw, MAX_ROWS)
    except RequestError as exc:
        return {"error": exc.message, "detail": exc.detail}
    return {"predictions": np.asarray(_model.predict_batch(batch)).tolist(), "model_version": _model.version}
