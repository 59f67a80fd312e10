"""The app's settings: one typed object built once from a mapping (the environment).

Every setting of the contract is declared once in ``SPECS`` with its default and its check, so the
sample settings file, the README table and the validation cannot drift apart (a test keeps
``local.settings.sample.json`` in step with ``SPECS``).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from backends.errors import SettingsError
from backends.storage_connection import DEVELOPMENT_STORAGE, StorageConnection, mask_connection_string, resolve
from messages.enums import WebhookFormat
from ml.ncrontab import Schedule

_CONTAINER = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_HUB = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,44}$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
#: an Azure ML batch endpoint name (a model's own adds ``-<model>``, within 32 characters)
_BATCH_ENDPOINT = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
#: an Azure ML datastore name
_DATASTORE = re.compile(r"^[A-Za-z0-9_]{1,255}$")


def _container(value: str) -> str:
    if not _CONTAINER.match(value):
        raise ValueError("expected a blob container name: 3-63 of a-z, 0-9 and single dashes")
    return value


def _ncrontab(value: str) -> str:
    Schedule.parse(value)  # a ScheduleError (a ValueError) names the field
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value

    return check


def _pattern(regex: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"expected {what}")
        return value

    return check


def _number(low: float, high: float, kind: type = float) -> Callable[[str], Any]:
    def check(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise ValueError(f"expected a{'n integer' if kind is int else ' number'}") from None
        if not low <= number <= high:
            raise ValueError(f"expected a value between {low:g} and {high:g}")
        return number

    return check


def _text(value: str) -> str:
    return value


def _https_url(value: str) -> str:
    if not re.match(r"^https://[^/\s]+/?$", value):
        raise ValueError("expected an https:// URL with no path")
    return value.rstrip("/")


def _port(value: str) -> int:
    return int(_number(1, 65535, int)(value))


def _base_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", value):
        raise ValueError("expected an http:// or https:// URL (no query)")
    return value.rstrip("/")


def _flag(value: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0"):
        raise ValueError("expected True or False")
    return value.lower() in ("true", "1")


@dataclass(frozen=True)
class Webhook:
    """A notification target: where to post (a secret: never logged nor shown) and the body it takes."""

    url: str
    format: WebhookFormat

    def __repr__(self) -> str:  # the URL is a secret (a Teams or Slack webhook URL carries its own key)
        return f"Webhook(url='***', format={self.format.value!r})"


#: notification targets at most (each release notifies every one of them)
MAX_WEBHOOKS = 10


def _webhooks(value: str) -> tuple[Webhook, ...]:
    """``[{"url": "https://...", "format": "json|teams|slack"}, ...]``; the messages never echo a URL."""
    shape = 'a JSON list like [{"url": "https://...", "format": "json"}]'
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ValueError(f"expected {shape}: not JSON") from None
    if not isinstance(parsed, list) or len(parsed) > MAX_WEBHOOKS:
        raise ValueError(f"expected {shape} of at most {MAX_WEBHOOKS} targets")
    formats = ", ".join(f.value for f in WebhookFormat)
    out: list[Webhook] = []
    for i, item in enumerate(parsed):
        if not isinstance(item, dict):
            raise ValueError(f"target {i}: expected an object with url and format")
        unknown = sorted(set(item) - {"url", "format"})
        if unknown:
            raise ValueError(f"target {i}: unknown key(s) {', '.join(unknown)} (only url and format)")
        url, kind = item.get("url"), item.get("format", WebhookFormat.JSON.value)
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+(/\S*)?$", url):
            raise ValueError(f"target {i}: url: expected an http:// or https:// URL")
        if kind not in {f.value for f in WebhookFormat}:
            raise ValueError(f"target {i}: format: expected one of {formats}, found {str(kind)[:20]!r}")
        out.append(Webhook(url, WebhookFormat(kind)))
    return tuple(out)


#: how an approver's identity is read: ``platform`` (App Service authentication's principal headers, trusted only
#: when the platform says authentication is on) or ``header`` (local backend only: a name in ``APPROVER_HEADER``)
APPROVAL_IDENTITIES = ("platform", "header")


@dataclass(frozen=True)
class Spec:
    """How one setting is read: its default ('' = optional, None = required) and its check."""

    name: str
    default: str | None
    parse: Callable[[str], Any]
    meaning: str
    secret: bool = False
    azure_only: bool = False


SPECS: tuple[Spec, ...] = (
    Spec(
        "AzureWebJobsStorage",
        "",
        _text,
        "storage connection string for data drops, quarantine, datasets, scoring logs and blob receipts; leave it "
        "empty and set `AzureWebJobsStorage__accountName` (or `__blobServiceUri` …) for identity-based access (see "
        "below); with neither, the local backend uses `UseDevelopmentStorage=true` (Azurite)",
        secret=True,
    ),
    Spec(
        "DURABLE_TASK_HUB",
        "MlopsHubLocal",
        _pattern(_HUB, "3-45 letters or digits, starting with a letter"),
        "Durable Functions task hub name",
    ),
    Spec("MLOPS_BACKEND", "local", _choice("local", "azureml"), "`local` or `azureml`"),
    Spec(
        "MODEL_NAME",
        "diabetes-ridge",
        _pattern(_MODEL, "a model name of letters, digits, '-', '_' or '.'"),
        "registry name of the model",
    ),
    Spec("INCOMING_CONTAINER", "incoming", _container, "container watched for data drops"),
    Spec("QUARANTINE_CONTAINER", "quarantine", _container, "where rejected drops go, with their report"),
    Spec("DATASETS_CONTAINER", "datasets", _container, "accepted drops and versioned dataset manifests"),
    Spec("SCORING_LOGS_CONTAINER", "scoring-logs", _container, "scoring inputs and predictions"),
    Spec(
        "BATCH_CONTAINER",
        "batch",
        _container,
        "batch scoring: files at `<model>/in/<path>` are scored by the model's champion into `<model>/out/<path>`",
    ),
    Spec(
        "BATCH_CHUNK_MB",
        "16",
        _number(1, 1024, int),
        "batch scoring: the size of a CSV chunk one activity scores, in MiB (a Parquet chunk is one row group)",
    ),
    Spec(
        "BATCH_PARALLEL_CHUNKS",
        "4",
        _number(1, 64, int),
        "batch scoring: chunks of one file scored at once",
    ),
    Spec(
        "RETRAIN_SCHEDULE",
        "0 0 2 * * *",
        _ncrontab,
        "NCRONTAB (6 fields, seconds first, UTC) of the default model's scheduled retrain, and of any model whose "
        "spec has no `schedule`",
    ),
    Spec("MLOPS_HOME", ".mlops", _text, "local backend only: jobs, MLflow registry and endpoint state"),
    Spec("QA_ENDPOINT_PORT", "7081", _port, "local backend only: port of the QA scoring endpoint"),
    Spec("PROD_ENDPOINT_PORT", "7082", _port, "local backend only: port of the production scoring endpoint"),
    Spec(
        "MODEL_EVENTS_URL",
        "http://127.0.0.1:7071/runtime/webhooks/eventgrid?functionName=on_model_registered",
        _text,
        "local backend only: where the registry posts ModelRegistered events (devhost's Event Grid webhook)",
    ),
    Spec("PROMOTION_METRIC", "rmse", _choice("rmse", "mae"), "error metric the promotion rule compares"),
    Spec("PROMOTION_CONFIDENCE", "0.95", _number(0.5, 0.999), "confidence of the paired bootstrap interval"),
    Spec(
        "PROMOTION_MIN_IMPROVEMENT",
        "0.0",
        _number(0.0, 1.0),
        "relative error reduction the challenger must show beyond noise",
    ),
    Spec("PROMOTION_R2_FLOOR", "0.3", _number(-1.0, 1.0), "R² a first model must reach to be registered"),
    Spec("DRIFT_PSI_THRESHOLD", "0.25", _number(0.0, 10.0), "population stability index above which a feature drifted"),
    Spec("DRIFT_KS_PVALUE", "0.001", _number(0.0, 1.0), "KS test p-value below which a feature drifted"),
    Spec(
        "TRAINING_POLL_SECONDS",
        "",
        _number(0.2, 3600),
        "longest wait between training-job status checks; they start at 1/20 of it and grow with the job's age "
        "(default: 5 s local, 60 s azureml)",
    ),
    Spec("TRAINING_TIMEOUT_MINUTES", "60", _number(1, 10080, int), "a training job running longer is failed"),
    Spec(
        "LOCAL_TRAINING_SLOTS",
        "",
        _number(1, 1024, int),
        "local backend only: training jobs running at once on this machine (for this `MLOPS_HOME`), the others "
        "queued until one ends, as the compute cluster's `maxNodeCount` does on Azure (default: the number of CPUs)",
    ),
    Spec("API_TEST_MAX_P99_MS", "500", _number(0.001, 60000), "release API test: p99 latency limit"),
    Spec(
        "PROD_API_TEST_MAX_P99_MS",
        "",
        _number(0.001, 60000),
        "release API test on production: p99 latency limit (default: `API_TEST_MAX_P99_MS`)",
    ),
    Spec("API_TEST_MAX_ERROR_RATE", "0.01", _number(0.0, 1.0), "release API test: error rate limit"),
    Spec("AZURE_SUBSCRIPTION_ID", "", _text, "Azure subscription of the workspace", azure_only=True),
    Spec("AZURE_RESOURCE_GROUP", "", _text, "resource group of the workspace", azure_only=True),
    Spec("AZUREML_WORKSPACE", "", _text, "Azure ML workspace name", azure_only=True),
    Spec("AZUREML_COMPUTE", "cpu-cluster", _text, "compute cluster for training jobs", azure_only=True),
    Spec(
        "AZUREML_ENVIRONMENT",
        "mlops-train:1",
        _text,
        "registered environment (name:version) for training",
        azure_only=True,
    ),
    Spec(
        "AZUREML_DATASTORE",
        "workspaceblobstore",
        _text,
        "datastore bound to the app's datasets container",
        azure_only=True,
    ),
    Spec("AZUREML_QA_ENDPOINT", "diabetes-qa", _text, "managed online endpoint used for QA", azure_only=True),
    Spec(
        "AZUREML_PROD_ENDPOINT",
        "diabetes-prod",
        _text,
        "Kubernetes online endpoint used for production",
        azure_only=True,
    ),
    Spec(
        "AZUREML_BATCH_ENDPOINT",
        "mlops-batch",
        _pattern(_BATCH_ENDPOINT, "an Azure ML batch endpoint name (3-32 letters, digits and hyphens)"),
        "batch scoring: the prefix of each model's Azure ML batch endpoint, `<prefix>-<model>` (its default "
        "deployment serves the model's champion)",
        azure_only=True,
    ),
    Spec(
        "AZUREML_BATCH_DATASTORE",
        "appbatch",
        _pattern(_DATASTORE, "an Azure ML datastore name (letters, digits and underscores)"),
        "batch scoring: datastore bound to the app's batch container (the batch jobs' input and output)",
        azure_only=True,
    ),
    Spec("AZUREML_AKS_COMPUTE", "aks-prod", _text, "attached Kubernetes compute for production", azure_only=True),
    Spec("AZUREML_INSTANCE_TYPE", "Standard_DS3_v2", _text, "VM size of QA deployments", azure_only=True),
    Spec("AZURE_CLIENT_ID", "", _text, "client id of a user-assigned managed identity (optional)", azure_only=True),
    Spec(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "",
        _text,
        "Application Insights for run outcomes, traces and the scoring endpoints' metrics (no telemetry when empty)",
        secret=True,
    ),
    Spec(
        "DEPLOY_POLL_SECONDS",
        "",
        _number(0.05, 600),
        "longest wait between checks of a deployment, traffic change or removal; they start at 1/20 of it and "
        "grow with the operation's age (default: 2 s local, 30 s azureml)",
    ),
    Spec(
        "DEPLOY_TIMEOUT_MINUTES",
        "60",
        _number(1, 1440, int),
        "an endpoint deployment, traffic change or removal still running after this fails its release stage",
    ),
    Spec(
        "AZUREML_ARM_ENDPOINT",
        "https://management.azure.com",
        _https_url,
        "Azure Resource Manager endpoint (another for a sovereign cloud)",
        azure_only=True,
    ),
    Spec(
        "AZUREML_SCORING_ENVIRONMENT",
        "mlops-scoring",
        _text,
        "environment (built from the scoring server's build context) the endpoints run; its version is the "
        "context's content hash",
        azure_only=True,
    ),
    Spec(
        "AZUREML_ENDPOINT_IDENTITY_ID",
        "",
        _text,
        "resource id of the user-assigned identity the endpoints run as (pulls the image, reads the model, "
        "writes prediction logs); empty: system-assigned",
        azure_only=True,
    ),
    Spec(
        "AZUREML_ENDPOINT_IDENTITY_CLIENT_ID",
        "",
        _text,
        "client id of that identity (the scoring server's prediction-log credential)",
        azure_only=True,
    ),
    Spec(
        "AZUREML_JOB_IDENTITY_CLIENT_ID",
        "",
        _text,
        "client id of the compute cluster's user-assigned identity that training jobs run as; empty: the "
        "cluster's default",
        azure_only=True,
    ),
    Spec(
        "NOTIFY_WEBHOOKS",
        "",
        _webhooks,
        'notification webhooks, a JSON list of `{"url", "format"}` with format `json` (CloudEvents 1.0), `teams` '
        "or `slack`: each gets every release outcome and every pending approval (empty: none)",
        secret=True,
    ),
    Spec(
        "APP_BASE_URL",
        "",
        _base_url,
        "the app's public URL (e.g. `https://<app>.azurewebsites.net`) for the links of notifications; empty: "
        "links relative to the app",
    ),
    Spec(
        "APPROVAL_IDENTITY",
        "platform",
        _choice(*APPROVAL_IDENTITIES),
        "who approves a release: `platform` (App Service authentication's principal headers, only when "
        "`WEBSITE_AUTH_ENABLED` is true) or `header` (local backend only: the name in `X-Approver`, sent with the key)",
    ),
    Spec(
        "WEBSITE_AUTH_ENABLED",
        "",
        _flag,
        "set by App Service: `True` when App Service authentication is on, and only then are its principal "
        "headers trusted (never set it yourself)",
    ),
)

STORAGE = "AzureWebJobsStorage"
LOCAL_TRAINING_POLL_S = 5.0
AZUREML_TRAINING_POLL_S = 60.0
LOCAL_DEPLOY_POLL_S = 2.0
AZUREML_DEPLOY_POLL_S = 30.0
_REQUIRED_FOR_AZURE = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE")


@dataclass(frozen=True)
class Settings:
    """Typed settings. Build with ``Settings.from_env(os.environ)``; nothing happens at import."""

    AzureWebJobsStorage: str
    DURABLE_TASK_HUB: str
    MLOPS_BACKEND: str
    MODEL_NAME: str
    INCOMING_CONTAINER: str
    QUARANTINE_CONTAINER: str
    DATASETS_CONTAINER: str
    SCORING_LOGS_CONTAINER: str
    BATCH_CONTAINER: str
    BATCH_CHUNK_MB: int
    BATCH_PARALLEL_CHUNKS: int
    RETRAIN_SCHEDULE: str
    MLOPS_HOME: str
    QA_ENDPOINT_PORT: int
    PROD_ENDPOINT_PORT: int
    MODEL_EVENTS_URL: str
    PROMOTION_METRIC: str
    PROMOTION_CONFIDENCE: float
    PROMOTION_MIN_IMPROVEMENT: float
    PROMOTION_R2_FLOOR: float
    DRIFT_PSI_THRESHOLD: float
    DRIFT_KS_PVALUE: float
    TRAINING_POLL_SECONDS: float | str
    TRAINING_TIMEOUT_MINUTES: int
    LOCAL_TRAINING_SLOTS: int | str
    API_TEST_MAX_P99_MS: float
    PROD_API_TEST_MAX_P99_MS: float | str
    API_TEST_MAX_ERROR_RATE: float
    AZURE_SUBSCRIPTION_ID: str
    AZURE_RESOURCE_GROUP: str
    AZUREML_WORKSPACE: str
    AZUREML_COMPUTE: str
    AZUREML_ENVIRONMENT: str
    AZUREML_DATASTORE: str
    AZUREML_QA_ENDPOINT: str
    AZUREML_PROD_ENDPOINT: str
    AZUREML_BATCH_ENDPOINT: str
    AZUREML_BATCH_DATASTORE: str
    AZUREML_AKS_COMPUTE: str
    AZUREML_INSTANCE_TYPE: str
    AZURE_CLIENT_ID: str
    APPLICATIONINSIGHTS_CONNECTION_STRING: str
    DEPLOY_POLL_SECONDS: float | str
    DEPLOY_TIMEOUT_MINUTES: int
    AZUREML_ARM_ENDPOINT: str
    AZUREML_SCORING_ENVIRONMENT: str
    AZUREML_ENDPOINT_IDENTITY_ID: str
    AZUREML_ENDPOINT_IDENTITY_CLIENT_ID: str
    AZUREML_JOB_IDENTITY_CLIENT_ID: str
    NOTIFY_WEBHOOKS: tuple[Webhook, ...] | str
    APP_BASE_URL: str
    APPROVAL_IDENTITY: str
    WEBSITE_AUTH_ENABLED: bool | str
    #: the app's storage as the host reads ``AzureWebJobsStorage`` and its ``__`` settings (derived, not a setting)
    storage: StorageConnection

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read every setting; raise ``SettingsError`` naming each missing or malformed one."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for spec in SPECS:
            given = env.get(spec.name)
            raw = (spec.default or "") if given is None or given.strip() == "" else given.strip()
            try:
                values[spec.name] = spec.parse(raw) if raw != "" else raw
            except ValueError as exc:
                shown = "***" if spec.secret else repr(raw)
                problems.append(f"setting {spec.name}={shown} is malformed: {exc}")
        if values.get("MLOPS_BACKEND") == "azureml":
            problems += [
                f"setting {name} is required when MLOPS_BACKEND=azureml"
                for name in _REQUIRED_FOR_AZURE
                if not values.get(name)
            ]
            if values.get("APPROVAL_IDENTITY") == "header":
                problems.append(
                    "setting APPROVAL_IDENTITY=header is for the local backend only: on Azure an approver is "
                    "who App Service authentication says (APPROVAL_IDENTITY=platform)"
                )
        try:
            # the emulator only stands in offline: on Azure a missing storage setting is an error, never 127.0.0.1
            emulator = DEVELOPMENT_STORAGE if values.get("MLOPS_BACKEND") == "local" else ""
            values["storage"] = resolve(env, STORAGE, default=emulator)
        except SettingsError as exc:
            problems.append(str(exc))
        if problems:
            raise SettingsError("; ".join(problems))
        values[STORAGE] = values["storage"].connection_string
        return cls(**values)

    def masked(self) -> dict[str, Any]:
        """The settings as a dict, secrets (and account keys inside connection strings) hidden."""
        secret = {spec.name for spec in SPECS if spec.secret}
        out: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "storage":
                out[field.name] = self.storage.describe()
            else:
                hidden = mask_connection_string(value) if isinstance(value, str) else "***"
                out[field.name] = hidden if field.name in secret else value
        return out

    @property
    def training_poll_seconds(self) -> float:
        """A local job is checked by reading a file, an Azure ML job by an API call: poll accordingly."""
        if isinstance(self.TRAINING_POLL_SECONDS, float):
            return self.TRAINING_POLL_SECONDS
        return LOCAL_TRAINING_POLL_S if self.MLOPS_BACKEND == "local" else AZUREML_TRAINING_POLL_S

    @property
    def deploy_poll_seconds(self) -> float:
        """A local endpoint changes in a second, an Azure ML deployment in minutes: poll accordingly."""
        if isinstance(self.DEPLOY_POLL_SECONDS, float):
            return self.DEPLOY_POLL_SECONDS
        return LOCAL_DEPLOY_POLL_S if self.MLOPS_BACKEND == "local" else AZUREML_DEPLOY_POLL_S

    @property
    def notify_webhooks(self) -> tuple[Webhook, ...]:
        return self.NOTIFY_WEBHOOKS if isinstance(self.NOTIFY_WEBHOOKS, tuple) else ()

    @property
    def auth_enabled(self) -> bool:
        """App Service authentication is on (the platform sets ``WEBSITE_AUTH_ENABLED``)."""
        return self.WEBSITE_AUTH_ENABLED is True

    @property
    def containers(self) -> tuple[str, ...]:
        return (
            self.INCOMING_CONTAINER,
            self.QUARANTINE_CONTAINER,
            self.DATASETS_CONTAINER,
            self.SCORING_LOGS_CONTAINER,
            self.BATCH_CONTAINER,
        )


@functools.cache
def current() -> Settings:
    """The process's settings, read once from the environment (tests may ``current.cache_clear()``)."""
    return Settings.from_env(os.environ)
