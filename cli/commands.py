"""The terminal commands over the HTTP API and endpoints.json: drop, retrain, runs, follow, models, score."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli import config
from cli.client import ApiClient, score
from cli.follow import RunPrinter, finished
from cli.storage import upload
from messages.enums import endpoint_id
from ml.sample import diabetes_frame
from ml.schema import ACTIVE_SCHEMA
from services import api_tests
from services.catalog import ModelDisabled, load_catalog, spec_of

Printer = Callable[[str], None]


@dataclass(frozen=True)
class Context:
    """Where the app is and how to reach it, resolved once per command."""

    root: Path
    base_url: str

    def client(self) -> ApiClient:
        key = config.master_key(self.root)
        if key is None:
            raise config.CliError(
                f"no function key: set DEVHOST_MASTER_KEY or start devhost in {self.root} "
                "(it writes .devhost/master.key)"
            )
        return ApiClient(self.base_url, key)


def drop(ctx: Context, file: Path, name: str | None, out: Printer = print) -> str:
    """Upload a local CSV or Parquet file to the incoming container; the blob trigger takes it from there."""
    if not file.is_file():
        raise config.CliError(f"{file} is not a file")
    settings = config.load_settings(ctx.root)
    blob = name or file.name
    etag = upload(settings.storage, settings.INCOMING_CONTAINER, blob, file.read_bytes())
    out(f"uploaded {file} as {settings.INCOMING_CONTAINER}/{blob} (etag {etag})")
    return blob


def retrain(ctx: Context, data: str | None, out: Printer = print) -> str:
    with ctx.client() as api:
        started = api.retrain(data)
    out(f"retrain {started['id']} accepted; status: {started.get('statusQueryGetUri', '')}")
    return str(started["id"])


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def runs(ctx: Context, limit: int, out: Printer = print) -> None:
    with ctx.client() as api:
        listed = api.runs(limit)
    if not listed:
        out("no runs yet")
    for run in listed:
        out(
            f"{run['id']:<42} {_cell(run['kind']):<8} {_cell(run['status']):<10} {_cell(run['stage']):<18} "
            f"{_cell(run['outcome']):<20} {_cell(run['model_version']):<4} {_cell(run['created'])}"
        )


def follow(ctx: Context, instance_id: str, interval: float = 1.0, out: Printer = print) -> dict[str, Any]:
    """Print each stage of one run as it happens, until it finishes (or Ctrl-C)."""
    printer = RunPrinter()
    with ctx.client() as api:
        while True:
            run = api.run(instance_id)
            for line in printer.update(run):
                out(line)
            if finished(run):
                return run
            time.sleep(interval)


def models(ctx: Context, out: Printer = print) -> None:
    """Each model (its spec's status, the problems of a disabled one), then its versions."""
    with ctx.client() as api:
        listed = [(model, api.versions(str(model["name"]))) for model in api.models()]
    for model, versions in listed:
        default = " (default)" if model.get("default") else ""
        out(f"{model['name']}{default}: {model.get('task') or '-'}, spec {model.get('status')}")
        for problem in model.get("problems") or []:
            out(f"  problem: {problem}")
        if not versions:
            out("  no version registered yet")
        for version in versions:
            metrics = version.get("metrics") or {}
            shown = " ".join(f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, int | float))
            out(f"  v{version['version']:<4} {_cell(version['stage']):<11} {shown:<40} run {_cell(version['run_id'])}")


def sample_rows(count: int) -> list[list[float]]:
    """The first ``count`` rows of the shipped diabetes sample, features only."""
    frame = diabetes_frame().head(count)
    return [[float(v) for v in row] for row in frame[ACTIVE_SCHEMA.feature_names].to_numpy().tolist()]


def score_sample(
    ctx: Context, environment: str, rows: int, out: Printer = print, *, model: str | None = None
) -> dict[str, Any]:
    """Score ``rows`` rows of ``model``'s own sample on its endpoint of ``environment`` (``qa``/``production``)."""
    settings = config.load_settings(ctx.root)
    models = load_catalog(ctx.root / "models", settings)
    if model is None or model == models.default:
        endpoint, known = environment, sample_rows(rows)
    else:
        try:
            known = api_tests.sample_rows(spec_of(model, models), rows)
        except (ModelDisabled, ValueError) as exc:
            raise config.CliError(f"model {model!r}: {exc}") from None
        endpoint = endpoint_id(f"{model}-", environment)
    url, key = config.endpoint(ctx.root, settings, endpoint)
    result = score(url, key, known)
    out(
        f"{endpoint} {url}/score → model version {result.get('model_version')}: {json.dumps(result.get('predictions'))}"
    )
    return result
