"""The release recipe: wait for the model's release slot → QA deploy → API test → production deploy beside the
current version (blue/green) → shift traffic → API test → promote, or roll back. Each model has its own endpoints
and release slot.

Outcomes: deployed · qa_failed (a QA deployment or QA test failed; production untouched) · rolled_back (the
production deployment or test failed; the previous version serves again) · superseded (a newer version was
registered while this one waited) · rejected / approval_timed_out (the policy's approval step: an approver said no,
or nobody decided in time; production untouched). Releases of one model never interleave.

The approval step is Durable's human-interaction pattern: the external event ``approval_decision`` raced against a
durable timer. A wait longer than one timer may last on the Azure Storage backend (under 7 days) is a loop of
timers of at most ``MAX_TIMER``. Notifications (a pending approval, the outcome) go to each webhook of the input's
``notify`` with their own back-off; one that still fails is recorded as a ``notify`` entry of the timeline and never
changes the release. A release whose input has neither (every input written before they existed) schedules exactly
what it did before, so instances in flight replay.

Every endpoint change (deployment, traffic, removal) is a long operation: one activity begins it and returns at
once, then the recipe polls it with durable timers (as training is polled) until it succeeds, fails or runs out of
time. No activity waits for Azure, so none comes near the host's function timeout, and traffic moves only after the
deployment it moves to has succeeded.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from activities import names as act
from messages.enums import (
    Decision,
    Environment,
    ModelStage,
    NoticeKind,
    Outcome,
    RunKind,
    Stage,
    StageStatus,
    endpoint_id,
)
from messages.runs import PIPELINE_APPROVER, ApiTest, ApprovalPolicy, DeployPolicy, ReleaseInput
from messages.steps import (
    ApiTestRequest,
    ApiVerdict,
    ApprovalDecision,
    Claim,
    DeployPlan,
    DeployRequest,
    Described,
    ModelRef,
    Notice,
    OperationPoll,
    ReleaseClaim,
    RemoveRequest,
    StageMove,
    TagRequest,
    TrafficRequest,
    failed_message,
    succeeded,
)
from messages.wire import MessageError
from messages.work import Operation, OperationKind, OperationState, OperationStatus
from orchestrators.names import APPROVAL_DECISION
from orchestrators.retrain import poll_after
from orchestrators.status import Timeline, iso
from orchestrators.steps import Backoff, Orchestration, ask, begin, call, done, fail_running_stage, short_error

QA, PRODUCTION = Environment.QA.value, Environment.PRODUCTION.value
#: the longest single timer of an approval's wait: well under the Azure Storage backend's limit (under 7 days; the
#: Durable SDK is told 6), so a wait of any length is a loop of these on every backend
MAX_TIMER = timedelta(days=3)
#: how a notification is retried: 1 s doubling to 60 s, 6 attempts (about a minute and a half of a target down)
NOTIFY_BACKOFF = Backoff(first_s=1.0, factor=2.0, longest_s=60.0, attempts=6)
#: a comment kept in a model version's tags at most (the run's timeline keeps it whole, up to the API's bound)
TAG_COMMENT_MAX = 1000


class EndpointOperationFailed(RuntimeError):
    """A traffic change or removal that the platform failed: the release cannot go on safely."""


def release(context: df.DurableOrchestrationContext) -> Orchestration:
    run = ReleaseInput.from_dict(context.get_input() or {})
    ref = ModelRef(run.model_name, run.version)
    timeline = Timeline(RunKind.RELEASE, run.trigger, model_version=run.version, model=run.model_name)
    try:
        result = yield from _run(context, run, ref, timeline)
    except Exception as exc:
        fail_running_stage(context, timeline, exc)
        yield from _notify(
            context, run, timeline, NoticeKind.OUTCOME, outcome=Outcome.FAILED.value, reason=short_error(exc)
        )
        raise
    if run.config.notify:
        yield from _notify(
            context, run, timeline, NoticeKind.OUTCOME, outcome=timeline.outcome or "", reason=timeline.reason
        )
        result = {**result, **done(context, timeline)}
    return result


def _run(
    context: df.DurableOrchestrationContext, run: ReleaseInput, ref: ModelRef, timeline: Timeline
) -> Orchestration:
    described = yield from ask(context, act.DESCRIBE_MODEL, ref, Described)
    timeline.set(related=described.run_id or None)
    granted = yield from _wait_turn(context, run, ref, timeline)
    if not granted:
        return done(context, timeline)
    owner = ReleaseClaim(ref.model_name, ref.version, context.instance_id)
    # not try/finally: a yield in ``finally`` would run when the SDK closes the suspended generator after an
    # episode (GeneratorExit), and a generator that yields then is an error; Exception excludes GeneratorExit
    try:
        result = yield from _release(context, run, ref, timeline)
    except Exception:
        yield from call(context, act.FREE_RELEASE, owner)
        raise
    yield from call(context, act.FREE_RELEASE, owner)
    return result


def _stage(context: df.DurableOrchestrationContext, ref: ModelRef, stage: ModelStage) -> Generator[Any, Any, None]:
    yield from call(context, act.SET_MODEL_STAGE, StageMove(ref.model_name, ref.version, stage))


def _wait_turn(
    context: df.DurableOrchestrationContext, run: ReleaseInput, ref: ModelRef, timeline: Timeline
) -> Generator[Any, Any, bool]:
    """Poll the model's release slot with durable timers; a newer registered version supersedes this one."""
    begin(context, timeline, Stage.WAIT, "waiting for the model's release slot")
    poll = timedelta(seconds=run.config.poll_seconds)
    while True:
        claim = yield from ask(
            context, act.CLAIM_RELEASE, ReleaseClaim(ref.model_name, ref.version, context.instance_id), Claim
        )
        if claim.superseded:
            yield from _stage(context, ref, ModelStage.ARCHIVED)
            reason = f"version {ref.version} superseded by version {claim.newest} before its release started"
            timeline.end(context.current_utc_datetime, reason, StageStatus.SKIPPED)
            timeline.finish(Outcome.SUPERSEDED, reason)
            return False
        if claim.granted:
            timeline.end(context.current_utc_datetime, "release slot taken")
            return True
        timeline.stages[-1]["detail"] = f"waiting for the release of version {claim.active} to finish"
        context.set_custom_status(timeline.status())
        yield context.create_timer(context.current_utc_datetime + poll)


