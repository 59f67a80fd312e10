"""The retrain recipe: validate → accept into the dataset → train (monitored by durable timers) → evaluate → register.

Outcomes: registered · not_better · invalid_data · training_failed · skipped_no_new_data. A losing challenger or
a bad drop is a normal, recorded outcome (runtime status Completed); only bugs fail the orchestration.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities import names as act
from orchestrators.ids import release_id, training_job_name
from orchestrators.status import Timeline
from orchestrators.steps import Orchestration, begin, call, done, fail_running_stage


def retrain(context: df.DurableOrchestrationContext) -> Orchestration:
    run: dict[str, Any] = context.get_input() or {}
    cfg: dict[str, Any] = run["config"]
    timeline = Timeline("retrain", run.get("trigger", "http"), run.get("data"))
    try:
        return (yield from _steps(context, run, cfg, timeline))
    except Exception as exc:
        fail_running_stage(context, timeline, exc)
        raise


def _steps(context: df.DurableOrchestrationContext, run: dict[str, Any], cfg: dict[str, Any],
           timeline: Timeline) -> Orchestration:
    dataset = yield from _dataset(context, run, cfg, timeline)
    if timeline.fields["outcome"]:
        return done(context, timeline)
    job = yield from _train(context, cfg, dataset, timeline)
    if timeline.fields["outcome"]:
        return done(context, timeline)
    evaluation = yield from _evaluate(context, cfg, job["job_id"], timeline)
    if not evaluation["promote"]:
        timeline.finish("not_better", evaluation["reason"])
        return done(context, timeline, evaluation=evaluation)
    yield from _register(context, cfg, job["job_id"], dataset, evaluation, timeline=timeline)
    return done(context, timeline, evaluation=evaluation)


def _dataset(context: df.DurableOrchestrationContext, run: dict[str, Any], cfg: dict[str, Any],
             timeline: Timeline) -> Generator[Any, Any, dict[str, Any]]:
    """The dataset to train on: the drop validated and accepted, or (no drop) the accumulated dataset."""
    data = run.get("data")
    if data:
        begin(context, timeline, "validate", f"validating {data}")
        check = yield from call(context, act.VALIDATE_DROP, {
            "data": data, "etag": run.get("etag"), "config": cfg})
        if not check["ok"]:
            timeline.fail(context.current_utc_datetime, check["summary"])
            yield from call(context, act.QUARANTINE_DROP, {
                "data": data, "report": check["report"], "config": cfg})
            timeline.finish("invalid_data", "; ".join(check["messages"]) or check["summary"])
            return {}
        timeline.end(context.current_utc_datetime, check["summary"])
        begin(context, timeline, "accept", "adding the drop to the dataset")
        dataset = yield from call(context, act.ACCEPT_DROP, {
            "data": data, "etag": check["etag"], "config": cfg})
        if dataset.get("duplicate_of"):
            reason = f"{data} holds the same rows as {dataset['duplicate_of']}, already in dataset {dataset['version']}"
            timeline.end(context.current_utc_datetime, reason, "skipped")
            timeline.finish("skipped_no_new_data", reason)
            return {}
    else:
        timeline.skip("validate", context.current_utc_datetime, "no drop: training on the accumulated dataset")
        begin(context, timeline, "accept", "reading the accumulated dataset")
        dataset = yield from call(context, act.SNAPSHOT_DATASET, {"config": cfg})
        if not dataset.get("version"):
            timeline.end(context.current_utc_datetime, "no data has been accepted yet", "skipped")
            timeline.finish("skipped_no_new_data", "no data has been accepted yet: drop a file in the incoming "
                                                   "container first")
            return {}
        if run.get("trigger") == "timer" and dataset["version"] == dataset.get("champion_dataset_version"):
            timeline.end(context.current_utc_datetime, f"dataset {dataset['version']} unchanged", "skipped")
            timeline.finish("skipped_no_new_data", f"no data accepted since the champion was trained on dataset "
                                                   f"{dataset['version']}")
            return {}
    timeline.end(context.current_utc_datetime, f"dataset {dataset['version']}: {dataset['rows']} rows from "
                                               f"{len(dataset['drops'])} drop(s)")
    return dict(dataset)


def _train(context: df.DurableOrchestrationContext, cfg: dict[str, Any], dataset: dict[str, Any],
           timeline: Timeline) -> Generator[Any, Any, dict[str, Any]]:
    """Submit the job, then poll it with durable timers (never a blocking activity) until done or timed out."""
    begin(context, timeline, "train", f"training on dataset {dataset['version']}")
    submitted = context.current_utc_datetime
    job = yield from call(context, act.SUBMIT_TRAINING, {
        "job_name": training_job_name(context.instance_id), "dataset_version": dataset["version"],
        "data": dataset["paths"]})
    deadline = context.current_utc_datetime + timedelta(minutes=int(cfg["timeout_minutes"]))
    while job["state"] not in ("completed", "failed", "canceled"):
        if context.current_utc_datetime >= deadline:
            yield from call(context, act.CANCEL_TRAINING, {"job_id": job["job_id"]})
            job = {**job, "state": "failed", "message": f"timed out after {cfg['timeout_minutes']} minutes"}
            break
        age = (context.current_utc_datetime - submitted).total_seconds()
        wait = poll_after(age, float(cfg["poll_seconds"]))
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=wait))
        job = yield from call(context, act.TRAINING_STATUS, {"job_id": job["job_id"]})
    if job["state"] != "completed":
        detail = f"job {job['job_id']} {job['state']}: {job.get('message') or 'no message'}"
        tail = job.get("log_tail") or ""
        timeline.fail(context.current_utc_datetime, detail)
        timeline.finish("training_failed", detail + (f"\nlog tail:\n{tail}" if tail else ""))
        return dict(job)
    timeline.end(context.current_utc_datetime, f"job {job['job_id']} completed")
    return dict(job)


def poll_after(age_s: float, longest_s: float) -> float:
    """Seconds until the next status check of a job ``age_s`` old: a tenth of its age, between 1/20 of
    ``longest_s`` and ``longest_s``. A short job is seen to end promptly; a long one is checked a few dozen times,
    which keeps the orchestration's history (replayed at every step) short."""
    return min(longest_s, max(longest_s / 20, age_s / 10))


def _evaluate(context: df.DurableOrchestrationContext, cfg: dict[str, Any], job_id: str,
              timeline: Timeline) -> Generator[Any, Any, dict[str, Any]]:
    begin(context, timeline, "evaluate", "challenger vs champion on the same holdout rows")
    evaluation = yield from call(context, act.EVALUATE_CHALLENGER, {
        "job_id": job_id, "model_name": cfg["model_name"], "promotion": cfg["promotion"]})
    timeline.end(context.current_utc_datetime, evaluation["reason"])
    return dict(evaluation)


def _register(context: df.DurableOrchestrationContext, cfg: dict[str, Any], job_id: str, dataset: dict[str, Any],
              evaluation: dict[str, Any], *, timeline: Timeline) -> Generator[Any, Any, None]:
    begin(context, timeline, "register", "registering the challenger")
    model = yield from call(context, act.REGISTER_MODEL, {
        "model_name": cfg["model_name"], "job_id": job_id, "run_id": context.instance_id,
        "dataset_version": dataset["version"], "drops": dataset["drops"], "metrics": evaluation["challenger"]})
    version = str(model["version"])
    timeline.end(context.current_utc_datetime, f"{cfg['model_name']} version {version}")
    timeline.set(model_version=version, related=release_id(cfg["model_name"], version))
    timeline.finish("registered", f"registered {cfg['model_name']} version {version}: {evaluation['reason']}")
