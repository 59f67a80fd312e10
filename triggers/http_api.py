"""The JSON HTTP API: start a retrain, list and read runs, approve or reject a release waiting for approval, list
models and their versions. Handlers parse, call one thing, answer.

Every answer is JSON; a bad request gets 400 naming the problem, an unknown thing 404, and an
unexpected failure 500 with its message logged (the host keeps serving).
"""

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from backends.errors import NotFoundError, TransientBackendError
from backends.ports import ModelVersion
from backends.settings import current
from messages.enums import Decision, RuntimeStatus
from messages.runs import ReleaseInput
from messages.steps import ApprovalDecision
from messages.wire import MessageError
from ml.metrics import CLASSIFICATION_METRICS
from orchestrators.ids import retrain_id_for_blob, retrain_id_manual
from orchestrators.names import APPROVAL_DECISION, RETRAIN
from services.catalog import Catalog, ModelEntry, catalog
from triggers.blobs import BadReference, canonical_etag, parse_reference, shown
from triggers.durable import DurableClient, ListingFailed, list_instances, start_once, status_to_dict
from triggers.identity import IdentityRefused, approver_for, caller_of
from triggers.inputs import ModelDisabled, model_of_blob, retrain_input
from triggers.names import APPROVE_RUN, GET_RUN, HTTP_RETRAIN, LIST_MODEL_VERSIONS, LIST_MODELS, LIST_RUNS, REJECT_RUN
from triggers.runs import error_message, newest_first, run_detail
from triggers.services import backends, ensure_containers, request_storage

log = logging.getLogger(__name__)
bp = df.Blueprint()

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: how many of the newest runs ``?model=`` looks through (the instance list is read whole either way)
MAX_RUNS_SCANNED = 10_000
#: how far back the runs listing looks, widened in turn until it finds enough runs (None: all time)
LISTING_WINDOWS: tuple[timedelta | None, ...] = (timedelta(days=1), timedelta(days=30), None)
#: what Durable Functions accepts as an instance id: 1-256 characters, none of / \\ # ? nor a control character
_INSTANCE_ID = re.compile(r"^[^/\\#?\x00-\x1f\x7f]{1,256}$")
#: a retrain body is a reference, never data: anything larger is refused before it is parsed
MAX_BODY_BYTES = 64 * 1024
#: seconds a client should wait before retrying when storage is unreachable
RETRY_AFTER_S = 30
#: an approval's body is a comment: at most this many bytes, and the comment at most ``MAX_COMMENT`` characters
MAX_DECISION_BYTES = 8 * 1024
MAX_COMMENT = 2000


