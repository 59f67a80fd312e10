"""The host's keys. The master key: from DEVHOST_MASTER_KEY, or generated once into ``<script root>/.devhost/
master.key``. The extensions' system keys (``blobs_extension``, ``eventgrid_extension``, ``durabletask_extension``,
as ``az functionapp keys list`` shows them under ``systemKeys``): from ``DEVHOST_SYSTEM_KEY_<NAME>`` (upper case), or
generated once into ``.devhost/system-keys.json``. Every file is written 0600."""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "DEVHOST_MASTER_KEY"


def resolve_master_key(script_root: Path) -> tuple[str, str]:
    """Return (key, where it came from) and export it to the environment for in-process callers."""
    key = os.environ.get(ENV_VAR, "").strip()
    source = f"environment variable {ENV_VAR}"
    if not key:
        path = script_root / ".devhost" / "master.key"
        if path.exists():
            key = path.read_text(encoding="utf-8").strip()
        if not key:
            key = secrets.token_urlsafe(32)
            _write_private(path, key + "\n")
        os.chmod(path, 0o600)
        source = str(path)
    os.environ[ENV_VAR] = key
    return key, source


SYSTEM_KEYS = ("blobs_extension", "eventgrid_extension", "durabletask_extension")


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def system_key_setting(name: str) -> str:
    return f"DEVHOST_SYSTEM_KEY_{name.upper()}"


def resolve_system_keys(script_root: Path) -> dict[str, tuple[str, str]]:
    """name → (key, where it came from), for every name of ``SYSTEM_KEYS``."""
    path = script_root / ".devhost" / "system-keys.json"
    stored: dict[str, str] = {}
    if path.exists():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            stored = {k: v for k, v in doc.items() if isinstance(v, str) and v} if isinstance(doc, dict) else {}
        except ValueError:
            stored = {}
    out: dict[str, tuple[str, str]] = {}
    changed = False
    for name in SYSTEM_KEYS:
        setting = system_key_setting(name)
        if os.environ.get(setting, "").strip():
            out[name] = (os.environ[setting].strip(), f"setting {setting}")
            continue
        if name not in stored:
            stored[name] = secrets.token_urlsafe(32)
            changed = True
        out[name] = (stored[name], str(path))
    if changed:
        _write_private(path, json.dumps(stored, indent=2) + "\n")
    elif path.exists():
        os.chmod(path, 0o600)
    return out


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    return headers.get("x-functions-key") or query.get("code")


def _raw(text: str) -> bytes:
    """The bytes a header or query value arrived as (aiohttp keeps undecodable bytes as surrogate escapes)."""
    return text.encode("utf-8", "surrogateescape")


def key_ok(expected: str, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    """Constant-time comparison of the presented key (header ``x-functions-key`` or ``?code=``); a key that is
    not even text (non-UTF-8 bytes) is simply a wrong key."""
    given = presented_key(headers, query)
    if given is None:
        return False
    try:
        return hmac.compare_digest(_raw(given), _raw(expected))
    except UnicodeError:
        return False


@dataclass(frozen=True)
class KeyRing:
    """The host's keys by name: ``master``, and the system keys of the extensions."""

    keys: Mapping[str, str]

    def authorizes(self, headers: Mapping[str, str], query: Mapping[str, str], names: tuple[str, ...]) -> bool:
        """True when the presented key equals one of the keys ``names`` (every one compared, in constant time)."""
        ok = False
        for name in names:
            value = self.keys.get(name)
            if value:
                ok = key_ok(value, headers, query) or ok
        return ok
