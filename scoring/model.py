"""A served model version, loaded once from an MLflow model folder with nothing but what serving needs.

What is read: ``MLmodel`` (YAML: flavors and signature) and the data contract (``contract``). Then, cheapest first:

1. ``linear.json`` (written at training for a linear pipeline, checked there against the estimator's ``predict``
   and bound to the model file by its sha256): the model is ``x @ w + b``, scored in plain Python for a few rows
   and with numpy for a batch. Neither scikit-learn nor MLflow is imported: a server is ready in a fraction of a
   second instead of the seconds those imports take.
2. The ``sklearn`` flavor: the estimator is read from its file as MLflow saved it (``skops`` with the model's
   trusted types, or pickle / cloudpickle), without importing MLflow, and scores through ``predict``.
3. Any other flavor: ``mlflow.pyfunc`` when MLflow is installed.

Loading runs the model's code (pickle and skops alike): serve models from your own registry only.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .contract import Contract, ContractError, from_estimator, read_contract
from .validation import Batch

LINEAR_FILE = "linear.json"
LINEAR_FORMAT = "linear/1"


class ModelLoadError(ValueError):
    """The folder is not a model this server can load and score."""


@dataclass(frozen=True)
class LoadedModel:
    version: str
    model_dir: str
    contract: Contract
    weights: tuple[float, ...] = ()
    bias: float = 0.0
    estimator: Any = None
    label: bytes = field(init=False, repr=False, compare=False)  # the version as a response header value
    version_json: bytes = field(init=False, repr=False, compare=False)  # the version as a JSON string
    tail: bytes = field(init=False, repr=False, compare=False)  # the end of an answer: its "model_version" and "}"

    def __post_init__(self) -> None:
        import orjson

        object.__setattr__(self, "label", self.version.encode())
        object.__setattr__(self, "version_json", orjson.dumps(self.version))
        object.__setattr__(self, "tail", b'"model_version":%s}' % self.version_json)

    @property
    def fast(self) -> bool:
        """Scored as weights and a bias (``linear.json``) rather than through the estimator's ``predict``."""
        return bool(self.weights)

    def predict_batch(self, batch: Batch) -> Any:
        """A checked batch's predictions: a list for a few rows (scored as sent), a float64 vector for a matrix
        (orjson writes it faster than a list it would first be turned into)."""
        return self.predict_rows(batch.rows) if batch.matrix is None else self.predict_matrix(batch.matrix)

    def predict_rows(self, rows: list[list[float]]) -> list[float]:
        """Score a few rows as sent: the dot product in plain Python beats numpy's per-call overhead."""
        if self.weights:
            weights, bias, mul = self.weights, self.bias, operator.mul
            return [sum(map(mul, row, weights)) + bias for row in rows]
        import numpy as np

        return [float(v) for v in self.predict_matrix(np.array(rows, dtype=np.float64))]

    def predict_matrix(self, matrix: Any) -> Any:
        """Score a float64 matrix (one row per request row): a float64 vector."""
        import numpy as np

        if self.weights:
            return matrix @ np.asarray(self.weights) + self.bias
        return np.asarray(_predict(self.estimator, matrix, self.contract), dtype=np.float64).reshape(-1)


def first_non_finite(predictions: Any) -> int | None:
    """The index of the first prediction that is not a finite number (inputs beyond what the model can score, e.g.
    1e308 overflowing the dot product), or None."""
    if isinstance(predictions, list):
        if math.isfinite(sum(predictions)):  # a finite sum: every term is finite
            return None
        return next((i for i, p in enumerate(predictions) if not math.isfinite(p)), None)
    import numpy as np

    finite = np.isfinite(predictions)
    return None if finite.all() else int(np.argmin(finite))


def find_model_dir(path: Path) -> Path:
    """The MLflow model folder at ``path``: ``path`` itself, or the one folder below it that holds ``MLmodel``.

    ``AZUREML_MODEL_DIR`` is the mount root of the registered model (``.../azureml-models/<name>/<version>``) and a
    model registered from a folder sits in a folder of that name below it (``.../<version>/model/MLmodel``).
    """
    if (path / "MLmodel").is_file():
        return path
    if not path.is_dir():
        raise ModelLoadError(f"cannot load a model from {path}: it is not a folder")
    children = sorted(child for child in path.iterdir() if (child / "MLmodel").is_file())
    found = children or sorted(p.parent for p in path.rglob("MLmodel"))
    if not found:
        raise ModelLoadError(f"cannot load a model from {path}: no MLflow model (an MLmodel file) under it")
    if len(found) > 1:
        raise ModelLoadError(
            f"cannot load a model from {path}: several MLflow models under it "
            f"({', '.join(str(p) for p in found)}); point at one of them"
        )
    return found[0]


