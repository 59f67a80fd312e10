"""Settings, host.json and function-app loading (what the Functions host does before the worker starts)."""

from __future__ import annotations

import enum
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost.errors import AppLoadError, ConfigError

log = logging.getLogger(__name__)

_SETTING_REF = re.compile(r"%([^%]+)%")
#: ``AzureWebJobs.<function>.Disabled``: the app setting that disables one function
DISABLED_PREFIX, DISABLED_SUFFIX = "AzureWebJobs.", ".Disabled"


@dataclass(frozen=True)
class HostConfig:
    """The host.json values devhost honours."""

    route_prefix: str = "api"
    hub_name: str = "TestHubName"
    max_activities: int = 10
    max_orchestrators: int = 10
    #: extensions.queues (the blob-trigger queue uses them too): maxDequeueCount, visibilityTimeout (s),
    #: batchSize, maxPollingInterval (s); the defaults are the host's
    max_dequeue: int = 5
    visibility_timeout: float = 0.0
    queue_batch_size: int = 16
    queue_max_polling: float = 60.0
    #: extensions.durableTask versioning: defaultVersion, versionMatchStrategy (None | Strict | CurrentOrOlder),
    #: versionFailureStrategy (Reject | Fail)
    default_version: str = ""
    version_match: str = "CurrentOrOlder"
    version_failure: str = "Reject"


@dataclass(frozen=True)
class FunctionInfo:
    """One indexed function: its name, trigger, bindings (function.json dicts) and the worker callable."""

    name: str
    trigger_type: str
    trigger: dict[str, Any]
    bindings: list[dict[str, Any]]
    callable: Any
    extra: dict[str, Any] = field(default_factory=dict)

    def binding_of_type(self, kind: str) -> dict[str, Any] | None:
        return next((b for b in self.bindings if b.get("type") == kind), None)


def disabled_functions(names: Iterable[str], env: Mapping[str, str] | None = None) -> set[str]:
    """The functions an app setting ``AzureWebJobs.<name>.Disabled`` (``true`` or ``1``) disables, as the host reads
    it at start: the name in any case. Their triggers do not fire; an HTTP one answers only the master key."""
    env = os.environ if env is None else env
    flags = {
        key[len(DISABLED_PREFIX) : -len(DISABLED_SUFFIX)].lower(): value.strip().lower()
        for key, value in env.items()
        if key.startswith(DISABLED_PREFIX) and key.endswith(DISABLED_SUFFIX)
    }
    return {name for name in names if flags.get(name.lower()) in ("true", "1")}


