"""Settings: fail fast naming the key, mask secrets, and keep the sample file and README in step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.errors import SettingsError
from backends.settings import SPECS, STORAGE, Settings
from backends.storage_connection import DEVELOPMENT_STORAGE, mask_connection_string

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_offline_contract() -> None:
    s = Settings.from_env({})
    assert s.AzureWebJobsStorage == "UseDevelopmentStorage=true"
    assert s.MLOPS_BACKEND == "local"
    assert s.MODEL_NAME == "diabetes-ridge"
    assert s.containers == ("incoming", "quarantine", "datasets", "scoring-logs", "batch")
    assert s.RETRAIN_SCHEDULE == "0 0 2 * * *"
    assert (s.QA_ENDPOINT_PORT, s.PROD_ENDPOINT_PORT) == (7081, 7082)


def test_environment_values_are_parsed() -> None:
    s = Settings.from_env({"QA_ENDPOINT_PORT": "9001", "PROMOTION_CONFIDENCE": "0.9", "MLOPS_BACKEND": "local"})
    assert s.QA_ENDPOINT_PORT == 9001
    assert s.PROMOTION_CONFIDENCE == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MLOPS_BACKEND", "aws", "MLOPS_BACKEND='aws' is malformed: expected one of local, azureml"),
        ("RETRAIN_SCHEDULE", "0 2 * * *", "RETRAIN_SCHEDULE='0 2 * * *' is malformed: expected an NCRONTAB"),
        ("QA_ENDPOINT_PORT", "seventy", "QA_ENDPOINT_PORT='seventy' is malformed: expected an integer"),
        ("PROD_ENDPOINT_PORT", "70000", "expected a value between 1 and 65535"),
        ("INCOMING_CONTAINER", "In_Coming", "INCOMING_CONTAINER='In_Coming' is malformed: expected a blob container"),
        ("DURABLE_TASK_HUB", "1hub", "DURABLE_TASK_HUB='1hub' is malformed"),
        ("LOCAL_TRAINING_SLOTS", "0", "LOCAL_TRAINING_SLOTS='0' is malformed: expected a value between 1 and 1024"),
        ("LOCAL_TRAINING_SLOTS", "two", "LOCAL_TRAINING_SLOTS='two' is malformed: expected an integer"),
    ],
)
def test_malformed_setting_is_named(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: value})
    assert expected in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"MLOPS_BACKEND": "azureml", "QA_ENDPOINT_PORT": "x"})
    message = str(info.value)
    assert "QA_ENDPOINT_PORT" in message
    for required in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE"):
        assert f"setting {required} is required when MLOPS_BACKEND=azureml" in message


def test_secrets_are_masked() -> None:
    cs = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net"
    s = Settings.from_env({"AzureWebJobsStorage": cs})
    shown = json.dumps(s.masked())
    assert "c2VjcmV0" not in shown
    assert "AccountKey=***" in shown
    assert mask_connection_string("SharedAccessSignature=sv=1&sig=abc;X=1") == "SharedAccessSignature=***;X=1"


def test_malformed_secret_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"AzureWebJobsStorage": "x", "MLOPS_BACKEND": "nope"})
    assert "'x'" not in str(info.value)


def test_sample_settings_file_matches_specs() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())
    values = sample["Values"]
    for spec in SPECS:
        assert spec.name in values, f"{spec.name} missing from local.settings.sample.json"
        # the storage connection has no default of its own: offline it falls back to the emulator, as the sample says
        expected = DEVELOPMENT_STORAGE if spec.name == STORAGE else spec.default
        assert values[spec.name] == expected, f"{spec.name}: sample {values[spec.name]!r} != {expected!r}"
    extra = set(values) - {s.name for s in SPECS} - {"FUNCTIONS_WORKER_RUNTIME", "DEVHOST_MASTER_KEY"}
    assert not extra, f"settings in the sample that the app does not read: {sorted(extra)}"
    Settings.from_env(values)


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [spec.name for spec in SPECS if f"`{spec.name}`" not in readme]
    assert not missing, f"README settings table lacks {missing}"


def test_training_poll_interval_defaults_by_backend() -> None:
    local = Settings.from_env({})
    assert local.training_poll_seconds == 5.0
    azure = Settings.from_env(
        {
            "MLOPS_BACKEND": "azureml",
            "AZURE_SUBSCRIPTION_ID": "s",
            "AZURE_RESOURCE_GROUP": "g",
            "AZUREML_WORKSPACE": "w",
            "AzureWebJobsStorage__accountName": "acct",
        }
    )
    assert azure.training_poll_seconds == 60.0
    assert Settings.from_env({"TRAINING_POLL_SECONDS": "2.5"}).training_poll_seconds == 2.5
    with pytest.raises(SettingsError, match=r"TRAINING_POLL_SECONDS='0\.01' is malformed"):
        Settings.from_env({"TRAINING_POLL_SECONDS": "0.01"})


def test_local_training_slots_default_to_the_machine() -> None:
    assert Settings.from_env({}).LOCAL_TRAINING_SLOTS == ""  # LocalJobs takes one slot per CPU
    assert Settings.from_env({"LOCAL_TRAINING_SLOTS": "3"}).LOCAL_TRAINING_SLOTS == 3
