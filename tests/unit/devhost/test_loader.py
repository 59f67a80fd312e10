from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devhost.errors import ConfigError
from devhost.loader import load_host_config, load_local_settings


def test_host_json_values_and_setting_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_HUB", "HubFromSetting")
    (tmp_path / "host.json").write_text(
        json.dumps(
            {
                "extensions": {
                    "http": {"routePrefix": "/x/"},
                    "durableTask": {
                        "hubName": "%MY_HUB%",
                        "maxConcurrentActivityFunctions": 3,
                        "maxConcurrentOrchestratorFunctions": 2,
                    },
                }
            }
        )
    )
    cfg = load_host_config(tmp_path)
    assert (cfg.route_prefix, cfg.hub_name, cfg.max_activities, cfg.max_orchestrators) == ("x", "HubFromSetting", 3, 2)


def test_missing_host_json_gives_defaults(tmp_path: Path) -> None:
    cfg = load_host_config(tmp_path)
    assert cfg.route_prefix == "api" and cfg.max_activities == 10


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ("[1]", "top level must be an object"),
        ('{"extensions": {"http": {"routePrefix": 5}}}', "routePrefix must be a string"),
        ('{"extensions": {"durableTask": {"hubName": ""}}}', "hubName must be a non-empty string"),
        ('{"extensions": {"durableTask": {"maxConcurrentOrchestratorFunctions": "2"}}}', "maxConcurrentOrchestrator"),
    ],
)
def test_bad_host_json_names_the_problem(tmp_path: Path, doc: str, needle: str) -> None:
    (tmp_path / "host.json").write_text(doc)
    with pytest.raises(ConfigError, match=needle) as info:
        load_host_config(tmp_path)
    assert "host.json" in str(info.value)


def test_local_settings_do_not_override_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DH_EXISTING", "from-env")
    monkeypatch.delenv("DH_NEW", raising=False)
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {"DH_EXISTING": "file", "DH_NEW": True}}))
    values = load_local_settings(tmp_path)
    assert values == {"DH_EXISTING": "file", "DH_NEW": "true"}
    assert os.environ["DH_EXISTING"] == "from-env" and os.environ["DH_NEW"] == "true"
    monkeypatch.delenv("DH_NEW")


def test_local_settings_values_must_be_an_object(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text('{"Values": [1]}')
    with pytest.raises(ConfigError, match="'Values' must be an object"):
        load_local_settings(tmp_path)


def test_missing_local_settings_means_the_environment_alone(tmp_path: Path) -> None:
    assert load_local_settings(tmp_path) == {}