class ApiError(ValueError):
    """A request the API answers with an error status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def json_response(body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


async def answer(handler: Callable[[], Awaitable[func.HttpResponse]], what: str) -> func.HttpResponse:
    """Run a handler; ``ApiError`` → its status, storage or a backend unreachable → 503 with ``Retry-After``,
    anything unexpected → a logged 500 whose answer carries the message alone (the traceback stays in the log)."""
    try:
        return await handler()
    except ApiError as exc:
        log.info("%s: %d %s", what, exc.status, exc)
        return json_response({"error": str(exc)}, exc.status)
    except TransientBackendError as exc:
        log.warning("%s: a backend is unavailable: %s", what, exc)
        response = json_response({"error": f"{what}: {error_message(exc)}; try again later"}, 503)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    except Exception as exc:  # the host must keep serving whatever a backend raises
        log.exception("%s failed", what)
        return json_response({"error": f"{what} failed: {error_message(exc) or type(exc).__name__}"}, 500)


def json_object_body(body: bytes, limit: int, what: str, field: str, shape: str) -> dict[str, Any] | None:
    """An optional JSON object body of at most ``limit`` bytes with ``field`` as its only field (None: no body);
    ``ApiError`` naming the problem otherwise. ``what`` and ``shape`` say what the body is and look like."""
    if len(body) > limit:
        raise ApiError(413, f"body of {len(body)} bytes: {what} is at most {limit}")
    if not body.strip():
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"body is not valid JSON: {shown(str(exc))}") from None
    except RecursionError:
        raise ApiError(400, "body is not valid JSON: nested too deeply") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, f"body must be a JSON object like {shape}, got {type(parsed).__name__}")
    unknown = sorted(set(parsed) - {field})
    if unknown:
        raise ApiError(400, f'unknown field(s) in body: {", ".join(map(shown, unknown))} (only "{field}" is accepted)')
    return parsed


def parse_retrain_body(body: bytes, incoming: str) -> str | None:
    """The blob named by an optional ``{"data": "<incoming>/<blob>"}`` body (None: train on the dataset)."""
    shape = f'{{"data": "{incoming}/<blob>"}}'
    parsed = json_object_body(body, MAX_BODY_BYTES, "a retrain body names a blob and", "data", shape)
    if parsed is None or parsed.get("data") is None:
        return None
    try:
        return parse_reference(parsed["data"], incoming)
    except BadReference as exc:
        raise ApiError(400, str(exc)) from None


def parse_limit(params: Mapping[str, str]) -> int:
    raw = params.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, f"limit must be an integer between 1 and {MAX_LIMIT}, got {shown(raw)}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def model_view(model: ModelVersion) -> dict[str, Any]:
    """A registry version as ``GET /api/models`` shows it (metrics and lineage from its tags)."""
    tags = model.tags
    metrics: dict[str, float | None] = {}
    names = ("rmse", "mae", "r2") if not any(m in tags for m in CLASSIFICATION_METRICS) else CLASSIFICATION_METRICS
    for metric in names:
        try:
            metrics[metric] = float(tags[metric]) if tags.get(metric) else None
        except ValueError:
            metrics[metric] = None
    try:
        data: Any = json.loads(tags["data"]) if tags.get("data") else []
    except ValueError:
        data = tags["data"]
    return {
        "version": model.version,
        "stage": model.stage or tags.get("stage") or None,
        "metrics": metrics,
        "data": data,
        "run_id": tags.get("run_id") or None,
        "registered": model.registered or None,
    }


def _version_key(view: Mapping[str, Any]) -> tuple[int, str]:
    version = str(view["version"])
    return (int(version), "") if version.isdigit() else (-1, version)


async def start_retrain(req: func.HttpRequest, client: DurableClient) -> func.HttpResponse:
    settings = current()
    name = parse_retrain_body(req.get_body() or b"", settings.INCOMING_CONTAINER)
    try:
        spec = model_of_blob(name, catalog()) if name is not None else None
    except ModelDisabled as exc:
        raise ApiError(409, str(exc)) from None
    await ensure_containers(request_storage())
    if name is None:
        token = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        instance_id = retrain_id_manual(token)
        payload = retrain_input(settings, "http", None, None)
    else:
        try:
            info = await asyncio.to_thread(request_storage().info, settings.INCOMING_CONTAINER, name)
        except NotFoundError:
            raise ApiError(404, f"blob {settings.INCOMING_CONTAINER}/{name} does not exist") from None
        etag = canonical_etag(info.etag)
        instance_id = retrain_id_for_blob(name, etag)
        payload = retrain_input(settings, "http", f"{settings.INCOMING_CONTAINER}/{name}", etag, spec)
    started = await start_once(client, RETRAIN, instance_id, payload)
    log.info("POST retrain: %s %s", instance_id, "started" if started else "already exists")
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response


def parse_model(params: Mapping[str, str], models: Catalog) -> str | None:
    """``?model=NAME``: one of the app's models (the default one included), or None for every model."""
    name = params.get("model")
    if name is None or name == "":
        return None
    if name not in model_names(models):
        known = ", ".join(model_names(models))
        raise ApiError(400, f"model must be one of the app's models ({known}), got {shown(name)}")
    return name


