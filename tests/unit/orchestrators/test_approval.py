"""The release's approval gate and notifications, run against scripted activities and events on a virtual clock:
approve, reject, time out (over more than 7 days, in timers that each stay under the Azure Storage limit), a decision
from someone not on the list ignored, and notifications that never change the release."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from activities import names as act
from messages.runs import ApprovalPolicy
from orchestrators.names import APPROVAL_DECISION
from orchestrators.release import MAX_TIMER, may_approve, release
from tests.unit.orchestrators.driver import Call, Context, names, run
from tests.unit.orchestrators.test_recipes import release_context, release_script

DAY = 86_400.0


def _sending(sent: list[dict[str, Any]]) -> Any:
    def send(payload: dict[str, Any]) -> dict[str, Any]:
        sent.append(payload)
        return {"status": 200}

    return send


def gated(timeout_s: float = DAY, approvers: tuple[str, ...] = ("alice", "bob"), **config: Any) -> Context:
    context = release_context()
    context.input["config"].update(approval={"approvers": list(approvers), "timeout_s": timeout_s}, **config)
    return context


def script(**extra: Any) -> dict[str, Any]:
    base = release_script()
    base[act.TAG_MODEL] = lambda p: {"version": p["version"], "tags": p["tags"]}
    base.update(extra)
    return base


def decision(kind: str, by: str, comment: str = "") -> dict[str, Any]:
    return {"decision": kind, "by": by, "comment": comment, "at": "2026-11-24T13:00:00.000000Z"}


def _tags(calls: list[Call]) -> list[dict[str, str]]:
    return [c.payload["tags"] for c in calls if c.name == act.TAG_MODEL]


def test_an_approved_release_goes_on_to_production_after_the_decision() -> None:
    context = gated()
    events = [(600.0, APPROVAL_DECISION, decision("approve", "Alice", "numbers look right"))]
    output, calls = run(release, context, script(), events=events)
    assert output["outcome"] == "deployed"
    stages = [s["name"] for s in output["stages"]]
    assert stages == ["wait", "deploy_qa", "test_qa", "approval", "deploy_production", "test_production", "promote"]
    approval = output["stages"][3]
    assert approval["status"] == "succeeded" and approval["detail"] == "approved by Alice: numbers look right"
    assert output["approval"]["state"] == "approved" and output["approval"]["by"] == "Alice"
    assert _tags(calls) == [
        {
            "approval_decision": "approved",
            "approval_by": "Alice",
            "approval_comment": "numbers look right",
            "approval_at": "2026-11-24T13:00:00.000000Z",
            "approval_run": "release-diabetes-ridge-3",
        }
    ]
    # production is touched only after the decision
    assert names(calls).index(act.TAG_MODEL) < [i for i, c in enumerate(calls) if c.name == act.DEPLOY_MODEL][1]


def test_the_custom_status_shows_the_pending_approval_while_it_waits() -> None:
    context = gated(timeout_s=2 * DAY)
    run(release, context, script(), events=[(60.0, APPROVAL_DECISION, decision("approve", "bob"))])
    waiting = next(s for s in context.statuses if s.get("approval", {}).get("state") == "pending")
    assert waiting["stage"] == "approval" and waiting["outcome"] is None
    assert waiting["approval"]["approvers"] == ["alice", "bob"]
    since, until = waiting["approval"]["since"], waiting["approval"]["until"]
    assert until > since and waiting["stages"][-1]["detail"] == f"waiting for approval by alice, bob until {until}"


def test_a_rejection_ends_rejected_and_production_is_never_touched() -> None:
    output, calls = run(
        release, gated(), script(), events=[(30.0, APPROVAL_DECISION, decision("reject", "bob", "drift too high"))]
    )
    assert output["outcome"] == "rejected"
    assert output["reason"] == "rejected by bob: drift too high; production untouched"
    assert [c.payload["endpoint"] for c in calls if c.name == act.DEPLOY_MODEL] == ["qa"]
    assert not [c for c in calls if c.name == act.SET_TRAFFIC and c.payload["endpoint"] == "production"]
    assert [c.payload["stage"] for c in calls if c.name == act.SET_MODEL_STAGE] == ["rejected"]
    assert _tags(calls)[0]["approval_decision"] == "rejected" and _tags(calls)[0]["approval_by"] == "bob"
    assert output["stages"][-1]["name"] == "approval" and output["stages"][-1]["status"] == "failed"
    assert names(calls)[-1] == act.FREE_RELEASE


def test_a_wait_longer_than_seven_days_is_a_loop_of_shorter_timers_and_times_out() -> None:
    context = gated(timeout_s=10 * DAY)
    start = context.now
    output, calls = run(release, context, script())
    assert output["outcome"] == "approval_timed_out"
    assert output["reason"] == "nobody approved within 10d; production untouched"
    waits = [c for c in calls if c.kind == "any"]
    timers = [t for c in waits for t in c.payload if t.kind == "timer"]
    assert len(timers) == 4  # 3 + 3 + 3 + 1 days
    assert all(t.payload - start <= timedelta(days=10) for t in timers)
    steps = [b.payload - a.payload for a, b in itertools.pairwise(timers)]
    assert all(step <= MAX_TIMER < timedelta(days=6) for step in steps)
    assert context.now - start == timedelta(days=10)
    assert _tags(calls)[0]["approval_decision"] == "timed_out"
    assert [c.payload["stage"] for c in calls if c.name == act.SET_MODEL_STAGE] == ["rejected"]
    # one event task, raced against every timer: a second waiter would swallow the decision
    assert len({id(t) for c in waits for t in c.payload if t.kind == "event"}) == 1


def test_a_decision_arriving_on_the_fourth_day_of_a_ten_day_wait_is_taken() -> None:
    events = [(3.5 * DAY, APPROVAL_DECISION, decision("approve", "alice"))]
    output, _ = run(release, gated(timeout_s=10 * DAY), script(), events=events)
    assert output["outcome"] == "deployed"


def test_a_decision_given_as_json_text_is_read() -> None:
    events = [(60.0, APPROVAL_DECISION, json.dumps(decision("approve", "bob")))]
    output, _ = run(release, gated(), script(), events=events)
    assert output["outcome"] == "deployed" and output["approval"]["by"] == "bob"


def test_a_decision_by_someone_not_on_the_list_or_by_the_pipeline_is_ignored() -> None:
    events = [
        (10.0, APPROVAL_DECISION, decision("approve", "mallory")),
        (20.0, APPROVAL_DECISION, decision("approve", "mlops-pipeline")),
        (25.0, APPROVAL_DECISION, {"decision": "maybe", "by": "alice"}),
        (30.0, APPROVAL_DECISION, decision("reject", "alice", "not yet")),
    ]
    output, _ = run(release, gated(approvers=("alice", "mlops-pipeline")), script(), events=events)
    assert output["outcome"] == "rejected" and output["approval"]["by"] == "alice"


def test_may_approve_is_case_blind_and_never_the_pipeline() -> None:
    policy = ApprovalPolicy(["Alice@Example.com", "mlops-pipeline"])
    assert may_approve(policy, "alice@example.com")
    assert not may_approve(policy, "mlops-pipeline") and not may_approve(policy, "") and not may_approve(policy, "eve")


def test_without_an_approval_step_nothing_waits() -> None:
    output, calls = run(release, release_context(), script())
    assert output["outcome"] == "deployed" and not [c for c in calls if c.kind == "any"]
    assert act.TAG_MODEL not in names(calls) and act.NOTIFY not in names(calls)


# --- notifications -----------------------------------------------------------------------------------------------


def test_every_target_gets_the_pending_approval_and_the_outcome_with_links() -> None:
    sent: list[dict[str, Any]] = []
    context = gated(notify=["json", "slack"], links="https://app.example")
    events = [(60.0, APPROVAL_DECISION, decision("approve", "alice"))]
    output, _ = run(release, context, script(**{act.NOTIFY: _sending(sent)}), events=events)
    assert output["outcome"] == "deployed"
    assert [(n["kind"], n["target"], n["format"]) for n in sent] == [
        ("approval_pending", 0, "json"),
        ("approval_pending", 1, "slack"),
        ("outcome", 0, "json"),
        ("outcome", 1, "slack"),
    ]
    pending, finished = sent[0], sent[2]
    assert pending["approvers"] == ["alice", "bob"] and pending["until"] > pending["since"]
    assert pending["link"] == "https://app.example/api/runs/release-diabetes-ridge-3"
    assert pending["approve_link"].endswith("/approve") and pending["reject_link"].endswith("/reject")
    assert finished["outcome"] == "deployed" and finished["reason"] == "version 3 serves production"
    assert "url" not in pending  # the targets' URLs stay in the settings


def test_a_notification_is_retried_with_backoff_and_a_final_failure_is_only_recorded() -> None:
    context = release_context()
    context.input["config"]["notify"] = ["teams"]
    attempts: list[datetime] = []

    def down(payload: dict[str, Any]) -> Any:
        attempts.append(context.now)
        raise RuntimeError("[retryable] WebhookFailed: notification outcome to target 0 (teams): HTTP 503")

    output, _ = run(release, context, script(**{act.NOTIFY: down}))
    assert output["outcome"] == "deployed" and output["reason"] == "version 3 serves production"
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps == [1.0, 2.0, 4.0, 8.0, 16.0]  # six attempts, durable timers doubling from 1 s
    last = output["stages"][-1]
    assert last["name"] == "notify" and last["status"] == "failed"
    assert last["detail"].startswith("notification outcome to target 0 (teams) failed: [retryable] WebhookFailed")
    assert output["stage"] == "promote"  # the headline stage stays the release's own


def test_a_permanent_notification_failure_is_not_retried() -> None:
    attempts: list[Any] = []

    def refused(payload: dict[str, Any]) -> Any:
        attempts.append(payload)
        raise RuntimeError("WebhookFailed: notification outcome to target 0 (json): HTTP 404")

    context = release_context()
    context.input["config"]["notify"] = ["json"]
    output, _ = run(release, context, script(**{act.NOTIFY: refused}))
    assert len(attempts) == 1 and output["outcome"] == "deployed"


def test_a_failed_release_is_notified_before_it_fails() -> None:
    sent: list[dict[str, Any]] = []

    def broken(payload: dict[str, Any]) -> Any:
        raise ValueError("MessageError: no such model")

    context = release_context()
    context.input["config"]["notify"] = ["json"]
    calls: list[Call] = []
    with pytest.raises(ValueError, match="no such model"):
        run(
            release,
            context,
            script(**{act.DEPLOY_MODEL: broken, act.NOTIFY: _sending(sent)}),
            calls=calls,
        )
    assert [(n["kind"], n["outcome"]) for n in sent] == [("outcome", "failed")]
    assert "no such model" in sent[0]["reason"]
