"""Batch scoring, the use case: a file at ``<batch container>/<model>/in/<path>`` scored by the model's champion
into ``<model>/out/<path>`` (``.csv`` added to a Parquet input's name), with a report beside it.

- The model is the file's first folder; its schema is its spec's (``ml/schema.py`` for the default model). An
  unknown or disabled model, a model without a champion, a file that is not a CSV/Parquet table or lacks a
  feature: the file is refused, with ``<out>.error.json`` saying why; nothing is scored.
- Rows are checked value by value as a drop's rows are (``ml.validation.check_values``). A row with a value the
  schema does not allow (missing, not a number, out of range, not a whole number) is **skipped**: not in the output,
  counted in the report with the first row numbers and messages. A file none of whose rows can be scored is refused.
- ``<out>.report.json`` of a scored file: rows read, scored, skipped, the model version, the invalid rows.
"""

from __future__ import annotations

import json
from typing import Any

from backends.ports import BatchScoring, ModelRegistry, Storage
from messages.batch import (
    BatchInput,
    BatchPlan,
    BatchProblem,
    BatchResult,
    ChunkRequest,
    ChunkResult,
    FinishRequest,
)
from ml import batch as core
from ml.schema import ACTIVE_SCHEMA, Schema
from services.catalog import ModelDisabled, catalog, spec_of

ERROR_SUFFIX = ".error.json"
REPORT_SUFFIX = ".report.json"
#: the invalid rows' messages kept in a report
KEPT_MESSAGES = 20


def batch_model(name: str) -> str | None:
    """The model of a batch blob ``<model>/in/<path>``; None for any other blob (outputs, reports, strays)."""
    model, sep, path = name.partition("/")
    if not model or not sep or not path.startswith("in/") or len(path) <= 3 or path.endswith("/"):
        return None
    return model


def schema_of(model: str) -> Schema:
    """The model's schema; ``ModelDisabled`` for an unknown or disabled model."""
    models = catalog()
    if model != models.default and model not in models.models:
        raise ModelDisabled(models.why_not(model))
    spec = spec_of(model, models)
    return spec.schema if spec is not None else ACTIVE_SCHEMA


def plan(scoring: BatchScoring, registry: ModelRegistry, run: BatchInput) -> BatchPlan:
    refused = BatchPlan(run.model, output=core.output_name(run.name))
    try:
        schema = schema_of(run.model)
    except ModelDisabled as exc:
        return _refused(refused, "model_disabled", f"{run.name}: {exc}")
    problem = core.unsupported(schema)
    if problem:
        return _refused(refused, "unsupported", f"{run.name}: {problem}")
    champion = registry.champion(run.model)
    if champion is None:
        return _refused(refused, "no_champion", f"{run.name}: model {run.model!r} has no champion yet")
    return scoring.plan(run, champion, schema)


def score_chunk(scoring: BatchScoring, request: ChunkRequest) -> ChunkResult:
    return scoring.score_chunk(request.run, request.plan, request.chunk, schema_of(request.run.model))


def finish(storage: Storage, scoring: BatchScoring, request: FinishRequest) -> BatchResult:
    """Assemble the output and write its report; a file with no row to score is refused instead."""
    run, plan, results = request.run, request.plan, request.results
    invalid = _invalid(results)
    rows, scored = sum(r.rows for r in results), sum(r.scored for r in results)
    if not plan.job and not scored:
        problem = BatchProblem(
            "no_valid_rows", f"{run.name}: none of its {rows} row(s) can be scored" + _first(invalid)
        )
        report = refuse(storage, FinishRequest(run, _refused(plan, problem.code, problem.message), results))
        return BatchResult("", report, rows, 0, rows, plan.version, problem)
    result = scoring.finish(run, plan, results)
    report = _write(
        storage,
        run.container,
        plan.output + REPORT_SUFFIX,
        {
            "source": f"{run.container}/{run.name}",
            "etag": run.etag,
            "model": run.model,
            "model_version": plan.version,
            "output": result.output,
            "rows": result.rows,
            "scored": result.scored,
            "skipped": result.skipped,
            "invalid_rows": invalid,
            "policy": "rows with a value the schema does not allow are skipped",
        },
    )
    return BatchResult(result.output, report, result.rows, result.scored, result.skipped, plan.version)


def refuse(storage: Storage, request: FinishRequest) -> str:
    """Write ``<out>.error.json`` for a refused file; returns its reference."""
    run, plan = request.run, request.plan
    problem = plan.problem or BatchProblem("failed", f"{run.name}: not scored")
    body = {
        "source": f"{run.container}/{run.name}",
        "etag": run.etag,
        "model": run.model,
        "model_version": plan.version or None,
        "code": problem.code,
        "error": problem.message,
        "invalid_rows": _invalid(request.results),
    }
    return _write(storage, run.container, (plan.output or core.output_name(run.name)) + ERROR_SUFFIX, body)


def _invalid(results: list[ChunkResult]) -> dict[str, Any]:
    ordered = sorted(results, key=lambda r: r.index)
    problems: dict[str, int] = {}
    for result in ordered:
        for key, count in result.invalid.problems.items():
            problems[key] = problems.get(key, 0) + count
    return {
        "count": sum(r.invalid.count for r in ordered),
        "first_rows": [row for r in ordered for row in r.invalid.rows][: core.KEPT],
        "problems": problems,
        "messages": [m for r in ordered for m in r.invalid.messages][:KEPT_MESSAGES],
    }


def _first(invalid: dict[str, Any]) -> str:
    return f"; {invalid['messages'][0]}" if invalid["messages"] else ""


def _write(storage: Storage, container: str, name: str, body: dict[str, Any]) -> str:
    storage.write(container, name, json.dumps(body, indent=1).encode())
    return f"{container}/{name}"


def _refused(plan: BatchPlan, code: str, message: str) -> BatchPlan:
    from dataclasses import replace

    return replace(plan, problem=BatchProblem(code, message))