def resolve_setting_refs(value: str, where: str) -> str:
    """Replace ``%NAME%`` with the app setting NAME, as the host does for binding expressions."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: app setting '{name}' referenced as %{name}% is not defined")
        return os.environ[name]

    return _SETTING_REF.sub(repl, value)


def load_local_settings(script_root: Path) -> dict[str, str]:
    """Export ``local.settings.json`` Values to os.environ (existing variables win); return what was read."""
    path = script_root / "local.settings.json"
    if not path.exists():
        # as ``func start``: the file is git-ignored, so a cloned app often has none; settings then come from the
        # environment alone
        log.warning("%s not found: app settings come from the environment only", path)
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    values = doc.get("Values", {}) if isinstance(doc, dict) else None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: 'Values' must be an object of string settings")
    out: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"{path}: Values.{key} must be a string, got {type(value).__name__}")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out[key] = text
        os.environ.setdefault(key, text)
    return out


def _positive_int(section: dict[str, Any], key: str, default: int, path: Path) -> int:
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{path}: extensions.durableTask.{key} must be a positive integer, got {value!r}")
    return value


def load_host_config(script_root: Path) -> HostConfig:
    """Read the host.json values devhost uses; an absent file gives the defaults."""
    path = script_root / "host.json"
    if not path.exists():
        return HostConfig()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the top level must be an object")
    ext = doc.get("extensions") or {}
    http = ext.get("http") or {}
    durable = ext.get("durableTask") or {}
    if not isinstance(ext, dict) or not isinstance(http, dict) or not isinstance(durable, dict):
        raise ConfigError(f"{path}: 'extensions', 'extensions.http' and 'extensions.durableTask' must be objects")
    prefix = http.get("routePrefix", "api")
    if not isinstance(prefix, str):
        raise ConfigError(f"{path}: extensions.http.routePrefix must be a string, got {prefix!r}")
    hub = durable.get("hubName", "TestHubName")
    if not isinstance(hub, str) or not hub:
        raise ConfigError(f"{path}: extensions.durableTask.hubName must be a non-empty string, got {hub!r}")
    queues = ext.get("queues") or {}
    if not isinstance(queues, dict):
        raise ConfigError(f"{path}: 'extensions.queues' must be an object")
    match = str(durable.get("versionMatchStrategy", "CurrentOrOlder"))
    failure = str(durable.get("versionFailureStrategy", "Reject"))
    if match.lower() not in ("none", "strict", "currentorolder"):
        raise ConfigError(
            f"{path}: extensions.durableTask.versionMatchStrategy must be None, Strict or CurrentOrOlder, got {match!r}"
        )
    if failure.lower() not in ("reject", "fail"):
        raise ConfigError(
            f"{path}: extensions.durableTask.versionFailureStrategy must be Reject or Fail, got {failure!r}"
        )
    return HostConfig(
        default_version=resolve_setting_refs(
            str(durable.get("defaultVersion") or ""), f"{path}: extensions.durableTask.defaultVersion"
        ),
        version_match={"none": "None", "strict": "Strict", "currentorolder": "CurrentOrOlder"}[match.lower()],
        version_failure={"reject": "Reject", "fail": "Fail"}[failure.lower()],
        max_dequeue=_positive_int(queues, "maxDequeueCount", 5, path),
        visibility_timeout=_timespan(queues, "visibilityTimeout", 0.0, path),
        queue_batch_size=min(32, _positive_int(queues, "batchSize", 16, path)),
        queue_max_polling=max(0.1, _timespan(queues, "maxPollingInterval", 60.0, path)),
        route_prefix=prefix.strip("/"),
        hub_name=resolve_setting_refs(hub, f"{path}: extensions.durableTask.hubName"),
        max_activities=_positive_int(durable, "maxConcurrentActivityFunctions", 10, path),
        max_orchestrators=_positive_int(durable, "maxConcurrentOrchestratorFunctions", 10, path),
    )


def _timespan(section: dict[str, Any], key: str, default: float, path: Path) -> float:
    """A host.json TimeSpan (``"hh:mm:ss"``, or milliseconds as a number) in seconds."""
    raw = section.get(key)
    if raw is None:
        return default
    try:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            value = float(raw) / 1000.0
        else:
            hours, minutes, seconds = str(raw).split(":")
            value = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        raise ConfigError(f'{path}: {key} must be a time span such as "00:00:30", got {raw!r}') from None
    if not 0 <= value <= 7 * 86400:
        raise ConfigError(f"{path}: {key} must be from 00:00:00 to 7.00:00:00, got {raw!r}")
    return value


def _enum_text(value: Any) -> Any:
    if isinstance(value, list):
        return [_enum_text(v) for v in value]
    return value.name if isinstance(value, enum.Enum) else value


def _binding_dict(binding: Any) -> dict[str, Any]:
    raw = binding.get_dict_repr()
    return {k: _enum_text(v) for k, v in raw.items()}


SCRIPT_FILE_SETTING = "PYTHON_SCRIPT_FILE_NAME"


def script_file(script_root: Path) -> Path:
    """The app's script: ``PYTHON_SCRIPT_FILE_NAME`` (the worker's setting; a .py file in the script root) or
    ``function_app.py``."""
    name = os.environ.get(SCRIPT_FILE_SETTING, "").strip() or "function_app.py"
    if "/" in name or "\\" in name or not name.endswith(".py") or not name[:-3].isidentifier():
        raise ConfigError(
            f"{SCRIPT_FILE_SETTING} must name a .py file in the script root (a module name), got {name!r}"
        )
    return script_root / name


def import_function_app(script_root: Path) -> Any:
    """Import the script (``function_app.py`` unless ``PYTHON_SCRIPT_FILE_NAME`` says otherwise) as a module named
    after it, as the worker does."""
    path = script_file(script_root)
    if not path.exists():
        raise AppLoadError(f"{script_root}: no {path.name}")
    root = str(script_root.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(path.stem)
    except Exception as exc:
        raise AppLoadError(f"{path}: import failed: {type(exc).__name__}: {exc}") from exc
    app = getattr(module, "app", None)
    if app is None or not hasattr(app, "get_functions"):
        candidates = [
            v for v in vars(module).values() if hasattr(v, "get_functions") and hasattr(v, "register_functions")
        ]
        if not candidates:
            raise AppLoadError(f"{path}: no FunctionApp instance found")
        app = candidates[0]
    return app


def index_functions(app: Any) -> dict[str, FunctionInfo]:
    """Call ``app.get_functions()`` exactly once (it is single-shot) and describe every function."""
    out: dict[str, FunctionInfo] = {}
    for fn in app.get_functions():
        bindings = [_binding_dict(b) for b in fn.get_bindings()]
        trigger = _binding_dict(fn.get_trigger())
        name = fn.get_function_name()
        _check_supported(name, bindings)
        retry = fn.get_settings_dict("retry_policy") if hasattr(fn, "get_settings_dict") else None
        extra = {"retry": retry_policy(name, retry)} if retry else {}
        out[name] = FunctionInfo(name, trigger["type"], trigger, bindings, fn.get_user_function(), extra)
    return out


#: what devhost runs: trigger types, and the other bindings by type and direction
SUPPORTED_TRIGGERS = (
    "httpTrigger",
    "timerTrigger",
    "blobTrigger",
    "eventGridTrigger",
    "orchestrationTrigger",
    "activityTrigger",
    "warmupTrigger",
    "queueTrigger",
    "entityTrigger",
)
SUPPORTED_BINDINGS = (
    ("http", "OUT"),
    ("durableClient", "IN"),
    ("blob", "IN"),
    ("blob", "OUT"),
    ("queue", "OUT"),
    ("table", "IN"),
    ("table", "OUT"),
)


@dataclass(frozen=True)
class RetryPolicy:
    """``@app.retry``: ``fixed_delay`` (``delay``) or ``exponential_backoff`` (``minimum`` doubling up to
    ``maximum``), ``max_retry_count`` retries after the first run (-1: until it succeeds, as the host)."""

    strategy: str
    max_retry_count: int
    delay: float = 0.0
    minimum: float = 0.0
    maximum: float = 0.0

    def wait(self, retry: int) -> float:
        if self.strategy == "fixed_delay":
            return self.delay
        return float(min(self.maximum, self.minimum * 2 ** min(retry - 1, 30)))


def _seconds(text: Any, what: str) -> float:
    try:
        hours, minutes, seconds = str(text).split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        raise ConfigError(f"{what} must be a time span such as 00:00:05, got {text!r}") from None


def retry_policy(function: str, doc: dict[str, Any]) -> RetryPolicy:
    where = f"function {function}: @app.retry"
    strategy = str(doc.get("strategy", ""))
    try:
        count = int(str(doc.get("max_retry_count")))
    except ValueError:
        raise ConfigError(
            f"{where}: max_retry_count must be a whole number, got {doc.get('max_retry_count')!r}"
        ) from None
    if count < -1:
        raise ConfigError(f"{where}: max_retry_count must be -1 (no limit) or more, got {count}")
    if strategy == "fixed_delay":
        return RetryPolicy(strategy, count, delay=_seconds(doc.get("delay_interval"), f"{where}: delay_interval"))
    if strategy == "exponential_backoff":
        low = _seconds(doc.get("minimum_interval"), f"{where}: minimum_interval")
        high = _seconds(doc.get("maximum_interval"), f"{where}: maximum_interval")
        if high < low:
            raise ConfigError(f"{where}: maximum_interval is shorter than minimum_interval")
        return RetryPolicy(strategy, count, minimum=low, maximum=high)
    raise ConfigError(f"{where}: strategy must be fixed_delay or exponential_backoff, got {strategy!r}")


def _check_supported(name: str, bindings: list[dict[str, Any]]) -> None:
    """One clear start-up error for a binding devhost does not implement (never a silent None or a lost write)."""
    for b in bindings:
        kind, direction = str(b.get("type")), str(b.get("direction", "")).upper()
        trigger = kind.endswith("Trigger")
        supported_here = kind in SUPPORTED_TRIGGERS if trigger else (kind, direction) in SUPPORTED_BINDINGS
        if not supported_here:
            supported = ", ".join([*SUPPORTED_TRIGGERS, *(f"{k} {d.lower()}put" for k, d in SUPPORTED_BINDINGS)])
            raise AppLoadError(
                f"function '{name}': binding '{b.get('name')}' of type '{kind}' ({direction.lower()})"
                f" is not supported by devhost; devhost supports: {supported}"
            )