def _await(
    context: df.DurableOrchestrationContext, status: OperationStatus, policy: DeployPolicy, what: str
) -> Generator[Any, Any, OperationStatus]:
    """Poll a begun operation with durable timers until it is no longer running or its time is up."""
    started = context.current_utc_datetime
    deadline = started + timedelta(minutes=policy.timeout_minutes)
    while status.state is OperationState.RUNNING:
        now = context.current_utc_datetime
        if now >= deadline:
            return OperationStatus(
                status.operation,
                OperationState.FAILED,
                f"{what} did not finish within {policy.timeout_minutes:g} minutes",
            )
        wait = poll_after((now - started).total_seconds(), policy.poll_seconds)
        yield context.create_timer(now + timedelta(seconds=wait))
        status = yield from ask(
            context, act.ENDPOINT_OPERATION_STATUS, OperationPoll(status.operation), OperationStatus
        )
    return status


def begun(answer: dict[str, Any] | None, kind: OperationKind, endpoint: str) -> OperationStatus:
    """The status an endpoint activity answered; an answer without a ``state`` was recorded (in the history of an
    instance still running) before endpoint changes became long operations, when the change was done on return."""
    if answer and "state" in answer:
        return OperationStatus.from_dict(answer)
    return OperationStatus(Operation(kind, endpoint), OperationState.SUCCEEDED)


def _change(
    context: df.DurableOrchestrationContext,
    activity: str,
    payload: TrafficRequest | RemoveRequest,
    policy: DeployPolicy,
    what: str,
) -> Generator[Any, Any, None]:
    """Begin a traffic change or removal and wait for it; its failure fails the release with the platform's word."""
    answer = yield from call(context, activity, payload)
    kind = OperationKind.TRAFFIC if isinstance(payload, TrafficRequest) else OperationKind.REMOVE
    status = yield from _await(context, begun(answer, kind, payload.endpoint), policy, what)
    if not succeeded(status):
        raise EndpointOperationFailed(f"{what} failed: {failed_message(status)}")


