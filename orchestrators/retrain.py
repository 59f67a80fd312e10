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
from messages.enums import JOB_FINISHED, JobState, Outcome, RunKind, Stage, StageStatus, Trigger
from messages.runs import RetrainConfig, RetrainInput
from messages.steps import (
    DatasetRef,
    DatasetRequest,
    DropCheck,
    DropRequest,
    EvaluateRequest,
    Evaluation,
    JobRef,
    Registered,
    RegisterRequest,
)
from messages.work import JobStatus, TrainingRequest
from orchestrators.ids import release_id, training_job_name
from orchestrators.status import Timeline
from orchestrators.steps import Orchestration, ask, begin, call, done, fail_running_stage


def retrain(context: df.DurableOrchestrationContext) -> Orchestration:
    run = RetrainInput.from_dict(context.get_input() or {})
    timeline = Timeline(RunKind.RETRAIN, run.trigger, run.data, model=run.config.model_name)
    try:
        return (yield from _steps(context, run, timeline))
    except Exception as exc:
        fail_running_stage(context, timeline, exc)
        raise


def _steps(context: df.DurableOrchestrationContext, run: RetrainInput, timeline: Timeline) -> Orchestration:
    cfg = run.config
    dataset = yield from _dataset(context, run, timeline)
    if timeline.outcome or dataset is None:
        return done(context, timeline)
    job = yield from _train(context, cfg, dataset, timeline)
    if timeline.outcome:
        return done(context, timeline)
    evaluation = yield from _evaluate(context, cfg, job.job_id, timeline)
    if not evaluation.promote:
        timeline.finish(Outcome.NOT_BETTER, evaluation.reason)
        return done(context, timeline, evaluation=evaluation.to_dict())
    yield from _register(context, cfg, job.job_id, dataset, evaluation, timeline=timeline)
    return done(context, timeline, evaluation=evaluation.to_dict())


def _dataset(
    context: df.DurableOrchestrationContext, run: RetrainInput, timeline: Timeline
) -> Generator[Any, Any, DatasetRef | None]:
    """The dataset to train on: the drop validated and accepted, or (no drop) the accumulated dataset."""
    cfg, data = run.config, run.data
    if data:
        begin(context, timeline, Stage.VALIDATE, f"validating {data}")
        check = yield from ask(context, act.VALIDATE_DROP, DropRequest(data, cfg, run.etag or ""), DropCheck)
        if not check.ok:
            timeline.fail(context.current_utc_datetime, check.summary)
            yield from call(context, act.QUARANTINE_DROP, DropRequest(data, cfg, check.etag, report=check.report))
            timeline.finish(Outcome.INVALID_DATA, "; ".join(check.messages) or check.summary)
            return None
        timeline.end(context.current_utc_datetime, check.summary)
        begin(context, timeline, Stage.ACCEPT, "adding the drop to the dataset")
        dataset = yield from ask(context, act.ACCEPT_DROP, DropRequest(data, cfg, check.etag), DatasetRef)
        if dataset.duplicate_of:
            reason = f"{data} holds the same rows as {dataset.duplicate_of}, already in dataset {dataset.version}"
            timeline.end(context.current_utc_datetime, reason, StageStatus.SKIPPED)
            timeline.finish(Outcome.SKIPPED_NO_NEW_DATA, reason)
            return None
    else:
        timeline.skip(Stage.VALIDATE, context.current_utc_datetime, "no drop: training on the accumulated dataset")
        begin(context, timeline, Stage.ACCEPT, "reading the accumulated dataset")
        dataset = yield from ask(context, act.SNAPSHOT_DATASET, DatasetRequest(cfg), DatasetRef)
        if not dataset.version:
            timeline.end(context.current_utc_datetime, "no data has been accepted yet", StageStatus.SKIPPED)
            timeline.finish(
                Outcome.SKIPPED_NO_NEW_DATA,
                "no data has been accepted yet: drop a file in the incoming container first",
            )
            return None
        if run.trigger is Trigger.TIMER and dataset.version == dataset.champion_dataset_version:
            timeline.end(context.current_utc_datetime, f"dataset {dataset.version} unchanged", StageStatus.SKIPPED)
            timeline.finish(
                Outcome.SKIPPED_NO_NEW_DATA,
                f"no data accepted since the champion was trained on dataset {dataset.version}",
            )
            return None
    timeline.end(
        context.current_utc_datetime,
        f"dataset {dataset.version}: {dataset.rows} rows from {len(dataset.drops)} drop(s)",
    )
    return dataset


