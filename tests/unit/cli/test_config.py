from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import config

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / config.SAMPLE_SETTINGS).write_text((ROOT / config.SAMPLE_SETTINGS).read_text())
    return tmp_path


def test_local_settings_are_created_once_from_the_sample(root: Path) -> None:
    assert config.ensure_local_settings(root) is True
    assert json.loads((root / config.LOCAL_SETTINGS).read_text())["Values"]["MODEL_NAME"] == "diabetes-ridge"
    assert config.ensure_local_settings(root) is False


def test_local_settings_are_private_to_their_owner(root: Path) -> None:
    """It may come to hold the master key: created 0600 whatever the umask."""
    config.ensure_local_settings(root)
    assert (root / config.LOCAL_SETTINGS).stat().st_mode & 0o777 == 0o600


def test_missing_sample_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(config.CliError, match=r"local\.settings\.sample\.json"):
        config.ensure_local_settings(tmp_path)


def test_environment_wins_over_local_settings(root: Path) -> None:
    settings = config.load_settings(root, {"MODEL_NAME": "other"})
    assert settings.MODEL_NAME == "other"
    assert settings.INCOMING_CONTAINER == "incoming"


def test_port_from_environment_or_settings(root: Path) -> None:
    assert config.host_port(root, {}) == 7071
    assert config.host_port(root, {"DEVHOST_PORT": "8123"}) == 8123
    with pytest.raises(config.CliError, match="not a number"):
        config.host_port(root, {"DEVHOST_PORT": "x"})


def test_master_key_from_environment_then_file(root: Path) -> None:
    assert config.master_key(root, {}) is None
    (root / ".devhost").mkdir()
    (root / ".devhost" / "master.key").write_text("from-file\n")
    assert config.master_key(root, {}) == "from-file"
    assert config.master_key(root, {"DEVHOST_MASTER_KEY": "from-env"}) == "from-env"


def test_endpoint_from_endpoints_json(root: Path) -> None:
    settings = config.load_settings(root, {"MLOPS_HOME": str(root / "home")})
    with pytest.raises(config.CliError, match="no model has been deployed"):
        config.endpoint(root, settings, "production")
    (root / "home").mkdir()
    (root / "home" / "endpoints.json").write_text(json.dumps({"qa": {"url": "http://127.0.0.1:1/", "key": "k"}}))
    assert config.endpoint(root, settings, "qa") == ("http://127.0.0.1:1", "k")
    with pytest.raises(config.CliError, match="no 'production' endpoint"):
        config.endpoint(root, settings, "production")