def _deploy(
    context: df.DurableOrchestrationContext, ref: ModelRef, endpoint: str, policy: DeployPolicy
) -> Generator[Any, Any, tuple[DeployPlan, OperationStatus]]:
    """Begin the deployment and wait for it: (the slot plan, the final operation status)."""
    plan = yield from ask(context, act.DEPLOY_MODEL, DeployRequest(ref.model_name, ref.version, endpoint), DeployPlan)
    what = f"deployment of version {ref.version} to {endpoint} slot {plan.slot}"
    status = yield from _await(context, plan.status or begun(None, OperationKind.DEPLOY, endpoint), policy, what)
    return plan, status


def _test(
    context: df.DurableOrchestrationContext, ref: ModelRef, endpoint: str, tests: ApiTest
) -> Generator[Any, Any, ApiVerdict]:
    verdict = yield from ask(
        context, act.API_TEST, ApiTestRequest(ref.model_name, ref.version, endpoint, tests), ApiVerdict
    )
    return verdict


def _release(
    context: df.DurableOrchestrationContext, run: ReleaseInput, ref: ModelRef, timeline: Timeline
) -> Orchestration:
    policy, tests = run.config.deploy, run.config.api_test
    qa_endpoint = endpoint_id(run.config.endpoint_prefix, QA)
    begin(context, timeline, Stage.DEPLOY_QA, f"deploying version {ref.version} to QA")
    qa, status = yield from _deploy(context, ref, qa_endpoint, policy)
    if not succeeded(status):
        reason = f"QA deployment failed: {failed_message(status)}"
        timeline.fail(context.current_utc_datetime, reason)
        yield from _stage(context, ref, ModelStage.REJECTED)
        timeline.finish(Outcome.QA_FAILED, f"{reason}; production untouched")
        return done(context, timeline)
    others = list(qa.others or ([qa.previous_slot] if qa.previous_slot else []))
    qa_traffic = {qa.slot: 100, **dict.fromkeys(others, 0)}
    yield from _change(
        context, act.SET_TRAFFIC, TrafficRequest(qa_endpoint, qa_traffic, ref.model_name), policy, "QA traffic change"
    )
    for other in others:
        yield from _change(
            context,
            act.REMOVE_DEPLOYMENT,
            RemoveRequest(qa_endpoint, other, ref.model_name),
            policy,
            f"removal of QA slot {other}",
        )
    timeline.end(context.current_utc_datetime, f"QA slot {qa.slot} serves version {ref.version}")
    begin(context, timeline, Stage.TEST_QA, "API tests against QA")
    verdict = yield from _test(context, ref, qa_endpoint, tests)
    if not verdict.passed:
        timeline.fail(context.current_utc_datetime, verdict.summary)
        yield from _stage(context, ref, ModelStage.REJECTED)
        timeline.finish(Outcome.QA_FAILED, f"QA API tests failed: {verdict.summary}; production untouched")
        return done(context, timeline, tests={"qa": verdict.to_dict()})
    timeline.end(context.current_utc_datetime, verdict.summary)
    if run.config.approval is not None:
        decision = yield from _approval(context, run, ref, timeline, run.config.approval)
        if decision is None or decision.decision is not Decision.APPROVE:
            yield from _stage(context, ref, ModelStage.REJECTED)
            if decision is None:
                reason = f"nobody approved within {_span(run.config.approval.timeout_s)}"
                timeline.finish(Outcome.APPROVAL_TIMED_OUT, f"{reason}; production untouched")
            else:
                said = f": {decision.comment}" if decision.comment else ""
                timeline.finish(Outcome.REJECTED, f"rejected by {decision.by}{said}; production untouched")
            return done(context, timeline, tests={"qa": verdict.to_dict()})
    production = endpoint_id(run.config.endpoint_prefix, PRODUCTION)
    return (
        yield from _production(
            context, ref, run.config.production_tests, policy, timeline, qa_verdict=verdict, endpoint=production
        )
    )


