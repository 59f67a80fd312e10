"""The master key: from DEVHOST_MASTER_KEY, or generated once into ``<script root>/.devhost/master.key``."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
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
            path.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(32)
            fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(key + "\n")
        os.chmod(path, 0o600)
        source = str(path)
    os.environ[ENV_VAR] = key
    return key, source


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    return headers.get("x-functions-key") or query.get("code")


def key_ok(expected: str, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    """Constant-time comparison of the presented key (header ``x-functions-key`` or ``?code=``)."""
    given = presented_key(headers, query)
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False