def read_mlmodel(folder: Path) -> dict[str, Any]:
    import yaml

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        doc = yaml.load((folder / "MLmodel").read_text(encoding="utf-8"), Loader=loader)
    except (OSError, yaml.YAMLError) as exc:
        raise ModelLoadError(f"cannot read {folder / 'MLmodel'}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("flavors"), dict):
        raise ModelLoadError(f"{folder / 'MLmodel'} has no flavors: not an MLflow model")
    return doc


def load_model(path: Path, version: str) -> LoadedModel:
    """Load the model at ``path`` (a model folder or a mount root above one); ``ModelLoadError`` names the problem."""
    folder = find_model_dir(path)
    mlmodel = read_mlmodel(folder)
    try:
        contract = read_contract(folder, mlmodel)
        linear = _linear_form(folder, contract) if contract is not None else None
        if linear is not None and contract is not None:
            return LoadedModel(version, str(folder), contract, linear[0], linear[1])
        estimator = _load_estimator(folder, mlmodel)
        contract = contract or from_estimator(estimator, folder)
    except ContractError as exc:
        raise ModelLoadError(str(exc)) from None
    model = LoadedModel(version, str(folder), contract, estimator=estimator)
    _check_scores(model)
    return model


def _linear_form(folder: Path, contract: Contract) -> tuple[tuple[float, ...], float] | None:
    """The weights and bias of ``linear.json`` if it is there and belongs to this model file, else None."""
    path = folder / LINEAR_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        weights = tuple(float(w) for w in doc["weights"])
        bias = float(doc["bias"])
        model_file = folder / str(doc["model_file"])
        expected_hash = str(doc["model_sha256"])
        features = tuple(str(f) for f in doc["features"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{path} is not a linear form ({type(exc).__name__}: {exc})") from None
    if doc.get("format") != LINEAR_FORMAT:
        raise ModelLoadError(f"{path}: unknown format {doc.get('format')!r} (this server reads {LINEAR_FORMAT})")
    if features != contract.names or len(weights) != contract.width:
        raise ModelLoadError(f"{path} is for the features {list(features)}, the model takes {list(contract.names)}")
    if not all(map(math.isfinite, (*weights, bias))):
        raise ModelLoadError(f"{path} holds a weight that is not a finite number")
    if model_file.parent != folder or not model_file.is_file() or _sha256(model_file) != expected_hash:
        return None  # the model file was replaced after training: serve the estimator it now holds
    return weights, bias


def _load_estimator(folder: Path, mlmodel: dict[str, Any]) -> Any:
    flavors = mlmodel["flavors"]
    sklearn_flavor = flavors.get("sklearn")
    if isinstance(sklearn_flavor, dict) and sklearn_flavor.get("pickled_model"):
        return _load_sklearn(folder, sklearn_flavor)
    try:
        import mlflow.pyfunc
    except ImportError:
        raise ModelLoadError(
            f"the model in {folder} has the flavors {sorted(flavors)}: without a sklearn flavor "
            "this server needs MLflow installed to load it"
        ) from None
    try:
        return mlflow.pyfunc.load_model(str(folder))
    except Exception as exc:  # MLflow raises MlflowException and whatever the flavor's loader raises
        raise ModelLoadError(f"cannot load the model in {folder} with MLflow: {exc}") from None


def _load_sklearn(folder: Path, flavor: dict[str, Any]) -> Any:
    path = folder / str(flavor["pickled_model"])
    serialization = str(flavor.get("serialization_format") or "pickle")
    try:
        if serialization == "skops":
            import skops.io

            return skops.io.load(path, trusted=flavor.get("skops_trusted_types") or None)
        if serialization in ("pickle", "cloudpickle"):
            import pickle

            with path.open("rb") as handle:
                return pickle.load(handle)  # a model of the endpoint's own registry
    except ImportError as exc:
        raise ModelLoadError(f"loading {path} ({serialization}) needs {exc.name}, which is not installed") from None
    except Exception as exc:  # whatever unpickling the estimator raises
        raise ModelLoadError(f"cannot load {path} ({serialization}): {type(exc).__name__}: {exc}") from None
    raise ModelLoadError(f"{path}: unknown serialization format {serialization!r}")


def _predict(estimator: Any, matrix: Any, contract: Contract) -> Any:
    """The estimator's predictions: from a frame of the contract's columns when pandas is installed (as the model
    was fitted, and as MLflow's pyfunc models take it), else from the matrix."""
    try:
        import pandas as pd
    except ImportError:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return estimator.predict(matrix)
    return estimator.predict(pd.DataFrame(matrix, columns=list(contract.names)))


def _check_scores(model: LoadedModel) -> None:
    """Score a few rows inside the contract's ranges once: a model that cannot is refused at load, not per request."""
    import numpy as np

    contract = model.contract
    low = np.array([f.low if math.isfinite(f.low) else 0.0 for f in contract.features])
    high = np.array([f.high if math.isfinite(f.high) else 1.0 for f in contract.features])
    rows = low + np.random.default_rng(0).random((16, contract.width)) * (high - low)
    try:
        got = model.predict_matrix(rows)
    except Exception as exc:  # a model's predict may raise anything
        raise ModelLoadError(
            f"the model in {model.model_dir} cannot score {contract.width} features ({type(exc).__name__}: {exc})"
        ) from None
    if got.shape != (len(rows),):
        raise ModelLoadError(
            f"the model in {model.model_dir} gave {got.shape} predictions for {len(rows)} rows: "
            "the server serves one number per row"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_version(model_dir: str) -> str:
    """The version label of a model mounted by Azure ML (``.../azureml-models/<name>/<version>``): ``MODEL_VERSION``
    if set, else the mount folder's name."""
    return os.environ.get("MODEL_VERSION") or Path(model_dir.rstrip("/")).name or "1"
