"""The batch scoring recipe: plan → score (a bounded fan-out over the chunks, or a platform job polled with durable
timers) → assemble. Outcomes: scored · invalid_data · no_champion · model_disabled · superseded (the file was
replaced meanwhile: the new version has its own run). A refused file gets its error report; only bugs and outages
that outlast the retries fail the orchestration.

Progress is in the custom status: ``progress`` = ``{chunks_done, chunks_total, rows, rows_scored, rows_skipped}``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities import names as act
from messages.batch import BatchInput, BatchJobStatus, BatchPlan, BatchResult, ChunkRequest, ChunkResult, FinishRequest
from messages.enums import JOB_FINISHED, JobState, Outcome, RunKind, Stage, Trigger
from orchestrators.retrain import poll_after
from orchestrators.status import Timeline
from orchestrators.steps import Orchestration, ask, begin, call, done, fail_running_stage

#: the outcome of each reason a file is refused (any other: invalid_data)
REFUSALS = {
    "no_champion": Outcome.NO_CHAMPION,
    "model_disabled": Outcome.MODEL_DISABLED,
    "changed": Outcome.SUPERSEDED,
}


def batch(context: df.DurableOrchestrationContext) -> Orchestration:
    run = BatchInput.from_dict(context.get_input() or {})
    timeline = Timeline(RunKind.BATCH, Trigger(run.trigger), f"{run.container}/{run.name}", model=run.model)
    try:
        return (yield from _steps(context, run, timeline))
    except Exception as exc:
        fail_running_stage(context, timeline, exc)
        raise


def _steps(context: df.DurableOrchestrationContext, run: BatchInput, timeline: Timeline) -> Orchestration:
    begin(context, timeline, Stage.PLAN, f"reading {run.container}/{run.name}")
    plan = yield from ask(context, act.PLAN_BATCH, run, BatchPlan)
    if plan.problem is not None:
        return (yield from _refuse(context, run, plan, [], timeline))
    timeline.set(model_version=plan.version or None)
    how = f"job {plan.job}" if plan.job else f"{len(plan.chunks)} chunk(s)"
    timeline.end(context.current_utc_datetime, f"{plan.rows} rows in {how}, model version {plan.version}")
    begin(context, timeline, Stage.SCORE, f"scoring with {plan.model} version {plan.version}")
    if plan.job:
        job = yield from _job(context, run, plan, timeline)
        if job.state is not JobState.COMPLETED:
            detail = f"batch job {job.job} {job.state}: {job.message or 'no message'}"
            timeline.fail(context.current_utc_datetime, detail)
            timeline.finish(Outcome.FAILED, detail)
            return done(context, timeline)
        results = [ChunkResult(0, job.rows, job.rows)]
    else:
        results = yield from _fan_out(context, run, plan, timeline)
    timeline.end(context.current_utc_datetime, _scored(results))
    begin(context, timeline, Stage.ASSEMBLE, f"writing {run.container}/{plan.output}")
    result = yield from ask(
        context, act.FINISH_BATCH, FinishRequest(run, replace(plan, chunks=[]), results), BatchResult
    )
    if result.problem is not None:
        timeline.fail(context.current_utc_datetime, result.problem.message)
        timeline.finish(Outcome.INVALID_DATA, result.problem.message)
        return done(context, timeline, report=result.report)
    timeline.end(context.current_utc_datetime, f"{result.output}: {result.scored} prediction(s)")
    reason = f"{result.scored} of {result.rows} rows scored by version {result.version} into {result.output}"
    timeline.finish(Outcome.SCORED, reason + (f"; {result.skipped} invalid row(s) skipped" if result.skipped else ""))
    return done(context, timeline, output=result.output, report=result.report)


def _refuse(
    context: df.DurableOrchestrationContext,
    run: BatchInput,
    plan: BatchPlan,
    results: list[ChunkResult],
    timeline: Timeline,
) -> Orchestration:
    assert plan.problem is not None
    timeline.fail(context.current_utc_datetime, plan.problem.message)
    answer = yield from call(context, act.REFUSE_BATCH, FinishRequest(run, plan, results))
    timeline.finish(REFUSALS.get(plan.problem.code, Outcome.INVALID_DATA), plan.problem.message)
    return done(context, timeline, report=(answer or {}).get("report"))


def _fan_out(
    context: df.DurableOrchestrationContext, run: BatchInput, plan: BatchPlan, timeline: Timeline
) -> Generator[Any, Any, list[ChunkResult]]:
    """Every chunk scored, at most ``run.parallel`` at once; the progress published after each window. A window
    with a failure is run again chunk by chunk with the retry policy (a chunk is idempotent)."""
    shared = replace(plan, chunks=[])
    results: list[ChunkResult] = []
    width = max(1, run.parallel)
    _progress(context, plan, results, timeline)
    for start in range(0, len(plan.chunks), width):
        requests = [ChunkRequest(run, shared, chunk).to_dict() for chunk in plan.chunks[start : start + width]]
        try:
            answers = yield context.task_all([context.call_activity(act.SCORE_CHUNK, r) for r in requests])
        except Exception:
            answers = []
            for request in requests:
                answers.append((yield from call(context, act.SCORE_CHUNK, request)))
        results += [ChunkResult.from_dict(a) for a in answers]
        _progress(context, plan, results, timeline)
    return results


def _job(
    context: df.DurableOrchestrationContext, run: BatchInput, plan: BatchPlan, timeline: Timeline
) -> Generator[Any, Any, BatchJobStatus]:
    started = context.current_utc_datetime
    deadline = started + timedelta(minutes=run.timeout_minutes)
    job = BatchJobStatus(plan.job, JobState.QUEUED)
    while job.state not in JOB_FINISHED:
        if context.current_utc_datetime >= deadline:
            return BatchJobStatus(plan.job, JobState.FAILED, f"timed out after {run.timeout_minutes} minutes")
        wait = poll_after((context.current_utc_datetime - started).total_seconds(), run.poll_seconds)
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=wait))
        job = yield from ask(context, act.BATCH_JOB_STATUS, replace(plan, chunks=[]), BatchJobStatus)
        timeline.set(progress={"job": job.job, "state": job.state.value, "rows_scored": job.rows})
        context.set_custom_status(timeline.status())
    return job


def _progress(
    context: df.DurableOrchestrationContext, plan: BatchPlan, results: list[ChunkResult], timeline: Timeline
) -> None:
    timeline.set(
        progress={
            "chunks_done": len(results),
            "chunks_total": len(plan.chunks),
            "rows": plan.rows,
            "rows_scored": sum(r.scored for r in results),
            "rows_skipped": sum(r.rows - r.scored for r in results),
        }
    )
    context.set_custom_status(timeline.status())


def _scored(results: list[ChunkResult]) -> str:
    rows, scored = sum(r.rows for r in results), sum(r.scored for r in results)
    return f"{scored} of {rows} rows scored" + (f", {rows - scored} skipped" if rows > scored else "")