def _production(
    context: df.DurableOrchestrationContext,
    ref: ModelRef,
    tests: ApiTest,
    policy: DeployPolicy,
    timeline: Timeline,
    *,
    qa_verdict: ApiVerdict,
    endpoint: str,
) -> Orchestration:
    begin(context, timeline, Stage.DEPLOY_PRODUCTION, f"deploying version {ref.version} beside the current one")
    prod, status = yield from _deploy(context, ref, endpoint, policy)
    new, old = prod.slot, prod.previous_slot
    if not succeeded(status):
        reason = f"production deployment failed: {failed_message(status)}"
        timeline.fail(context.current_utc_datetime, reason)
        yield from _rollback(context, ref, prod, policy, timeline, traffic_moved=False, endpoint=endpoint)
        timeline.finish(
            Outcome.ROLLED_BACK,
            f"{reason}; " + (f"version {prod.previous_version} still serves" if old else "production holds no version"),
        )
        return done(context, timeline, tests={"qa": qa_verdict.to_dict()})
    traffic = {new: 100, **({old: 0} if old else {})}
    yield from _change(
        context,
        act.SET_TRAFFIC,
        TrafficRequest(endpoint, traffic, ref.model_name),
        policy,
        "production traffic change",
    )
    yield from _stage(context, ref, ModelStage.PRODUCTION)
    timeline.end(
        context.current_utc_datetime,
        f"slot {new} takes 100% of production traffic"
        + (f" (version {prod.previous_version} kept in slot {old})" if old else ""),
    )
    begin(context, timeline, Stage.TEST_PRODUCTION, "API tests against production")
    verdict = yield from _test(context, ref, endpoint, tests)
    tested = {"qa": qa_verdict.to_dict(), "production": verdict.to_dict()}
    if not verdict.passed:
        timeline.fail(context.current_utc_datetime, verdict.summary)
        yield from _rollback(context, ref, prod, policy, timeline, traffic_moved=True, endpoint=endpoint)
        timeline.finish(
            Outcome.ROLLED_BACK,
            f"production API tests failed: {verdict.summary}; "
            + (f"version {prod.previous_version} serves again" if old else "no previous version to restore"),
        )
        return done(context, timeline, tests=tested)
    timeline.end(context.current_utc_datetime, verdict.summary)
    begin(context, timeline, Stage.PROMOTE, f"version {ref.version} becomes the champion")
    yield from _stage(context, ref, ModelStage.CHAMPION)
    if old:
        yield from _change(
            context,
            act.REMOVE_DEPLOYMENT,
            RemoveRequest(endpoint, old, ref.model_name),
            policy,
            f"removal of production slot {old}",
        )
    timeline.end(context.current_utc_datetime, f"champion: version {ref.version}")
    timeline.finish(Outcome.DEPLOYED, f"version {ref.version} serves production")
    return done(context, timeline, tests=tested)


def _rollback(
    context: df.DurableOrchestrationContext,
    ref: ModelRef,
    prod: DeployPlan,
    policy: DeployPolicy,
    timeline: Timeline,
    *,
    traffic_moved: bool,
    endpoint: str,
) -> Generator[Any, Any, None]:
    new, old = prod.slot, prod.previous_slot
    begin(context, timeline, Stage.ROLLBACK, "restoring the previous production version")
    if old and traffic_moved:
        restore = {old: 100, new: 0}
        yield from _change(
            context,
            act.SET_TRAFFIC,
            TrafficRequest(endpoint, restore, ref.model_name),
            policy,
            "production traffic restore",
        )
    yield from _change(
        context,
        act.REMOVE_DEPLOYMENT,
        RemoveRequest(endpoint, new, ref.model_name),
        policy,
        f"removal of production slot {new}",
    )
    yield from _stage(context, ref, ModelStage.REJECTED)
    timeline.end(context.current_utc_datetime, f"slot {old} serves again" if old else "production emptied")