def model_names(models: Catalog) -> list[str]:
    """Every model the app knows: its spec folders, and the default model (``MODEL_NAME``) even without one."""
    return sorted({*models.models, models.default})


async def runs_list(req: func.HttpRequest, client: DurableClient) -> func.HttpResponse:
    """The newest runs: the listing has no order, so every instance of a window is read, from the last day first,
    widened until it holds ``limit`` runs (of the model, if one is asked) or covers all time."""
    limit = parse_limit(req.params)
    model = parse_model(req.params, catalog())
    runs: list[dict[str, Any]] = []
    for window in LISTING_WINDOWS:
        created_from = None if window is None else datetime.now(UTC) - window
        try:
            statuses = await list_instances(client, created_from, MAX_RUNS_SCANNED)
        except ListingFailed as exc:
            raise TransientBackendError(str(exc)) from None
        runs = [run for run in newest_first(statuses, MAX_RUNS_SCANNED) if model is None or run["model"] == model]
        if len(runs) >= limit:
            break
    return json_response(runs[:limit])


def run_id_of(req: func.HttpRequest) -> str:
    instance_id = req.route_params.get("id", "")
    if not _INSTANCE_ID.match(instance_id):
        raise ApiError(
            400,
            f"{shown(instance_id)} is not a valid run id (1-256 characters, none of / \\ # ? or a control character)",
        )
    return instance_id


async def run_get(req: func.HttpRequest, client: DurableClient) -> func.HttpResponse:
    instance_id = run_id_of(req)
    status = await client.get_status(instance_id)
    if not status:
        raise ApiError(404, f"no run with id {shown(instance_id)}")
    return json_response(run_detail(status_to_dict(status)))


def parse_decision_body(body: bytes) -> str:
    """The comment of an optional ``{"comment": "..."}`` body ("" without one)."""
    parsed = json_object_body(body, MAX_DECISION_BYTES, "a decision's body", "comment", '{"comment": "why"}')
    comment = None if parsed is None else parsed.get("comment")
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise ApiError(400, f"comment must be text, got {type(comment).__name__}")
    if len(comment) > MAX_COMMENT:
        raise ApiError(400, f"comment of {len(comment)} characters: at most {MAX_COMMENT}")
    if any(not ch.isprintable() and ch not in "\n\t" for ch in comment):
        raise ApiError(400, "comment holds a control character (only newlines and tabs are kept)")
    return comment.strip()