def _train(
    context: df.DurableOrchestrationContext, cfg: RetrainConfig, dataset: DatasetRef, timeline: Timeline
) -> Generator[Any, Any, JobStatus]:
    """Submit the job, then poll it with durable timers (never a blocking activity) until done or timed out."""
    version = str(dataset.version)
    begin(context, timeline, Stage.TRAIN, f"training on dataset {version}")
    submitted = context.current_utc_datetime
    job = yield from ask(
        context,
        act.SUBMIT_TRAINING,
        TrainingRequest(
            training_job_name(context.instance_id), version, dataset.paths, {"spec": cfg.spec} if cfg.spec else {}
        ),
        JobStatus,
    )
    deadline = context.current_utc_datetime + timedelta(minutes=cfg.timeout_minutes)
    while job.state not in JOB_FINISHED:
        if context.current_utc_datetime >= deadline:
            yield from call(context, act.CANCEL_TRAINING, JobRef(job.job_id))
            job = JobStatus(
                job.job_id, JobState.FAILED, f"timed out after {cfg.timeout_minutes} minutes", job.log_tail, job.url
            )
            break
        age = (context.current_utc_datetime - submitted).total_seconds()
        wait = poll_after(age, cfg.poll_seconds)
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=wait))
        job = yield from ask(context, act.TRAINING_STATUS, JobRef(job.job_id), JobStatus)
    if job.state is not JobState.COMPLETED:
        detail = f"job {job.job_id} {job.state}: {job.message or 'no message'}"
        timeline.fail(context.current_utc_datetime, detail)
        timeline.finish(Outcome.TRAINING_FAILED, detail + (f"\nlog tail:\n{job.log_tail}" if job.log_tail else ""))
        return job
    timeline.end(context.current_utc_datetime, f"job {job.job_id} completed")
    return job


def poll_after(age_s: float, longest_s: float) -> float:
    """Seconds until the next status check of a job ``age_s`` old: a tenth of its age, between 1/20 of
    ``longest_s`` and ``longest_s``. A short job is seen to end promptly; a long one is checked a few dozen times,
    which keeps the orchestration's history (replayed at every step) short."""
    return min(longest_s, max(longest_s / 20, age_s / 10))


def _evaluate(
    context: df.DurableOrchestrationContext, cfg: RetrainConfig, job_id: str, timeline: Timeline
) -> Generator[Any, Any, Evaluation]:
    begin(context, timeline, Stage.EVALUATE, "challenger vs champion on the same holdout rows")
    evaluation = yield from ask(
        context, act.EVALUATE_CHALLENGER, EvaluateRequest(job_id, cfg.model_name, cfg.promotion), Evaluation
    )
    timeline.end(context.current_utc_datetime, evaluation.reason)
    return evaluation


def _register(
    context: df.DurableOrchestrationContext,
    cfg: RetrainConfig,
    job_id: str,
    dataset: DatasetRef,
    evaluation: Evaluation,
    *,
    timeline: Timeline,
) -> Generator[Any, Any, None]:
    begin(context, timeline, Stage.REGISTER, "registering the challenger")
    model = yield from ask(
        context,
        act.REGISTER_MODEL,
        RegisterRequest(
            cfg.model_name, job_id, context.instance_id, str(dataset.version), dataset.drops, evaluation.challenger
        ),
        Registered,
    )
    timeline.end(context.current_utc_datetime, f"{cfg.model_name} version {model.version}")
    timeline.set(model_version=model.version, related=release_id(cfg.model_name, model.version))
    timeline.finish(Outcome.REGISTERED, f"registered {cfg.model_name} version {model.version}: {evaluation.reason}")