def _span(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def may_approve(policy: ApprovalPolicy, who: str) -> bool:
    """``who`` is on the policy's list (case-insensitive) and is not the pipeline itself."""
    name = who.strip().casefold()
    return bool(name) and name != PIPELINE_APPROVER and name in {a.strip().casefold() for a in policy.approvers}


def _approval(
    context: df.DurableOrchestrationContext,
    run: ReleaseInput,
    ref: ModelRef,
    timeline: Timeline,
    policy: ApprovalPolicy,
) -> Generator[Any, Any, ApprovalDecision | None]:
    """Wait for an approver's decision, at most ``policy.timeout_s``: the decision, or None when time ran out.

    The event task is made once and raced against one timer after another (each at most ``MAX_TIMER``): a second
    ``wait_for_external_event`` would leave the first one waiting for the same event."""
    since = context.current_utc_datetime
    until = since + timedelta(seconds=policy.timeout_s)
    who = ", ".join(policy.approvers)
    begin(context, timeline, Stage.APPROVAL, f"waiting for approval by {who} until {iso(until)}")
    pending = {"state": "pending", "approvers": list(policy.approvers), "since": iso(since), "until": iso(until)}
    timeline.set(approval=pending)
    context.set_custom_status(timeline.status())
    yield from _notify(context, run, timeline, NoticeKind.APPROVAL_PENDING, since=since, until=until)
    event = context.wait_for_external_event(APPROVAL_DECISION)
    decision: ApprovalDecision | None = None
    while decision is None:
        now = context.current_utc_datetime
        if now >= until:
            break
        timer = context.create_timer(min(until, now + MAX_TIMER))
        winner = yield context.task_any([event, timer])
        if winner is not event:
            continue
        timer.cancel()
        decision, refused = _read_decision(event.result, policy)
        if decision is None:  # not from an approver: noted, and the wait goes on for a valid one
            timeline.stages[-1]["detail"] = f"waiting for approval by {who} until {iso(until)} ({refused})"
            context.set_custom_status(timeline.status())
            event = context.wait_for_external_event(APPROVAL_DECISION)
    now = context.current_utc_datetime
    if decision is None:
        timeline.set(approval={**pending, "state": "timed_out", "decided": iso(now)})
        tags = {"approval_decision": "timed_out", "approval_at": iso(now), "approval_run": context.instance_id}
        yield from call(context, act.TAG_MODEL, TagRequest(ref.model_name, ref.version, tags))
        timeline.fail(now, f"no decision by {who} within {_span(policy.timeout_s)}")
        return None
    approved = decision.decision is Decision.APPROVE
    state = "approved" if approved else "rejected"
    timeline.set(
        approval={**pending, "state": state, "by": decision.by, "comment": decision.comment, "decided": iso(now)}
    )
    tags = {
        "approval_decision": state,
        "approval_by": decision.by,
        "approval_comment": decision.comment[:TAG_COMMENT_MAX],
        "approval_at": decision.at or iso(now),
        "approval_run": context.instance_id,
    }
    yield from call(context, act.TAG_MODEL, TagRequest(ref.model_name, ref.version, tags))
    said = f": {decision.comment}" if decision.comment else ""
    if approved:
        timeline.end(now, f"approved by {decision.by}{said}")
    else:
        timeline.fail(now, f"rejected by {decision.by}{said}")
    return decision


def _read_decision(raw: Any, policy: ApprovalPolicy) -> tuple[ApprovalDecision | None, str]:
    """The event's decision when it is well formed and from an approver; else (None, why it was ignored). The data
    may arrive as its JSON text (how devhost, and some extension versions, hand an event's input over)."""
    try:
        decision = ApprovalDecision.from_dict(json.loads(raw) if isinstance(raw, str) else raw)
    except (MessageError, ValueError) as exc:
        return None, f"a malformed decision was ignored: {exc}"
    if not may_approve(policy, decision.by):
        return None, f"a decision by {decision.by!r}, who is not an approver, was ignored"
    return decision, ""


def _notify(
    context: df.DurableOrchestrationContext,
    run: ReleaseInput,
    timeline: Timeline,
    kind: NoticeKind,
    *,
    outcome: str = "",
    reason: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> Generator[Any, Any, None]:
    """Notify every webhook of the input; a notification that fails after its retries is recorded, never raised."""
    if not run.config.notify:
        return
    link = f"{run.config.links}/api/runs/{context.instance_id}"
    approvers = list(run.config.approval.approvers) if run.config.approval else []
    for target, kind_of_body in enumerate(run.config.notify):
        notice = Notice(
            kind,
            target,
            kind_of_body,
            context.instance_id,
            run.model_name,
            run.version,
            outcome=outcome,
            reason=reason,
            approvers=approvers if kind is NoticeKind.APPROVAL_PENDING else [],
            since=iso(since) if since else "",
            until=iso(until) if until else "",
            link=link,
            approve_link=f"{link}/approve" if kind is NoticeKind.APPROVAL_PENDING else "",
            reject_link=f"{link}/reject" if kind is NoticeKind.APPROVAL_PENDING else "",
            time=iso(context.current_utc_datetime),
        )
        try:
            yield from call(context, act.NOTIFY, notice, NOTIFY_BACKOFF)
        except Exception as exc:  # any activity failure: a notification never changes the release
            timeline.record(
                Stage.NOTIFY,
                context.current_utc_datetime,
                f"notification {kind.value} to target {target} ({kind_of_body.value}) failed: {short_error(exc)}",
                StageStatus.FAILED,
            )
            context.set_custom_status(timeline.status())
