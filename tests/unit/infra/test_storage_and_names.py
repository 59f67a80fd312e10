"""App storage by identity only (no key anywhere), and names unique per resource group that fit Azure's rules."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.unit.infra.bicep import INFRA, app_settings, config, resources, template, text, variable

#: what uniqueString() returns: 13 characters of [a-z0-9]
SUFFIX = "b7kq2m4xz9a1c"


def _evaluate(expr: Any, env: dict[str, str]) -> str:
    if isinstance(expr, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], expr)
    fn = expr["function"]
    assert fn["type"] == "take", f"unexpected function in a name: {fn['type']}"
    return _evaluate(fn["parameters"]["original_value"], env)[: int(fn["parameters"]["number_to_take"])]


def names(prefix: str) -> dict[str, str]:
    return {
        key: _evaluate(value, {"prefix": prefix, "suffix": SUFFIX})
        for key, value in variable("main.bicep", "names").items()
    }


def test_host_storage_is_identity_based_with_the_apps_user_assigned_identity() -> None:
    settings = app_settings()
    assert settings["AzureWebJobsStorage__accountName"] == "storage.name"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "appIdentity.properties.clientId"
    assert settings["AZURE_CLIENT_ID"] == "appIdentity.properties.clientId"
    assert "AzureWebJobsStorage" not in settings, "a connection string for the host storage"
    app = config(resources("main.bicep")["app"])
    assert app["identity"]["type"] == "UserAssigned"
    assert [k.strip("'") for k in app["identity"]["userAssignedIdentities"]] == ["${appIdentity.id}"]
    deployment = app["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"]["type"] == "UserAssignedIdentity"
    assert text(deployment["authentication"]["userAssignedIdentityResourceId"]) == "appIdentity.id"
    assert {text(d) for d in app["dependsOn"]} == {"appBlob", "appQueue", "appTable"}


def test_the_account_takes_no_shared_key_and_no_template_handles_one() -> None:
    storage = config(resources("main.bicep")["storage"])["properties"]
    assert storage["allowSharedKeyAccess"] is False
    assert storage["allowBlobPublicAccess"] is False
    for bicep in INFRA.glob("*.bicep"):
        source = bicep.read_text()
        assert "AccountKey" not in source and "primaryKey" not in source, bicep.name
        assert re.findall(r"listKeys\(([^)]*)\)", source) in ([], ["'${app.id}/host/default', '2023-12-01'"]), (
            f"{bicep.name} lists keys of something other than the Functions host"
        )


def test_flex_consumption_settings_the_platform_rejects_are_not_set() -> None:
    for forbidden in (
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "AzureWebJobsStorage",
    ):
        assert forbidden not in app_settings()
    runtime = config(resources("main.bicep")["app"])["properties"]["functionAppConfig"]["runtime"]
    assert runtime == {"name": "python", "version": "3.11"}


def test_unique_names_come_from_the_resource_group() -> None:
    assert text(variable("main.bicep", "suffix")) == "unique_string(resource_group().id)"
    raw = variable("main.bicep", "names")
    for key in ("storage", "functionApp", "vault", "registry", "workspace", "qaEndpoint", "prodEndpoint"):
        assert "${suffix}" in text(raw[key]), f"names.{key} is not unique per resource group"
    uses = {config(r).get("name") and text(config(r)["name"]) for r in resources("main.bicep").values()}
    for key in ("storage", "functionApp", "vault", "registry", "workspace"):
        assert f"names.{key}" in uses


def test_endpoint_names_are_derived_output_and_set_in_the_app() -> None:
    settings = app_settings()
    assert settings["AZUREML_QA_ENDPOINT"] == "names.qaEndpoint"
    assert settings["AZUREML_PROD_ENDPOINT"] == "names.prodEndpoint"
    outputs = {k: text(v["value"]) for k, v in template("main.bicep")["outputs"].items()}
    assert outputs["qaEndpointName"] == "names.qaEndpoint"
    assert outputs["prodEndpointName"] == "names.prodEndpoint"


@pytest.mark.parametrize("prefix", ["abc", "mlops", "abcdefghijk"])
def test_names_fit_azures_rules_for_every_allowed_prefix(prefix: str) -> None:
    n = names(prefix)
    assert re.fullmatch(r"[a-z0-9]{3,24}", n["storage"]), n["storage"]
    assert re.fullmatch(r"[a-zA-Z0-9]{5,50}", n["registry"]), n["registry"]
    assert re.fullmatch(r"[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]", n["vault"]), n["vault"]
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,58}[a-z0-9]", n["functionApp"]) and len(n["functionApp"]) <= 32
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}", n["workspace"]), n["workspace"]
    for endpoint in (n["qaEndpoint"], n["prodEndpoint"]):  # the SDK's rule, 3-32 characters
        assert re.fullmatch(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?", endpoint) and 3 <= len(endpoint) <= 32, endpoint
    assert n["qaEndpoint"] != n["prodEndpoint"]


def test_prefix_bounds_in_the_template_match_the_ones_checked() -> None:
    decorators = {d["type"]: d.get("argument") for d in template("main.bicep")["parameters"]["prefix"]["decorators"]}
    assert (decorators["min_length"], decorators["max_length"]) == (3, 11)
