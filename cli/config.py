"""Where the CLI finds things: local.settings.json, the environment (which wins), the devhost master key."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backends.settings import Settings

LOCAL_SETTINGS = "local.settings.json"
SAMPLE_SETTINGS = "local.settings.sample.json"
DEFAULT_PORT = 7071


class CliError(RuntimeError):
    """Something the person at the terminal must fix; the message says what."""


def ensure_local_settings(root: Path) -> bool:
    """Create local.settings.json from the sample when it is missing; True when created."""
    target = root / LOCAL_SETTINGS
    if target.exists():
        return False
    sample = root / SAMPLE_SETTINGS
    if not sample.exists():
        raise CliError(f"neither {target} nor {sample} exists: run from the project's root or pass --root")
    # it may come to hold the master key or a connection string: only its owner reads it (0600), as with any secret
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(sample.read_bytes())
    return True


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object")
    return data


def local_settings(root: Path) -> dict[str, Any]:
    """local.settings.json (or the sample when it is missing) as a dict."""
    for name in (LOCAL_SETTINGS, SAMPLE_SETTINGS):
        if (root / name).exists():
            return _read_json(root / name)
    return {}


def effective_env(root: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The app's settings as devhost will see them: local.settings.json Values, overridden by the environment."""
    values = local_settings(root).get("Values") or {}
    merged = {str(k): str(v) for k, v in values.items() if v is not None}
    merged.update(os.environ if environ is None else environ)
    return merged


def load_settings(root: Path, environ: Mapping[str, str] | None = None) -> Settings:
    return Settings.from_env(effective_env(root, environ))


def host_port(root: Path, environ: Mapping[str, str] | None = None) -> int:
    """devhost's port: DEVHOST_PORT, else local.settings.json Host.LocalHttpPort, else 7071."""
    env = os.environ if environ is None else environ
    raw = env.get("DEVHOST_PORT") or (local_settings(root).get("Host") or {}).get("LocalHttpPort") or DEFAULT_PORT
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise CliError(f"devhost port {raw!r} is not a number") from None


def master_key(root: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """The key for FUNCTION routes: DEVHOST_MASTER_KEY (environment or settings), else .devhost/master.key."""
    env = effective_env(root, environ)
    if env.get("DEVHOST_MASTER_KEY", "").strip():
        return env["DEVHOST_MASTER_KEY"].strip()
    key_file = root / ".devhost" / "master.key"
    if key_file.exists():
        return key_file.read_text(encoding="utf-8").strip() or None
    return None


def mlops_home(root: Path, settings: Settings) -> Path:
    home = Path(settings.MLOPS_HOME)
    return home if home.is_absolute() else root / home


def endpoints_file(root: Path, settings: Settings) -> Path:
    return mlops_home(root, settings) / "endpoints.json"


def endpoint(root: Path, settings: Settings, name: str) -> tuple[str, str]:
    """(url, key) of the local ``qa`` or ``production`` endpoint, from <MLOPS_HOME>/endpoints.json."""
    path = endpoints_file(root, settings)
    if not path.exists():
        raise CliError(f"{path} does not exist yet: no model has been deployed")
    entry = _read_json(path).get(name)
    if not isinstance(entry, dict) or not entry.get("url"):
        raise CliError(f"{path} has no {name!r} endpoint yet")
    return str(entry["url"]).rstrip("/"), str(entry.get("key") or "")
