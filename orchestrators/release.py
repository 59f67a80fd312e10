"""The release recipe: wait for the model's release slot → QA deploy → API test → production deploy beside the
current version (blue/green) → shift traffic → API test → promote, or roll back. Each model has its own endpoints
and release slot.

Outcomes: deployed · qa_failed (a QA deployment or QA test failed; production untouched) · rolled_back (the
production deployment or test failed; the previous version serves again) · superseded (a newer version was
registered while this one waited). Releases of one model never interleave.

Every endpoint change (deployment, traffic, removal) is a long operation: one activity begins it and returns at
once, then the recipe polls it with durable timers (as training is polled) until it succeeds, fails or runs out of
time. No activity waits for Azure, so none comes near the host's function timeout, and traffic moves only after the
deployment it moves to has succeeded.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities import names as act
from messages.enums import Environment, ModelStage, Outcome, RunKind, Stage, StageStatus, endpoint_id
from messages.runs import ApiTest, DeployPolicy, ReleaseInput
from messages.steps import (
    ApiTestRequest,
    ApiVerdict,
    Claim,
    DeployPlan,
    DeployRequest,
    Described,
    ModelRef,
    OperationPoll,
    ReleaseClaim,
    RemoveRequest,
    StageMove,
    TrafficRequest,
    failed_message,
    succeeded,
)
from messages.work import Operation, OperationKind, OperationState, OperationStatus
from orchestrators.retrain import poll_after
from orchestrators.status import Timeline
from orchestrators.steps import Orchestration, ask, begin, call, done, fail_running_stage

QA, PRODUCTION = Environment.QA.value, Environment.PRODUCTION.value


class EndpointOperationFailed(RuntimeError):
    """A traffic change or removal that the platform failed: the release cannot go on safely."""


def release(context: df.DurableOrchestrationContext) -> Orchestration:
    run = ReleaseInput.from_dict(context.get_input() or {})
    ref = ModelRef(run.model_name, run.version)
    timeline = Timeline(RunKind.RELEASE, run.trigger, model_version=run.version, model=run.model_name)
    try:
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
    except Exception as exc:
        fail_running_stage(context, timeline, exc)
        raise


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
