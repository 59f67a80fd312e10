"""Identities and roles: the Bicep role assignments equal docs/azure.md's table, row for row (pycep-parsed)."""

from __future__ import annotations

import re

from tests.unit.infra.bicep import ROOT, app_settings, config, resources, role_assignments, template, text, variable

#: built-in role names → their ids (from Azure's built-in role definitions)
BUILT_IN_ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage File Data Privileged Contributor": "69566ab7-960f-475b-8e7c-b3118f30c6bd",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "Managed Identity Operator": "f1a07417-d97a-45cb-824c-7a7467783830",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
}


def doc_table() -> set[tuple[str, str, str]]:
    """(identity symbol, role name, scope symbol) of each row under 'Identities and roles'."""
    doc = (ROOT / "docs" / "azure.md").read_text()
    section = doc.split("## Identities and roles", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("identity", "---"):
            continue
        identity = re.match(r"`(\w+)`", cells[0])
        scope = re.fullmatch(r"`(\w+)`", cells[2])
        assert identity and scope, f"row without a Bicep symbol: {line}"
        assert cells[3], f"row without a why: {line}"
        rows.add((identity.group(1), cells[1], scope.group(1)))
    return rows


def bicep_table() -> set[tuple[str, str, str]]:
    ids = variable("main.bicep", "roles")
    names = {role_id: name for name, role_id in BUILT_IN_ROLES.items()}
    return {(a.identity, names[ids[a.role]], a.scope) for a in role_assignments()}


def test_every_assignment_is_in_the_table_and_every_row_in_the_bicep() -> None:
    table, bicep = doc_table(), bicep_table()
    assert len(table) == len(role_assignments()) >= 16
    assert bicep - table == set(), f"in the Bicep, missing from docs/azure.md: {sorted(bicep - table)}"
    assert table - bicep == set(), f"in docs/azure.md, missing from the Bicep: {sorted(table - bicep)}"


def test_role_ids_are_the_built_in_roles_they_are_named_after() -> None:
    ids = variable("main.bicep", "roles")
    by_key = {re.sub(r"[^a-z]", "", name.lower()): role_id for name, role_id in BUILT_IN_ROLES.items()}
    for key, role_id in ids.items():
        assert by_key.get(key.lower()) == role_id, f"roles.{key} = {role_id} is not that built-in role"


def test_every_assignment_has_a_stable_name_and_a_principal_type() -> None:
    for a in role_assignments():
        assert a.name.startswith(f"guid({a.scope}.id, "), f"{a.symbol}: name must be guid(<scope>.id, …), got {a.name}"
        assert a.name.endswith(f"roles.{a.role})"), f"{a.symbol}: the role must be part of its guid name"
        assert a.identity in a.name, f"{a.symbol}: the principal must be part of its guid name"
        assert a.principal_type in ("ServicePrincipal", "deployerPrincipalType"), a
    names = [a.name for a in role_assignments()]
    assert len(names) == len(set(names)), "two assignments share a name"


def test_workspace_uses_identity_datastores_and_the_declared_registry() -> None:
    ws = config(resources("main.bicep")["workspace"])
    assert ws["identity"] == {"type": "SystemAssigned"}
    assert ws["properties"]["systemDatastoresAuthMode"] == "identity"
    assert text(ws["properties"]["containerRegistry"]) == "registry.id"
    registry = config(resources("main.bicep")["registry"])
    assert registry["properties"]["adminUserEnabled"] is False
    datastore = config(resources("main.bicep")["datastore"])
    assert datastore["properties"]["credentials"] == {"credentialsType": "None"}


def test_the_cluster_runs_as_its_identity_and_the_app_knows_its_client_id() -> None:
    cluster = config(resources("main.bicep")["cluster"])
    assert cluster["identity"]["type"] == "UserAssigned"
    assert [k.strip("'") for k in cluster["identity"]["userAssignedIdentities"]] == ["${jobIdentity.id}"]
    assert {text(d) for d in cluster["dependsOn"]} >= {"jobStorage", "jobPull"}
    settings = app_settings()
    assert settings["AZUREML_JOB_IDENTITY_CLIENT_ID"] == "jobIdentity.properties.clientId"
    assert settings["AZUREML_ENDPOINT_IDENTITY_ID"] == "endpointIdentity.id"
    assert settings["AZUREML_ENDPOINT_IDENTITY_CLIENT_ID"] == "endpointIdentity.properties.clientId"
    outputs = {name: text(o["value"]) for name, o in template("main.bicep")["outputs"].items()}
    assert outputs["jobIdentityClientId"] == "jobIdentity.properties.clientId"
    assert outputs["endpointIdentityId"] == "endpointIdentity.id"


def test_endpoints_read_models_and_write_only_the_prediction_log() -> None:
    endpoint = {(a.role, a.scope) for a in role_assignments() if a.identity == "endpointIdentity"}
    assert endpoint == {
        ("acrPull", "registry"),
        ("storageBlobDataReader", "storage"),
        ("storageBlobDataContributor", "scoringLogsContainer"),
    }
    logs = config(resources("main.bicep")["scoringLogsContainer"])
    assert text(logs["name"]) == "containers.scoringLogs"
    assert variable("main.bicep", "containers")["scoringLogs"] == "scoring-logs"


def test_the_app_gets_exactly_its_data_roles_and_the_workspace_role() -> None:
    app = {(a.role, a.scope) for a in role_assignments() if a.identity == "appIdentity"}
    assert app == {
        ("storageBlobDataOwner", "storage"),
        ("storageQueueDataContributor", "storage"),
        ("storageTableDataContributor", "storage"),
        ("azureMLDataScientist", "workspace"),
        ("managedIdentityOperator", "endpointIdentity"),
    }
    deployer = [a for a in role_assignments() if a.identity == "deployerObjectId"]
    assert [(a.role, a.scope, a.conditional) for a in deployer] == [("storageBlobDataContributor", "storage", True)]
    params = template("main.bicep")["parameters"]
    assert {"deployerObjectId", "deployerPrincipalType"} <= set(params)
