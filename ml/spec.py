"""A model declared as data: ``models/<name>/model.yaml``, read and checked here.

The spec holds the data contract (features with dtype, range or allowed values, nullability; the label; an optional
id column), the task, the estimator (an importable factory and its parameters, or ``build()`` of a ``model.py``
beside the spec), the metrics, the promotion policy, the drift thresholds, the training-data policy, the retrain
schedule and the release policy. ``load_spec`` returns the checked ``ModelSpec`` or raises ``SpecError`` listing
every problem with its file, key, line, what was expected and what was found. The shipped specs (``models/``) use
most keys; an example::

    task: binary
    schema:
      features:
        - {name: radius, dtype: float, low: 0, high: 50}
        - {name: smoker, dtype: bool}
        - {name: region, dtype: category, allowed: [north, south], nullable: true}
      label: {name: malignant, dtype: category, allowed: [0, 1]}
      id: patient_id
    estimator: {factory: ml.estimators:logistic, params: {C: 1.0}}
    promotion: {metric: auc, confidence: 0.95, min_improvement: 0.0, floor: {metric: auc, value: 0.8}}

Settings give the defaults of what a spec leaves out (``SpecDefaults``). Loading imports nothing of the estimator's
code but checks that its module exists; ``estimator()`` builds it (at training).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from messages.runs import PIPELINE_APPROVER
from ml.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS, higher_is_better
from ml.ncrontab import Schedule, ScheduleError
from ml.schema import Column, Dtype, Schema, Task, Value

SPEC_FILE = "model.yaml"
MODEL_FILE = "model.py"
#: a model's name: its folder, its registry name, part of blob paths, run ids and endpoint names
NAME = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\- ]{0,127}$")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")

DATA_POLICIES = ("all", "last", "window")
#: the release steps this version runs, in this order (the default policy)
RELEASE_STEPS = ("qa", "full")
#: a step that may stand between ``qa`` and ``full``: the release waits for a person's decision
APPROVAL_STEP = "approval"
#: an approval's longest wait, and how ``timeout`` reads (``90s``, ``30m``, ``72h``, ``10d``)
MAX_APPROVAL_TIMEOUT_S = 365 * 86_400.0
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([smhd])$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
MAX_APPROVERS = 100
TOP_KEYS = {
    "name",
    "task",
    "description",
    "schema",
    "estimator",
    "metrics",
    "promotion",
    "drift",
    "data",
    "schedule",
    "release",
    "sample",
}


class SpecError(ValueError):
    """A spec that cannot be used; ``problems`` holds one line per problem (file, key, expected, found)."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: {len(problems)} problem(s): " + "; ".join(problems))
        self.path = path
        self.problems = problems


@dataclass(frozen=True)
class SpecDefaults:
    """What a spec may leave out, from the settings (``backends.settings``)."""

    confidence: float = 0.95
    min_improvement: float = 0.0
    regression_metric: str = "rmse"
    r2_floor: float = 0.3
    psi: float = 0.25
    ks_pvalue: float = 0.001
    schedule: str = "0 0 2 * * *"
    api_requests: int = 50
    max_p99_ms: float = 500.0
    production_max_p99_ms: float | None = None
    max_error_rate: float = 0.01


@dataclass(frozen=True)
class Estimator:
    """``factory`` is ``module:callable`` (or ``model.py:build``, beside the spec), called with ``params``."""

    factory: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Promotion:
    metric: str
    confidence: float
    min_improvement: float
    floor_metric: str
    floor: float

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.metric)


@dataclass(frozen=True)
class Drift:
    psi: float
    ks_pvalue: float


@dataclass(frozen=True)
class DataPolicy:
    policy: str = "all"
    last: int = 0
    days: float = 0.0


@dataclass(frozen=True)
class ApiTest:
    requests: int
    max_p99_ms: float
    max_error_rate: float


@dataclass(frozen=True)
class Approval:
    """An approval step: one of ``approvers`` approves or rejects within ``timeout_s``."""

    approvers: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True)
