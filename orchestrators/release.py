"""The release recipe: wait for the model's release slot → QA deploy → API test → production deploy beside the
current version (blue/green) → shift traffic → API test → promote, or roll back.

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
from orchestrators.retrain import poll_after
from orchestrators.status import Timeline
from orchestrators.steps import Orchestration, begin, call, done, fail_running_stage

#: how endpoint operations are polled when the input does not say (instances started before the setting existed)
DEPLOY_FALLBACK = {"poll_seconds": 30.0, "timeout_minutes": 60}
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


class EndpointOperationFailed(RuntimeError):
    """A traffic change or removal that the platform failed: the release cannot go on safely."""


def release(context: df.DurableOrchestrationContext) -> Orchestration:
    run: dict[str, Any] = context.get_input() or {}
    model, version = str(run["model_name"]), str(run["version"])
    timeline = Timeline("release", run.get("trigger", "event"), model_version=version)
    ref = {"model_name": model, "version": version}
    try:
        described = yield from call(context, act.DESCRIBE_MODEL, ref)
        timeline.set(related=described.get("run_id") or None)
        granted = yield from _wait_turn(context, run, ref, timeline)
        if not granted:
            return done(context, timeline)
        owner = {**ref, "owner": context.instance_id}
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


def _wait_turn(context: df.DurableOrchestrationContext, run: dict[str, Any], ref: dict[str, str],
               timeline: Timeline) -> Generator[Any, Any, bool]:
    """Poll the model's release slot with durable timers; a newer registered version supersedes this one."""
    begin(context, timeline, "wait", "waiting for the model's release slot")
    poll = timedelta(seconds=float(run["config"].get("poll_seconds", 5)))
    while True:
        claim = yield from call(context, act.CLAIM_RELEASE, {
            **ref, "owner": context.instance_id})
        if claim["superseded"]:
            yield from call(context, act.SET_MODEL_STAGE, {**ref, "stage": "archived"})
            reason = f"version {ref['version']} superseded by version {claim['newest']} before its release started"
            timeline.end(context.current_utc_datetime, reason, "skipped")
            timeline.finish("superseded", reason)
            return False
        if claim["granted"]:
            timeline.end(context.current_utc_datetime, "release slot taken")
            return True
        timeline.stages[-1]["detail"] = f"waiting for the release of version {claim['active']} to finish"
        context.set_custom_status(timeline.status())
        yield context.create_timer(context.current_utc_datetime + poll)


def _policy(run: dict[str, Any]) -> dict[str, Any]:
    return {**DEPLOY_FALLBACK, **dict(run["config"].get("deploy") or {})}


def _await(context: df.DurableOrchestrationContext, status: dict[str, Any], policy: dict[str, Any],
           what: str) -> Generator[Any, Any, dict[str, Any]]:
    """Poll a begun operation with durable timers until it is no longer running or its time is up."""
    if "state" not in status:  # a result recorded before endpoint changes became long operations
        return {**status, "state": SUCCEEDED}
    started = context.current_utc_datetime
    deadline = started + timedelta(minutes=float(policy["timeout_minutes"]))
    while status["state"] == RUNNING:
        now = context.current_utc_datetime
        if now >= deadline:
            return {**status, "state": FAILED,
                    "message": f"{what} did not finish within {policy['timeout_minutes']} minutes"}
        wait = poll_after((now - started).total_seconds(), float(policy["poll_seconds"]))
        yield context.create_timer(now + timedelta(seconds=wait))
        status = yield from call(context, act.ENDPOINT_OPERATION_STATUS, {
            "operation": status["operation"]})
    return dict(status)


def _change(context: df.DurableOrchestrationContext, activity: str, payload: dict[str, Any],
            policy: dict[str, Any], what: str) -> Generator[Any, Any, None]:
    """Begin a traffic change or removal and wait for it; its failure fails the release with the platform's word."""
    begun = yield from call(context, activity, payload)
    status = yield from _await(context, begun, policy, what)
    if status["state"] != SUCCEEDED:
        raise EndpointOperationFailed(f"{what} failed: {status.get('message') or 'no message'}")


def _deploy(context: df.DurableOrchestrationContext, ref: dict[str, str], endpoint: str,
            policy: dict[str, Any]) -> Generator[Any, Any, tuple[dict[str, Any], dict[str, Any]]]:
    """Begin the deployment and wait for it: (the slot plan, the final operation status)."""
    plan = yield from call(context, act.DEPLOY_MODEL, {**ref, "endpoint": endpoint})
    what = f"deployment of version {ref['version']} to {endpoint} slot {plan['slot']}"
    status = yield from _await(context, plan.get("status") or {}, policy, what)
    return dict(plan), status


