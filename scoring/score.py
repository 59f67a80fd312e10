"""The model behind Azure ML's standard path: ``init()`` / ``run()`` under ``azureml-inference-server-http``.

For teams deploying with ``code_configuration`` (this folder as the code, ``score.py`` as the scoring script) and
an environment with ``azureml-inference-server-http`` (``environment.yml``). Azure ML uploads this folder alone and
the server loads this file as a module of its own (``entry_module``) from wherever the folder landed, so the
package name ``scoring`` is not importable there: the sibling modules are loaded from this file's folder, under a
private name, whatever the folder is called. The scoring is the server's own (same contract, validation, model).

``init()`` loads the MLflow model found under ``AZUREML_MODEL_DIR``; ``run(raw)`` takes ``{"data": [[...], ...]}``
and returns ``{"predictions": [...], "model_version": ...}``; a bad request gets a 4xx ``AMLResponse`` with
``{"error", "detail"}`` naming the problem, never a 200.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from azureml_inference_server_http.api.aml_response import AMLResponse  # type: ignore[import-not-found]

MAX_ROWS = 1000
_PRIVATE_NAME = "_scoring_code"


def _package() -> str:
    """The name under which this folder's modules import: the package's own when imported as part of it."""
    if __package__:
        return __package__
    if _PRIVATE_NAME not in sys.modules:
        here = Path(__file__).resolve().parent
        spec = importlib.util.spec_from_file_location(
            _PRIVATE_NAME, here / "__init__.py", submodule_search_locations=[str(here)]
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load the scoring modules from {here}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[_PRIVATE_NAME] = module
        spec.loader.exec_module(module)
    return _PRIVATE_NAME


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{_package()}.{name}")


_model: Any = None


def init() -> None:
    global _model
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set: Azure ML sets it to the registered model's folder")
    model = _module("model")
    _model = model.load_model(Path(model_dir), model.default_version(model_dir))


def run(raw: str) -> Any:
    if _model is None:
        return AMLResponse({"error": "init() has not run"}, 503, json_str=True)
    validation = _module("validation")
    try:
        batch = validation.parse_rows(raw.encode(), _model.contract, MAX_ROWS)
    except validation.RequestError as exc:
        return AMLResponse({"error": exc.message, "detail": exc.detail}, exc.status, json_str=True)
    predictions = _model.predict_batch(batch)
    bad = _module("model").first_non_finite(predictions)
    if bad is not None:
        message = (
            f"row {bad}: the prediction is not a finite number: the row's values are beyond what the model can score"
        )
        return AMLResponse({"error": message, "detail": {"row": bad}}, 422, json_str=True)
    return {"predictions": [float(p) for p in predictions], "model_version": _model.version}