class ReleaseStep:
    step: str
    #: the API tests of ``qa`` and ``full``; None for ``approval``
    api_test: ApiTest | None = None
    approval: Approval | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    folder: Path
    task: Task
    schema: Schema
    estimator: Estimator
    metrics: tuple[str, ...]
    promotion: Promotion
    drift: Drift
    data: DataPolicy
    schedule: str
    release: tuple[ReleaseStep, ...]
    description: str = ""
    #: where the model's sample data comes from: ``{"loader": "module:function"}`` or ``{"file": "x.csv"}``
    sample: dict[str, str] = field(default_factory=dict)
    #: sha256 of the spec folder's files (lineage: which spec trained a version)
    digest: str = ""

    @property
    def path(self) -> Path:
        return self.folder / SPEC_FILE

    def estimator_factory(self) -> Callable[..., Any]:
        """The estimator's factory, imported now (``module:callable`` or ``model.py:build`` beside the spec)."""
        module_name, _, attribute = self.estimator.factory.partition(":")
        if module_name == MODEL_FILE:
            loaded = _load_model_file(self.folder / MODEL_FILE, self.name)
        else:
            loaded = importlib.import_module(module_name)
        factory = getattr(loaded, attribute, None)
        if not callable(factory):
            raise SpecError(self.path, [f"estimator.factory: {self.estimator.factory} is not a callable"])
        return factory

    def sample_frame(self) -> Any:
        """The model's sample data (a ``pandas.DataFrame``), or None when the spec names none."""
        import pandas as pd

        if "file" in self.sample:
            path = self.folder / self.sample["file"]
            return pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_csv(path)
        if "loader" in self.sample:
            module_name, _, attribute = self.sample["loader"].partition(":")
            return getattr(importlib.import_module(module_name), attribute)()
        return None


def _load_model_file(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"mlops_model_{name.replace('-', '_')}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- reading YAML with the line of every key ---------------------------------------------------


def _plain(node: yaml.Node, where: str, lines: dict[str, int]) -> Any:
    lines[where] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            out[key] = _plain(value_node, f"{where}.{key}" if where else key, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, f"{where}[{i}]", lines) for i, item in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node)


def read_yaml(path: Path) -> tuple[Any, dict[str, int]]:
    """The document and the line number of every key path (``schema.features[2].low`` → 14)."""
    text = path.read_text(encoding="utf-8")
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[str, int] = {}
    return (_plain(node, "", lines) if node is not None else None), lines