def _release(context: df.DurableOrchestrationContext, run: dict[str, Any], ref: dict[str, str],
             timeline: Timeline) -> Orchestration:
    tests, policy = run["config"]["api_test"], _policy(run)
    begin(context, timeline, "deploy_qa", f"deploying version {ref['version']} to QA")
    qa, status = yield from _deploy(context, ref, "qa", policy)
    if status["state"] != SUCCEEDED:
        reason = f"QA deployment failed: {status.get('message') or 'no message'}"
        timeline.fail(context.current_utc_datetime, reason)
        yield from call(context, act.SET_MODEL_STAGE, {**ref, "stage": "rejected"})
        timeline.finish("qa_failed", f"{reason}; production untouched")
        return done(context, timeline)
    slot = qa["slot"]
    others = list(qa.get("others") or ([qa["previous_slot"]] if qa.get("previous_slot") else []))
    yield from _change(context, act.SET_TRAFFIC, {"endpoint": "qa", "traffic": {slot: 100, **dict.fromkeys(others, 0)}},
                       policy, "QA traffic change")
    for other in others:
        yield from _change(context, act.REMOVE_DEPLOYMENT, {"endpoint": "qa", "slot": other}, policy,
                           f"removal of QA slot {other}")
    timeline.end(context.current_utc_datetime, f"QA slot {slot} serves version {ref['version']}")
    begin(context, timeline, "test_qa", "API tests against QA")
    verdict = yield from call(context, act.API_TEST, {
        **ref, "endpoint": "qa", "thresholds": tests})
    if not verdict["passed"]:
        timeline.fail(context.current_utc_datetime, verdict["summary"])
        yield from call(context, act.SET_MODEL_STAGE, {**ref, "stage": "rejected"})
        timeline.finish("qa_failed", f"QA API tests failed: {verdict['summary']}; production untouched")
        return done(context, timeline, tests={"qa": verdict})
    timeline.end(context.current_utc_datetime, verdict["summary"])
    production_tests = run["config"].get("api_test_production", tests)
    return (yield from _production(context, ref, production_tests, policy, timeline, qa_verdict=verdict))


def _production(context: df.DurableOrchestrationContext, ref: dict[str, str], tests: dict[str, Any],
                policy: dict[str, Any], timeline: Timeline, *, qa_verdict: dict[str, Any]) -> Orchestration:
    begin(context, timeline, "deploy_production", f"deploying version {ref['version']} beside the current one")
    prod, status = yield from _deploy(context, ref, "production", policy)
    new, old = prod["slot"], prod.get("previous_slot")
    if status["state"] != SUCCEEDED:
        reason = f"production deployment failed: {status.get('message') or 'no message'}"
        timeline.fail(context.current_utc_datetime, reason)
        yield from _rollback(context, ref, prod, policy, timeline, traffic_moved=False)
        timeline.finish("rolled_back", f"{reason}; " + (f"version {prod.get('previous_version')} still serves"
                                                        if old else "production holds no version"))
        return done(context, timeline, tests={"qa": qa_verdict})
    traffic = {new: 100, **({old: 0} if old else {})}
    yield from _change(context, act.SET_TRAFFIC, {"endpoint": "production", "traffic": traffic}, policy,
                       "production traffic change")
    yield from call(context, act.SET_MODEL_STAGE, {**ref, "stage": "production"})
    timeline.end(context.current_utc_datetime, f"slot {new} takes 100% of production traffic"
                 + (f" (version {prod.get('previous_version')} kept in slot {old})" if old else ""))
    begin(context, timeline, "test_production", "API tests against production")
    verdict = yield from call(context, act.API_TEST, {
        **ref, "endpoint": "production", "thresholds": tests})
    tested = {"qa": qa_verdict, "production": verdict}
    if not verdict["passed"]:
        timeline.fail(context.current_utc_datetime, verdict["summary"])
        yield from _rollback(context, ref, prod, policy, timeline, traffic_moved=True)
        timeline.finish("rolled_back", f"production API tests failed: {verdict['summary']}; "
                        + (f"version {prod.get('previous_version')} serves again" if old else
                           "no previous version to restore"))
        return done(context, timeline, tests=tested)
    timeline.end(context.current_utc_datetime, verdict["summary"])
    begin(context, timeline, "promote", f"version {ref['version']} becomes the champion")
    yield from call(context, act.SET_MODEL_STAGE, {**ref, "stage": "champion"})
    if old:
        yield from _change(context, act.REMOVE_DEPLOYMENT, {"endpoint": "production", "slot": old}, policy,
                           f"removal of production slot {old}")
    timeline.end(context.current_utc_datetime, f"champion: version {ref['version']}")
    timeline.finish("deployed", f"version {ref['version']} serves production")
    return done(context, timeline, tests=tested)


def _rollback(context: df.DurableOrchestrationContext, ref: dict[str, str], prod: dict[str, Any],
              policy: dict[str, Any], timeline: Timeline, *, traffic_moved: bool) -> Generator[Any, Any, None]:
    new, old = prod["slot"], prod.get("previous_slot")
    begin(context, timeline, "rollback", "restoring the previous production version")
    if old and traffic_moved:
        yield from _change(context, act.SET_TRAFFIC, {"endpoint": "production", "traffic": {old: 100, new: 0}},
                           policy, "production traffic restore")
    yield from _change(context, act.REMOVE_DEPLOYMENT, {"endpoint": "production", "slot": new}, policy,
                       f"removal of production slot {new}")
    yield from call(context, act.SET_MODEL_STAGE, {**ref, "stage": "rejected"})
    timeline.end(context.current_utc_datetime, f"slot {old} serves again" if old else "production emptied")
