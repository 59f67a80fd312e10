"""The release recipe: wait for the model's release slot → QA deploy → API test → production deploy beside the
current version (blue/green) → shift traffic → API test → promote, or roll back.

Outcomes: deployed · qa_failed (production untouched) · rolled_back (the previous version serves again) ·
superseded (a newer version was registered while this one waited). Releases of one model never interleave.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities import names as act
from orchestrators.status import Timeline
from orchestrators.steps import RETRY, Orchestration, begin, done, fail_running_stage

#: a deployment can fail transiently (a port in use, a slow model load): try twice before calling it failed
DEPLOY_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=2)


def release(context: df.DurableOrchestrationContext) -> Orchestration:
    run: dict[str, Any] = context.get_input() or {}
    model, version = str(run["model_name"]), str(run["version"])
    timeline = Timeline("release", run.get("trigger", "event"), model_version=version)
    ref = {"model_name": model, "version": version}
    try:
        described = yield context.call_activity_with_retry(act.DESCRIBE_MODEL, RETRY, ref)
        timeline.set(related=described.get("run_id") or None)
        granted = yield from _wait_turn(context, run, ref, timeline)
        if not granted:
            return done(context, timeline)
        try:
            result = yield from _release(context, run, ref, timeline)
        finally:
            yield context.call_activity_with_retry(act.FREE_RELEASE, RETRY, {**ref, "owner": context.instance_id})
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
        claim = yield context.call_activity_with_retry(act.CLAIM_RELEASE, RETRY, {
            **ref, "owner": context.instance_id})
        if claim["superseded"]:
            yield context.call_activity_with_retry(act.SET_MODEL_STAGE, RETRY, {**ref, "stage": "archived"})
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


def _release(context: df.DurableOrchestrationContext, run: dict[str, Any], ref: dict[str, str],
             timeline: Timeline) -> Orchestration:
    tests = run["config"]["api_test"]
    begin(context, timeline, "deploy_qa", f"deploying version {ref['version']} to QA")
    qa = yield context.call_activity_with_retry(act.DEPLOY_MODEL, DEPLOY_RETRY, {
        **ref, "endpoint": "qa", "exclusive": True})
    timeline.end(context.current_utc_datetime, f"QA slot {qa['slot']} serves version {ref['version']}")
    begin(context, timeline, "test_qa", "API tests against QA")
    verdict = yield context.call_activity_with_retry(act.API_TEST, RETRY, {
        **ref, "endpoint": "qa", "thresholds": tests})
    if not verdict["passed"]:
        timeline.fail(context.current_utc_datetime, verdict["summary"])
        yield context.call_activity_with_retry(act.SET_MODEL_STAGE, RETRY, {**ref, "stage": "rejected"})
        timeline.finish("qa_failed", f"QA API tests failed: {verdict['summary']}; production untouched")
        return done(context, timeline, tests={"qa": verdict})
    timeline.end(context.current_utc_datetime, verdict["summary"])
    production_tests = run["config"].get("api_test_production", tests)
    return (yield from _production(context, ref, production_tests, timeline, verdict))


def _production(context: df.DurableOrchestrationContext, ref: dict[str, str], tests: dict[str, Any],
                timeline: Timeline, qa_verdict: dict[str, Any]) -> Orchestration:
    begin(context, timeline, "deploy_production", f"deploying version {ref['version']} beside the current one")
    prod = yield context.call_activity_with_retry(act.DEPLOY_MODEL, DEPLOY_RETRY, {
        **ref, "endpoint": "production", "exclusive": False})
    new, old = prod["slot"], prod.get("previous_slot")
    traffic = {new: 100, **({old: 0} if old else {})}
    yield context.call_activity_with_retry(act.SET_TRAFFIC, RETRY, {"endpoint": "production", "traffic": traffic})
    yield context.call_activity_with_retry(act.SET_MODEL_STAGE, RETRY, {**ref, "stage": "production"})
    timeline.end(context.current_utc_datetime, f"slot {new} takes 100% of production traffic"
                 + (f" (version {prod.get('previous_version')} kept in slot {old})" if old else ""))
    begin(context, timeline, "test_production", "API tests against production")
    verdict = yield context.call_activity_with_retry(act.API_TEST, RETRY, {
        **ref, "endpoint": "production", "thresholds": tests})
    tested = {"qa": qa_verdict, "production": verdict}
    if not verdict["passed"]:
        timeline.fail(context.current_utc_datetime, verdict["summary"])
        yield from _rollback(context, ref, prod, timeline)
        timeline.finish("rolled_back", f"production API tests failed: {verdict['summary']}; "
                        + (f"version {prod.get('previous_version')} serves again" if old else
                           "no previous version to restore"))
        return done(context, timeline, tests=tested)
    timeline.end(context.current_utc_datetime, verdict["summary"])
    begin(context, timeline, "promote", f"version {ref['version']} becomes the champion")
    yield context.call_activity_with_retry(act.SET_MODEL_STAGE, RETRY, {**ref, "stage": "champion"})
    if old:
        yield context.call_activity_with_retry(act.REMOVE_DEPLOYMENT, RETRY, {"endpoint": "production", "slot": old})
    timeline.end(context.current_utc_datetime, f"champion: version {ref['version']}")
    timeline.finish("deployed", f"version {ref['version']} serves production")
    return done(context, timeline, tests=tested)


def _rollback(context: df.DurableOrchestrationContext, ref: dict[str, str], prod: dict[str, Any],
              timeline: Timeline) -> Generator[Any, Any, None]:
    new, old = prod["slot"], prod.get("previous_slot")
    begin(context, timeline, "rollback", "restoring the previous production version")
    if old:
        yield context.call_activity_with_retry(act.SET_TRAFFIC, RETRY, {
            "endpoint": "production", "traffic": {old: 100, new: 0}})
    yield context.call_activity_with_retry(act.REMOVE_DEPLOYMENT, RETRY, {"endpoint": "production", "slot": new})
    yield context.call_activity_with_retry(act.SET_MODEL_STAGE, RETRY, {**ref, "stage": "rejected"})
    timeline.end(context.current_utc_datetime, f"slot {old} serves again" if old else "production emptied")