class _Checker:
    """Collects problems as ``<file>: <key> (line N): expected …, found …``."""

    def __init__(self, path: Path, lines: dict[str, int]) -> None:
        self.path, self.lines = path, lines
        self.problems: list[str] = []

    def problem(self, key: str, expected: str, found: Any = None, *, missing: bool = False) -> None:
        line = (self.lines.get(key) or self.lines.get(key.rsplit(".", 1)[0])) if key else None
        at = f" (line {line})" if line else ""
        shown = "nothing" if missing else _shown(found)
        self.problems.append(f"{self.path}: {key or 'the document'}{at}: expected {expected}, found {shown}")

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.problem(key, "a mapping of keys", value)
            return {}
        for unknown in sorted(set(value) - allowed):
            self.problem(
                f"{key}.{unknown}" if key else unknown, f"one of the keys {', '.join(sorted(allowed))}", unknown
            )
        return value

    def number(
        self, value: Any, key: str, low: float = -math.inf, high: float = math.inf, *, integer: bool = False
    ) -> float | None:
        kind = "a whole number" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.problem(key, f"{kind} from {low:g} to {high:g}" if math.isfinite(low) else kind, value)
            return None
        if integer and float(value) != int(value):
            self.problem(key, kind, value)
            return None
        if not low <= value <= high:
            self.problem(key, f"{kind} from {low:g} to {high:g}", value)
            return None
        return float(value)

    def text(self, value: Any, key: str, pattern: re.Pattern[str] | None = None, what: str = "text") -> str | None:
        if not isinstance(value, str) or not value.strip() or (pattern is not None and not pattern.match(value)):
            self.problem(key, what, value)
            return None
        return value

    def choice(self, value: Any, key: str, options: tuple[str, ...] | list[str]) -> str | None:
        if value not in options:
            self.problem(key, f"one of {', '.join(options)}", value)
            return None
        return str(value)


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# --- the spec ------------------------------------------------------------------------------------------


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def load_spec(folder: Path, defaults: SpecDefaults | None = None) -> ModelSpec:
    """Read and check ``folder/model.yaml``; ``SpecError`` lists every problem."""
    defaults = defaults or SpecDefaults()
    path = folder / SPEC_FILE
    name = folder.name
    if not path.is_file():
        raise SpecError(path, [f"{path}: no {SPEC_FILE} in the model's folder"])
    try:
        doc, lines = read_yaml(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SpecError(path, [f"{path}: not readable YAML: {' '.join(str(exc).split())}"]) from None
    check = _Checker(path, lines)
    if not NAME.match(name):
        check.problem(
            "name",
            "a folder name of 3-40 lowercase letters, digits and '-', starting with a letter and not ending with '-'",
            name,
        )
    if not isinstance(doc, dict):
        check.problem("", "a mapping of keys (task, schema, estimator, …)", doc)
        raise SpecError(path, check.problems)
    doc = check.mapping(doc, "", TOP_KEYS)
    if "name" in doc and doc["name"] != name:
        check.problem("name", f"the folder's name {name!r} (or no name key)", doc["name"])
    task_text = check.choice(doc.get("task"), "task", [t.value for t in Task])
    task = Task(task_text) if task_text else Task.REGRESSION
    schema = _schema(check, doc.get("schema"), name, task)
    estimator = _estimator(check, doc.get("estimator"), folder)
    metrics_table = CLASSIFICATION_METRICS if task.classification else REGRESSION_METRICS
    metrics = _metrics(check, doc.get("metrics"), metrics_table)
    promotion = _promotion(check, doc.get("promotion", {}), task, metrics_table, defaults)
    drift = _drift(check, doc.get("drift", {}), defaults)
    data = _data(check, doc.get("data", {}))
    schedule = _schedule(check, doc.get("schedule", defaults.schedule))
    release = _release(check, doc.get("release", {}), defaults)
    sample = _sample(check, doc.get("sample", {}), folder)
    description = doc.get("description", "")
    if not isinstance(description, str):
        check.problem("description", "text", description)
    if check.problems or schema is None or estimator is None or promotion is None:
        raise SpecError(path, check.problems)
    return ModelSpec(
        name,
        folder,
        task,
        schema,
        estimator,
        metrics,
        promotion,
        drift,
        data,
        schedule,
        release,
        str(description or ""),
        sample,
        folder_digest(folder),
    )


def _schema(check: _Checker, raw: Any, name: str, task: Task) -> Schema | None:
    doc = check.mapping(raw, "schema", {"features", "label", "id", "min_rows"})
    features_raw = doc.get("features")
    if not isinstance(features_raw, list) or not features_raw:
        check.problem("schema.features", "a list of at least one feature", features_raw, missing=features_raw is None)
        features_raw = []
    features = [c for i, f in enumerate(features_raw) if (c := _column(check, f, f"schema.features[{i}]"))]
    label = _column(check, doc.get("label"), "schema.label") if "label" in doc else None
    if label is None and "label" not in doc:
        check.problem("schema.label", "the label column", missing=True)
    identifier = doc.get("id")
    if identifier is not None:
        identifier = check.text(identifier, "schema.id", _COLUMN, "a column name")
    min_rows = check.number(doc.get("min_rows", 20), "schema.min_rows", 2, 1e9, integer=True)
    names = [c.name for c in features] + ([label.name] if label else []) + ([identifier] if identifier else [])
    for repeated in sorted({n for n in names if names.count(n) > 1}):
        check.problem("schema", "each column named once", repeated)
    if label is not None:
        _check_label(check, label, task)
    if label is None or not features:
        return None
    return Schema(name, tuple(features), label, int(min_rows or 20), identifier or None, task)


def _check_label(check: _Checker, label: Column, task: Task) -> None:
    if task.classification:
        if label.kind is not Dtype.CATEGORY and label.kind is not Dtype.BOOL:
            check.problem("schema.label.dtype", f"category (a {task.value} model's label is a class)", label.kind.value)
        classes = len(label.allowed) if label.kind is Dtype.CATEGORY else 2
        if task is Task.BINARY and classes != 2:
            check.problem("schema.label.allowed", "exactly 2 classes for a binary model", list(label.allowed))
        if task is Task.MULTICLASS and classes < 3:
            check.problem("schema.label.allowed", "3 or more classes for a multiclass model", list(label.allowed))
    elif label.kind not in (Dtype.FLOAT, Dtype.INT):
        check.problem("schema.label.dtype", "float or int (a regression's label is a number)", label.kind.value)
    if label.nullable:
        check.problem("schema.label.nullable", "false (every row needs its label)", True)


_COLUMN_KEYS = {"name", "dtype", "low", "high", "allowed", "nullable", "description"}


def _column(check: _Checker, raw: Any, key: str) -> Column | None:
    doc = check.mapping(raw, key, _COLUMN_KEYS)
    if not doc:
        return None
    name = check.text(doc.get("name"), f"{key}.name", _COLUMN, "a column name (letters, digits, '_', '.', '-')")
    dtype_text = check.choice(doc.get("dtype", "float"), f"{key}.dtype", [d.value for d in Dtype])
    dtype = Dtype(dtype_text) if dtype_text else Dtype.FLOAT
    low = check.number(doc["low"], f"{key}.low") if "low" in doc else -math.inf
    high = check.number(doc["high"], f"{key}.high") if "high" in doc else math.inf
    if low is not None and high is not None and low > high:
        check.problem(f"{key}.high", f"a value of at least low ({low:g})", high)
    if dtype in (Dtype.BOOL, Dtype.CATEGORY) and ("low" in doc or "high" in doc):
        check.problem(f"{key}.low", f"no range for a {dtype.value} column", doc.get("low", doc.get("high")))
    allowed = _allowed(check, doc.get("allowed"), f"{key}.allowed", dtype) if "allowed" in doc else ()
    if dtype is Dtype.CATEGORY and not allowed and "allowed" not in doc:
        check.problem(f"{key}.allowed", "the list of the category's values", missing=True)
    nullable = doc.get("nullable", False)
    if not isinstance(nullable, bool):
        check.problem(f"{key}.nullable", "true or false", nullable)
    description = doc.get("description", "")
    if name is None or dtype_text is None or low is None or high is None:
        return None
    return Column(name, low, high, str(description or ""), dtype=dtype, allowed=allowed, nullable=nullable is True)


def _allowed(check: _Checker, raw: Any, key: str, dtype: Dtype) -> tuple[Value, ...]:
    if not isinstance(raw, list) or not raw:
        check.problem(key, "a non-empty list of values", raw)
        return ()
    values: list[Value] = []
    for i, value in enumerate(raw):
        if isinstance(value, bool) or value is None or isinstance(value, dict | list):
            check.problem(f"{key}[{i}]", "a number or a text value", value)
        elif dtype is not Dtype.CATEGORY and not isinstance(value, int | float):
            check.problem(f"{key}[{i}]", f"a number (the column's dtype is {dtype.value})", value)
        elif dtype is Dtype.INT and float(value) != int(value):
            check.problem(f"{key}[{i}]", "a whole number (the column's dtype is int)", value)
        else:
            values.append(value if isinstance(value, str) else float(value))
    if len({str(v) for v in values}) != len(values):
        check.problem(key, "each value once", raw)
    return tuple(values)


def _estimator(check: _Checker, raw: Any, folder: Path) -> Estimator | None:
    doc = check.mapping(raw, "estimator", {"factory", "params"})
    if not doc:
        if raw is None:
            check.problem("estimator", "an estimator: {factory: module:callable, params: {...}}", missing=True)
        return None
    factory = check.text(
        doc.get("factory"),
        "estimator.factory",
        _FACTORY,
        "module:callable (e.g. ml.estimators:ridge) or model.py:build",
    )
    params = doc.get("params", {})
    if not isinstance(params, dict):
        check.problem("estimator.params", "a mapping of the factory's parameters", params)
        params = {}
    if factory is None:
        return None
    module, _, _attribute = factory.partition(":")
    if module == MODEL_FILE:
        if not (folder / MODEL_FILE).is_file():
            check.problem("estimator.factory", f"a {MODEL_FILE} beside {SPEC_FILE}", f"{factory} (no such file)")
    else:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            check.problem("estimator.factory", "an importable module", module)
    return Estimator(factory, dict(params))


def _metrics(check: _Checker, raw: Any, table: dict[str, str]) -> tuple[str, ...]:
    if raw is None:
        return tuple(table)
    if not isinstance(raw, list) or not raw:
        check.problem("metrics", f"a list of metrics among {', '.join(table)}", raw)
        return tuple(table)
    known = [m for i, m in enumerate(raw) if check.choice(m, f"metrics[{i}]", list(table))]
    return tuple(dict.fromkeys(known))


def _promotion(
    check: _Checker, raw: Any, task: Task, table: dict[str, str], defaults: SpecDefaults
) -> Promotion | None:
    doc = check.mapping(raw, "promotion", {"metric", "confidence", "min_improvement", "floor"})
    default_metric = "auc" if task.classification else defaults.regression_metric
    metric = check.choice(doc.get("metric", default_metric), "promotion.metric", list(table))
    confidence = check.number(doc.get("confidence", defaults.confidence), "promotion.confidence", 0.5, 0.999)
    improvement = check.number(
        doc.get("min_improvement", defaults.min_improvement), "promotion.min_improvement", 0.0, 1.0
    )
    default_floor = (
        {"metric": "auc", "value": 0.7} if task.classification else {"metric": "r2", "value": defaults.r2_floor}
    )
    floor_doc = check.mapping(doc.get("floor", default_floor), "promotion.floor", {"metric", "value"})
    floor_metric = check.choice(floor_doc.get("metric", default_floor["metric"]), "promotion.floor.metric", list(table))
    floor = check.number(floor_doc.get("value"), "promotion.floor.value") if "value" in floor_doc else None
    if "value" not in floor_doc:
        check.problem("promotion.floor.value", "the value a first model must reach", missing=True)
    if None in (metric, confidence, improvement, floor_metric, floor):
        return None
    return Promotion(str(metric), float(confidence or 0), float(improvement or 0), str(floor_metric), float(floor or 0))


def _drift(check: _Checker, raw: Any, defaults: SpecDefaults) -> Drift:
    doc = check.mapping(raw, "drift", {"psi", "ks_pvalue"})
    psi = check.number(doc.get("psi", defaults.psi), "drift.psi", 0.0, 10.0)
    ks = check.number(doc.get("ks_pvalue", defaults.ks_pvalue), "drift.ks_pvalue", 0.0, 1.0)
    return Drift(defaults.psi if psi is None else psi, defaults.ks_pvalue if ks is None else ks)


def _data(check: _Checker, raw: Any) -> DataPolicy:
    doc = check.mapping(raw, "data", {"policy", "last", "days"})
    policy = check.choice(doc.get("policy", "all"), "data.policy", DATA_POLICIES) or "all"
    last = days = 0.0
    if policy == "last":
        last = check.number(doc.get("last"), "data.last", 1, 1e9, integer=True) or 0.0
    elif "last" in doc:
        check.problem("data.last", "no 'last' unless the policy is 'last'", doc["last"])
    if policy == "window":
        days = check.number(doc.get("days"), "data.days", 0.001, 36500) or 0.0
    elif "days" in doc:
        check.problem("data.days", "no 'days' unless the policy is 'window'", doc["days"])
    return DataPolicy(policy, int(last), float(days))


def _schedule(check: _Checker, raw: Any) -> str:
    if not isinstance(raw, str) or len(raw.split()) != 6:
        check.problem("schedule", "an NCRONTAB expression of 6 fields, seconds first (e.g. '0 0 2 * * *')", raw)
        return ""
    bad = [part for part in raw.split() if not _CRON_FIELD.match(part)]
    if bad:
        check.problem("schedule", "NCRONTAB fields of digits, names, '*', '/', ',', '-'", " ".join(bad))
        return ""
    try:
        Schedule.parse(raw)
    except ScheduleError as exc:
        check.problem("schedule", f"an NCRONTAB expression that occurs ({exc})", raw)
        return ""
    return raw


def _api_test(check: _Checker, raw: Any, key: str, base: ApiTest) -> ApiTest:
    doc = check.mapping(raw, key, {"requests", "max_p99_ms", "max_error_rate"})
    requests = check.number(doc.get("requests", base.requests), f"{key}.requests", 1, 10_000, integer=True)
    p99 = check.number(doc.get("max_p99_ms", base.max_p99_ms), f"{key}.max_p99_ms", 0.001, 60_000)
    errors = check.number(doc.get("max_error_rate", base.max_error_rate), f"{key}.max_error_rate", 0.0, 1.0)
    return ApiTest(
        int(requests or base.requests), p99 or base.max_p99_ms, base.max_error_rate if errors is None else errors
    )


def _release(check: _Checker, raw: Any, defaults: SpecDefaults) -> tuple[ReleaseStep, ...]:
    base = ApiTest(defaults.api_requests, defaults.max_p99_ms, defaults.max_error_rate)
    production = ApiTest(base.requests, defaults.production_max_p99_ms or base.max_p99_ms, base.max_error_rate)
    doc = check.mapping(raw, "release", {"steps"})
    if "steps" not in doc:
        return (ReleaseStep("qa", base), ReleaseStep("full", production))
    raw_steps = doc["steps"]
    allowed = (*RELEASE_STEPS, APPROVAL_STEP)
    if not isinstance(raw_steps, list):
        check.problem("release.steps", f"a list of steps ({', '.join(allowed)})", raw_steps)
        return (ReleaseStep("qa", base), ReleaseStep("full", production))
    steps = []
    for i, raw_step in enumerate(raw_steps):
        key = f"release.steps[{i}]"
        kind = raw_step.get("step") if isinstance(raw_step, dict) else None
        keys = {"step", "approvers", "timeout"} if kind == APPROVAL_STEP else {"step", "api_test"}
        step_doc = check.mapping(raw_step, key, keys)
        name = check.choice(step_doc.get("step"), f"{key}.step", allowed)
        if name == APPROVAL_STEP:
            steps.append(ReleaseStep(name, approval=_approval(check, step_doc, key)))
        elif name:
            tests = _api_test(
                check, step_doc.get("api_test", {}), f"{key}.api_test", base if name == "qa" else production
            )
            steps.append(ReleaseStep(name, tests))
    order = [s.step for s in steps]
    if [s for s in order if s != APPROVAL_STEP] != list(RELEASE_STEPS) and len(steps) == len(raw_steps):
        check.problem(
            "release.steps",
            f"the steps {' then '.join(RELEASE_STEPS)} (the policy this version runs), optionally with "
            f"{APPROVAL_STEP} between them",
            order,
        )
    elif order.count(APPROVAL_STEP) > 1 or (APPROVAL_STEP in order and order != ["qa", APPROVAL_STEP, "full"]):
        check.problem("release.steps", f"at most one {APPROVAL_STEP} step, between qa and full", order)
    return tuple(steps)


def _approval(check: _Checker, doc: dict[str, Any], key: str) -> Approval:
    approvers: list[str] = []
    raw = doc.get("approvers")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_APPROVERS:
        check.problem(f"{key}.approvers", f"a list of 1 to {MAX_APPROVERS} names of people who may approve", raw)
    else:
        for j, person in enumerate(raw):
            where = f"{key}.approvers[{j}]"
            if not isinstance(person, str) or not person.strip() or len(person) > 256 or not person.isprintable():
                check.problem(where, "a name or principal id (1-256 printable characters)", person)
            elif person.strip().casefold() == PIPELINE_APPROVER:
                check.problem(where, f"a person (the pipeline, {PIPELINE_APPROVER!r}, never approves)", person)
            elif person.strip().casefold() in (a.casefold() for a in approvers):
                check.problem(where, "each approver once", person)
            else:
                approvers.append(person.strip())
    timeout = duration_s(doc.get("timeout"))
    if "timeout" not in doc:
        check.problem(f"{key}.timeout", "how long to wait for a decision (e.g. 30m, 72h, 10d)", missing=True)
    elif timeout is None or not 1.0 <= timeout <= MAX_APPROVAL_TIMEOUT_S:
        check.problem(
            f"{key}.timeout",
            "a duration from 1s to 365d (a number and s, m, h or d: 90s, 72h, 10d)",
            doc.get("timeout"),
        )
    return Approval(tuple(approvers), timeout or 0.0)


def duration_s(value: Any) -> float | None:
    """Seconds of a duration such as ``90s``, ``30m``, ``72h``, ``10d``; None when it is not one."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value.strip())
    return float(match.group(1)) * _UNIT_S[match.group(2)] if match else None


def _sample(check: _Checker, raw: Any, folder: Path) -> dict[str, str]:
    doc = check.mapping(raw, "sample", {"loader", "file"})
    if len(doc) > 1:
        check.problem("sample", "one of loader or file", sorted(doc))
    out: dict[str, str] = {}
    if "file" in doc and check.text(doc["file"], "sample.file", what="a file name in the model's folder"):
        if not (folder / str(doc["file"])).is_file() or "/" in str(doc["file"]):
            check.problem("sample.file", "a file in the model's folder", doc["file"])
        out["file"] = str(doc["file"])
    if "loader" in doc and check.text(doc["loader"], "sample.loader", _FACTORY, "module:function"):
        out["loader"] = str(doc["loader"])
    return out


def spec_folders(root: Path) -> Iterator[Path]:
    """The model folders under ``root``: every directory holding a ``model.yaml`` or that is not hidden."""
    if not root.is_dir():
        return
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith((".", "_")):
            yield child
