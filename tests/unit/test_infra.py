"""What can be checked of the Azure templates and pipelines offline: names match the app's, files parse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from backends.settings import SPECS

ROOT = Path(__file__).resolve().parents[2]
BICEP = (ROOT / "infra" / "main.bicep").read_text()
PLATFORM = {"AzureWebJobsStorage__accountName", "APPLICATIONINSIGHTS_CONNECTION_STRING"}


def app_settings() -> set[str]:
    block = BICEP.split("appSettings: [", 1)[1].split("]", 1)[0]
    return set(re.findall(r"name: '([^']+)'", block))


def test_every_app_setting_is_one_the_app_reads() -> None:
    names = {spec.name for spec in SPECS}
    unknown = app_settings() - names - PLATFORM
    assert not unknown, f"app settings the app does not read: {sorted(unknown)}"


def test_the_azure_backend_gets_its_settings() -> None:
    needed = {spec.name for spec in SPECS if spec.azure_only and spec.name != "AZURE_CLIENT_ID"}
    needed |= {"MLOPS_BACKEND", "MODEL_NAME", "DURABLE_TASK_HUB"}
    assert needed <= app_settings()
    assert "{ name: 'MLOPS_BACKEND', value: 'azureml' }" in BICEP


def test_containers_of_the_contract_are_declared() -> None:
    declared = re.search(r"var containers = \[(.*?)\]", BICEP)
    assert declared is not None
    assert set(re.findall(r"'([^']+)'", declared.group(1))) == {"incoming", "quarantine", "datasets", "scoring-logs"}


def test_event_subscriptions_target_the_functions_of_the_app() -> None:
    triggers = " ".join(p.read_text() for p in (ROOT / "triggers").glob("*.py"))
    for function in ("on_blob_drop", "on_model_registered"):
        assert f"functionName=Host.Functions.{function}" in BICEP or f"functionName={function}" in BICEP
        assert function in triggers
    assert "Microsoft.MachineLearningServices.ModelRegistered" in BICEP
    assert "subjectBeginsWith: '/blobServices/default/containers/incoming/'" in BICEP


def test_parameters_and_pipelines_parse() -> None:
    params = json.loads((ROOT / "infra" / "main.parameters.json").read_text())["parameters"]
    declared = set(re.findall(r"^param (\w+)", BICEP, re.M))
    assert set(params) <= declared
    for pipeline in (ROOT / ".github" / "workflows" / "ci.yml", ROOT / "azure-pipelines.yml"):
        text = pipeline.read_text()
        assert isinstance(yaml.safe_load(text), dict)
        for step in ("make lint", "pytest tests/unit", "pytest tests/data", "--cov"):
            assert step in text, f"{pipeline.name} lacks {step}"