async def decide(req: func.HttpRequest, client: DurableClient, decision: Decision) -> func.HttpResponse:
    """Approve or reject a release waiting at its approval step: raise the ``approval_decision`` event."""
    instance_id = run_id_of(req)
    comment = parse_decision_body(req.get_body() or b"")
    settings = current()
    try:
        caller = caller_of(req.headers, settings)
    except IdentityRefused as exc:
        raise ApiError(exc.status, str(exc)) from None
    status = await client.get_status(instance_id, show_input=True)
    view = status_to_dict(status) if status else {}
    if not view.get("instanceId"):
        raise ApiError(404, f"no run with id {shown(instance_id)}")
    approval = run_detail(view)["approval"] or {}
    runtime = view.get("runtimeStatus")
    if runtime not in (RuntimeStatus.RUNNING, RuntimeStatus.PENDING) or approval.get("state") != "pending":
        state = approval.get("state") or "none"
        raise ApiError(
            409, f"run {shown(instance_id)} is not waiting for approval (status {runtime}, approval {state})"
        )
    try:
        given = view.get("input")
        policy = ReleaseInput.from_dict(json.loads(given) if isinstance(given, str) else given or {}).config.approval
    except (MessageError, ValueError):
        policy = None
    if policy is None:
        raise ApiError(409, f"run {shown(instance_id)} has no approval step")
    try:
        approver = approver_for(caller, policy, settings)
    except IdentityRefused as exc:
        raise ApiError(exc.status, str(exc)) from None
    event = ApprovalDecision(
        decision, approver, comment, caller.principal_id, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
    await client.raise_event(instance_id, APPROVAL_DECISION, event.to_dict())
    log.info("%s: %s by %s", instance_id, decision.value, approver)
    return json_response({"id": instance_id, "decision": decision.value, "by": approver, "comment": comment}, 202)


def versions_of(name: str) -> list[dict[str, Any]]:
    """A model's registry versions as the API shows them, newest first."""
    views = (model_view(version) for version in backends().registry.list(name))
    return sorted(views, key=_version_key, reverse=True)


#: the stages ``GET /api/models`` names a version for
SUMMARY_STAGES = ("champion", "qa", "production")


def model_summary(name: str, entry: ModelEntry | None, default: str, versions: list[dict[str, Any]]) -> dict[str, Any]:
    """One model as ``GET /api/models`` shows it: its spec's status and problems, and its newest version per stage."""
    spec = entry.spec if entry is not None else None
    newest = {stage: next((v["version"] for v in versions if v["stage"] == stage), None) for stage in SUMMARY_STAGES}
    return {
        "name": name,
        "default": name == default,
        "status": entry.status.value if entry is not None else "ok",
        "problems": list(entry.problems) if entry is not None else [],
        "task": spec.task.value if spec is not None else None,
        "description": spec.description if spec is not None else "",
        **newest,
        "versions": len(versions),
    }


async def models_list() -> func.HttpResponse:
    models = catalog()

    def gather() -> list[dict[str, Any]]:
        return [
            model_summary(name, models.models.get(name), models.default, versions_of(name))
            for name in model_names(models)
        ]

    return json_response(await asyncio.to_thread(gather))


async def model_versions(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("name", "")
    models = catalog()
    if name not in model_names(models):
        raise ApiError(404, f"no model {shown(name)} (models: {', '.join(model_names(models))})")
    return json_response(await asyncio.to_thread(versions_of, name))


@bp.function_name(HTTP_RETRAIN)
@bp.route(route="retrain", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def http_retrain(req: func.HttpRequest, client: DurableClient) -> func.HttpResponse:
    return await answer(lambda: start_retrain(req, client), "POST /api/retrain")


@bp.function_name(LIST_RUNS)
@bp.route(route="runs", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def list_runs(req: func.HttpRequest, client: DurableClient) -> func.HttpResponse:
    return await answer(lambda: runs_list(req, client), "GET /api/runs")


@bp.function_name(GET_RUN)
@bp.route(route="runs/{id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_run(req: func.HttpRequest, client: DurableClient) -> func.HttpResponse:
    return await answer(lambda: run_get(req, client), "GET /api/runs/{id}")


@bp.function_name(APPROVE_RUN)
@bp.route(route="runs/{id}/approve", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def approve_run(req: func.HttpRequest, client: DurableClient) -> func.HttpResponse:
    return await answer(lambda: decide(req, client, Decision.APPROVE), "POST /api/runs/{id}/approve")


@bp.function_name(REJECT_RUN)
@bp.route(route="runs/{id}/reject", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def reject_run(req: func.HttpRequest, client: DurableClient) -> func.HttpResponse:
    return await answer(lambda: decide(req, client, Decision.REJECT), "POST /api/runs/{id}/reject")


@bp.function_name(LIST_MODELS)
@bp.route(route="models", methods=["GET"])
async def list_models(req: func.HttpRequest) -> func.HttpResponse:
    return await answer(models_list, "GET /api/models")


@bp.function_name(LIST_MODEL_VERSIONS)
@bp.route(route="models/{name}/versions", methods=["GET"])
async def list_model_versions(req: func.HttpRequest) -> func.HttpResponse:
    return await answer(lambda: model_versions(req), "GET /api/models/{name}/versions")
