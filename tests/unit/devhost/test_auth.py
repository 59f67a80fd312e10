from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from devhost.auth import ENV_VAR, key_ok, resolve_master_key


def test_generated_key_is_stable_private_and_exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    key, source = resolve_master_key(tmp_path)
    path = tmp_path / ".devhost" / "master.key"
    assert source == str(path) and path.read_text().strip() == key and len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.environ[ENV_VAR] == key
    monkeypatch.delenv(ENV_VAR)
    assert resolve_master_key(tmp_path)[0] == key


def test_environment_key_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "from-env")
    assert resolve_master_key(tmp_path) == ("from-env", f"environment variable {ENV_VAR}")
    assert not (tmp_path / ".devhost" / "master.key").exists()


def test_key_checks() -> None:
    assert key_ok("k", {"x-functions-key": "k"}, {})
    assert key_ok("k", {}, {"code": "k"})
    assert not key_ok("k", {}, {"code": "K"})
    assert not key_ok("k", {}, {})
