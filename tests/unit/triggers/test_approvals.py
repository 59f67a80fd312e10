"""``POST /api/runs/{id}/approve`` and ``/reject``: the body, who is calling (App Service authentication's principal
headers, trusted only when it is on; a named approver offline), the policy's list, the pipeline's own identity, and
the run's state (404, 409). A decision is raised as the ``approval_decision`` event."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import azure.functions as func
import pytest

from backends import settings as settings_module
from backends.settings import Settings
from messages.runs import ApprovalPolicy
from orchestrators.names import APPROVAL_DECISION
from tests.unit.triggers.conftest import FakeDurable
from triggers import http_api
from triggers.http_api import ApiError, parse_decision_body
from triggers.identity import IdentityRefused, approver_for, caller_of, principal_claims

approve = http_api.approve_run.build().get_user_function().client_function
reject = http_api.reject_run.build().get_user_function().client_function
RUN = "release-iris-3"
APPROVERS = ["alice", "Bob@Example.com", "0000-oid-carol"]
POLICY: dict[str, Any] = {"approvers": APPROVERS, "timeout_s": 3600}
PENDING = {"stage": "approval", "approval": {"state": "pending", "approvers": APPROVERS}, "stages": []}
OFFLINE = Settings.from_env({"APPROVAL_IDENTITY": "header"})
AZURE_AUTH_ON = Settings.from_env({"WEBSITE_AUTH_ENABLED": "True", "AZURE_CLIENT_ID": "11111111-pipeline"})
AZURE_AUTH_OFF = Settings.from_env({})


def principal(*claims: tuple[str, str]) -> str:
    doc = {"auth_typ": "aad", "claims": [{"typ": t, "val": v} for t, v in claims], "name_typ": "name"}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def request(body: bytes = b"", headers: dict[str, str] | None = None, run: str = RUN) -> func.HttpRequest:
    return func.HttpRequest(
        "POST",
        f"http://127.0.0.1:7071/api/runs/{run}/approve",
        route_params={"id": run},
        body=body,
        headers=headers or {},
    )


def answer(response: func.HttpResponse) -> tuple[int, Any]:
    return response.status_code, json.loads(response.get_body())


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, app_settings: Settings) -> None:
    monkeypatch.setenv("APPROVAL_IDENTITY", "header")
    settings_module.current.cache_clear()


def pending_release(durable: FakeDurable, status: str = "Running", custom: Any = PENDING) -> None:
    config = {"approval": POLICY}
    durable.add(RUN, "release", status, custom=custom, input={"model_name": "iris", "version": "3", "config": config})


# --- the body --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{", 400, "not valid JSON"),
        (b'["x"]', 400, "must be a JSON object"),
        (b'{"comment": "ok", "by": "alice"}', 400, r"unknown field\(s\) in body: 'by'"),
        (b'{"comment": 5}', 400, "comment must be text"),
        (json.dumps({"comment": "x" * 2001}).encode(), 400, "at most 2000"),
        (b'{"comment": "a\\u0000b"}', 400, "control character"),
        (b" " * 9000, 413, "at most 8192"),
    ],
)
def test_a_bad_body_is_named(body: bytes, status: int, says: str) -> None:
    with pytest.raises(ApiError, match=says) as caught:
        parse_decision_body(body)
    assert caught.value.status == status


def test_a_body_is_optional_and_its_comment_kept() -> None:
    assert parse_decision_body(b"") == "" and parse_decision_body(b'{"comment": null}') == ""
    assert parse_decision_body(b'{"comment": " line one\\nline two "}') == "line one\nline two"


# --- who is calling ---------------------------------------------------------------------------------------------


def test_offline_the_approver_is_named_in_a_header_with_the_key() -> None:
    caller = caller_of({"X-Approver": "alice"}, OFFLINE)
    assert caller.name == "alice" and approver_for(caller, ApprovalPolicy(["Alice"]), OFFLINE) == "Alice"
    with pytest.raises(IdentityRefused, match="X-Approver") as caught:
        caller_of({}, OFFLINE)
    assert caught.value.status == 401


def test_on_azure_the_principal_headers_are_read_with_their_claims() -> None:
    headers = {
        "x-ms-client-principal-name": "bob@example.com",
        "x-ms-client-principal-id": "0000-oid-bob",
        "x-ms-client-principal": principal(("preferred_username", "bob@example.com"), ("roles", "admin")),
    }
    caller = caller_of(headers, AZURE_AUTH_ON)
    assert caller.name == "bob@example.com" and caller.principal_id == "0000-oid-bob"
    assert {"bob@example.com", "0000-oid-bob"} <= caller.ids and "admin" not in caller.ids
    assert approver_for(caller, ApprovalPolicy(APPROVERS), AZURE_AUTH_ON) == "Bob@Example.com"
    by_oid = caller_of({"X-MS-CLIENT-PRINCIPAL-ID": "0000-OID-CAROL"}, AZURE_AUTH_ON)
    assert approver_for(by_oid, ApprovalPolicy(APPROVERS), AZURE_AUTH_ON) == "0000-oid-carol"


def test_principal_headers_are_never_trusted_while_authentication_is_off() -> None:
    spoofed = {"X-MS-CLIENT-PRINCIPAL-NAME": "alice", "X-MS-CLIENT-PRINCIPAL-ID": "x"}
    with pytest.raises(IdentityRefused, match="approvals need App Service authentication") as caught:
        caller_of(spoofed, AZURE_AUTH_OFF)
    assert caught.value.status == 403
    with pytest.raises(IdentityRefused, match="approvals need App Service authentication"):
        caller_of({"X-Approver": "alice"}, AZURE_AUTH_OFF)  # nor the offline header


def test_the_header_identity_is_for_the_local_backend_only() -> None:
    with pytest.raises(ValueError, match="APPROVAL_IDENTITY=header is for the local backend only"):
        Settings.from_env(
            {
                "MLOPS_BACKEND": "azureml",
                "APPROVAL_IDENTITY": "header",
                "AZURE_SUBSCRIPTION_ID": "s",
                "AZURE_RESOURCE_GROUP": "g",
                "AZUREML_WORKSPACE": "w",
                "AzureWebJobsStorage__accountName": "acct",
            }
        )


@pytest.mark.parametrize(
    "headers",
    [
        {"X-MS-CLIENT-PRINCIPAL": principal(("name", "x"))},  # no name, no id
        {"X-MS-CLIENT-PRINCIPAL-NAME": "a", "X-MS-CLIENT-PRINCIPAL": "!!!not base64 json"},
        {"X-MS-CLIENT-PRINCIPAL-NAME": "a\x07b"},
    ],
)
def test_an_unreadable_principal_is_a_401(headers: dict[str, str]) -> None:
    with pytest.raises(IdentityRefused) as caught:
        caller_of(headers, AZURE_AUTH_ON)
    assert caught.value.status == 401


def test_principal_claims_decode_unpadded_base64() -> None:
    encoded = principal(("oid", "abc")).rstrip("=")
    assert principal_claims(encoded) == {"oid": ["abc"]}


def test_the_pipelines_own_identity_never_approves() -> None:
    policy = ApprovalPolicy(["alice", "11111111-pipeline"])
    managed = caller_of(
        {"X-MS-CLIENT-PRINCIPAL-ID": "2222-mi-oid", "X-MS-CLIENT-PRINCIPAL": principal(("appid", "11111111-pipeline"))},
        AZURE_AUTH_ON,
    )
    with pytest.raises(IdentityRefused, match="pipeline's own identity") as caught:
        approver_for(managed, policy, AZURE_AUTH_ON)
    assert caught.value.status == 403
    with pytest.raises(IdentityRefused, match="pipeline's own identity"):
        approver_for(caller_of({"X-Approver": "mlops-pipeline"}, OFFLINE), ApprovalPolicy(["mlops-pipeline"]), OFFLINE)


def test_someone_not_on_the_list_is_told_who_is() -> None:
    with pytest.raises(IdentityRefused, match=r"eve is not an approver of this release \(approvers: alice, bob\)"):
        approver_for(caller_of({"X-Approver": "eve"}, OFFLINE), ApprovalPolicy(["alice", "bob"]), OFFLINE)


# --- the routes ----------------------------------------------------------------------------------------------------


def test_an_approver_approves_a_waiting_release(durable: FakeDurable, offline: None) -> None:
    pending_release(durable)
    status, body = answer(asyncio.run(approve(request(b'{"comment": "ship it"}', {"X-Approver": "ALICE"}), durable)))
    assert status == 202 and body == {"id": RUN, "decision": "approve", "by": "alice", "comment": "ship it"}
    [(run, name, event)] = durable.events
    assert (run, name) == (RUN, APPROVAL_DECISION)
    assert event["decision"] == "approve" and event["by"] == "alice" and event["comment"] == "ship it"
    assert event["at"].endswith("Z")


def test_the_run_shows_its_pending_approval(durable: FakeDurable) -> None:
    pending_release(durable)
    get_run = http_api.get_run.build().get_user_function().client_function
    status, body = answer(asyncio.run(get_run(request(), durable)))
    assert status == 200 and body["approval"] == PENDING["approval"]


def test_a_status_and_input_given_as_json_text_are_read(durable: FakeDurable, offline: None) -> None:
    """As the Durable extension may hand them over (the run views read both forms too)."""
    given = {"model_name": "iris", "version": "3", "config": {"approval": POLICY}}
    durable.add(RUN, "release", "Running", custom=json.dumps(PENDING), input=json.dumps(given))
    assert answer(asyncio.run(approve(request(b"", {"X-Approver": "bob@example.com"}), durable)))[0] == 202


def test_a_rejection_raises_the_same_event(durable: FakeDurable, offline: None) -> None:
    pending_release(durable)
    status, _ = answer(asyncio.run(reject(request(b"", {"X-Approver": "alice"}), durable)))
    assert status == 202 and durable.events[0][2]["decision"] == "reject"


def test_unknown_run_not_waiting_or_not_allowed(durable: FakeDurable, offline: None) -> None:
    who = {"X-Approver": "alice"}
    assert answer(asyncio.run(approve(request(b"", who, run="release-nope"), durable)))[0] == 404
    assert answer(asyncio.run(approve(request(b"", who, run="a?b"), durable)))[0] == 400
    pending_release(durable, "Completed")
    status, body = answer(asyncio.run(approve(request(b"", who), durable)))
    assert status == 409 and "is not waiting for approval (status Completed" in body["error"]
    pending_release(durable, custom={"stage": "deploy_qa", "stages": []})
    assert answer(asyncio.run(approve(request(b"", who), durable)))[0] == 409
    pending_release(durable)
    status, body = answer(asyncio.run(approve(request(b"", {"X-Approver": "eve"}), durable)))
    assert status == 403 and "eve is not an approver" in body["error"]
    assert answer(asyncio.run(approve(request(b"", {}), durable)))[0] == 401
    assert not durable.events


def test_with_authentication_off_an_approval_is_refused(durable: FakeDurable) -> None:
    pending_release(durable)
    spoofed = {"X-MS-CLIENT-PRINCIPAL-NAME": "alice"}
    status, body = answer(asyncio.run(approve(request(b"", spoofed), durable)))
    assert status == 403 and "approvals need App Service authentication" in body["error"]
    assert not durable.events
