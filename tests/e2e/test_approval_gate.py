"""Release policies on devhost: three spec-only models (``tests.e2e.specs``' iris forest) whose policy puts an
approval step between QA and production, released at once on one app:

- ``gate-approve``: approved by a listed person (``X-Approver``, the local identity) → ``deployed``;
- ``gate-reject``: a person not on the list is refused (403), as is the pipeline's own name; a listed person rejects
  → ``rejected``, production untouched, the decision in the version's tags;
- ``gate-timeout``: nobody decides within its 20 s → ``approval_timed_out``.

Every release notifies two webhooks of a sink on 127.0.0.1 (CloudEvents JSON, Slack) of its pending approval and
its outcome; the JSON one answers 500 twice first, so notifications are retried and still delivered.
The wall time from the approval to ``deployed`` and the gate's own time when approved at once are printed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backends.local.registry import MlflowRegistry
from orchestrators.ids import release_id
from tests.e2e.conftest import Host, drop, running_devhost, wait_for
from tests.e2e.specs import SPEC, iris_frame
from tests.support.app import app_values, copy_app
from tests.support.azurite import Azurite, free_port
from tests.support.webhook_sink import Sink, webhook_sink

pytestmark = pytest.mark.slow
TIMEOUTS = {"gate-approve": "1h", "gate-reject": "1h", "gate-timeout": "20s"}
APPROVAL = "    - {{step: approval, approvers: [alice, bob], timeout: {timeout}}}\n"


def write_gated_specs(models: Path) -> None:
    for name, timeout in TIMEOUTS.items():
        folder = models / name
        folder.mkdir(parents=True)
        spec = SPEC.format(p99=2000)
        qa_line = next(line for line in spec.splitlines(keepends=True) if "{step: qa" in line)
        (folder / "model.yaml").write_text(spec.replace(qa_line, qa_line + APPROVAL.format(timeout=timeout)))
        iris_frame().sample(frac=1.0, random_state=1).head(40).to_csv(folder / "sample.csv", index=False)


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    with webhook_sink({"/ce": [500, 500, 200]}) as running:
        yield running


@pytest.fixture(scope="module")
def host(azurite: Azurite, sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    root = copy_app(tmp_path_factory.mktemp("gate-app"))
    write_gated_specs(root / "models")
    port = free_port()
    values = {
        **app_values(azurite.connection_string, root / ".mlops", port),
        "DURABLE_TASK_HUB": "GateHub",
        "APPROVAL_IDENTITY": "header",
        "APP_BASE_URL": f"http://127.0.0.1:{port}",
        "NOTIFY_WEBHOOKS": json.dumps(
            [{"url": sink.url("/ce"), "format": "json"}, {"url": sink.url("/slack"), "format": "slack"}]
        ),
    }
    with running_devhost(root, values, port) as running:
        yield running


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def waiting(host: Host) -> dict[str, str]:
    """The three releases, started at once: model → release run id (each soon waits at its approval step)."""
    data = iris_frame().to_csv(index=False).encode()
    retrains = {model: drop(host, f"{model}/iris.csv", data) for model in TIMEOUTS}
    runs = {}
    for model, retrain in retrains.items():
        finished = host.wait_finished(retrain, timeout=300)
        assert finished["outcome"] == "registered", finished
        runs[model] = release_id(model, finished["model_version"])
    return runs


def pending(host: Host, run_id: str) -> dict[str, Any]:
    def waits() -> dict[str, Any] | None:
        run = host.run(run_id)
        return run if run and (run.get("approval") or {}).get("state") == "pending" else None

    found: dict[str, Any] = wait_for(f"{run_id} waiting for approval", waits, 240, interval=0.05)
    return found


def decide(host: Host, run_id: str, verb: str, who: str, comment: str = "") -> Any:
    return host.http.post(
        f"/api/runs/{run_id}/{verb}", json={"comment": comment} if comment else None, headers={"X-Approver": who}
    )


def test_an_approved_release_is_deployed(host: Host, waiting: dict[str, str]) -> None:
    run_id = waiting["gate-approve"]
    pending(host, run_id)
    posted = datetime.now(UTC)
    seen = time.monotonic()
    answer = decide(host, run_id, "approve", "Alice", "QA numbers reviewed")
    approved = time.monotonic()
    assert answer.status_code == 202, answer.text

    def deployed() -> dict[str, Any] | None:
        run = host.run(run_id)
        return run if run and run["status"] in ("Completed", "Failed") else None

    run = wait_for(f"{run_id} finishing", deployed, 240, interval=0.05)
    finished = time.monotonic()
    assert run["outcome"] == "deployed", run
    stages = {s["name"]: s for s in run["stages"]}
    assert stages["approval"]["detail"] == "approved by alice: QA numbers reviewed"
    assert list(stages).index("approval") == list(stages).index("test_qa") + 1
    version = MlflowRegistry(host.home).get("gate-approve", run["model_version"])
    assert version.stage == "champion" and version.tags["approval_by"] == "alice"
    gate = _moment(stages["approval"]["finished"]) - _moment(stages["approval"]["started"])
    waited = posted - _moment(stages["approval"]["started"])  # the approver's (here: the test's) delay
    total = _moment(stages["deploy_production"]["started"]) - _moment(stages["test_qa"]["finished"])
    resume = _moment(stages["deploy_production"]["started"]) - _moment(stages["approval"]["finished"])
    production = _moment(stages["promote"]["finished"]) - _moment(stages["deploy_production"]["started"])
    print(
        f"\napproval gate: POST approve answered in {approved - seen:.3f} s; approve -> deployed "
        f"{finished - approved:.2f} s wall (production deploy+test+promote {production.total_seconds():.2f} s);"
        f" the approval stage lasted {gate.total_seconds():.2f} s, of which {waited.total_seconds():.2f} s until the "
        f"approval was posted (seen pending at once), so the gate's own cost approved at once is "
        f"{(gate - waited + resume).total_seconds():.2f} s (event to resume, tags, and deploy_production "
        f"{resume.total_seconds():.3f} s after the stage); QA passed -> production deploy began "
        f"{total.total_seconds():.2f} s (pending notifications and their retries included)"
    )


def test_a_person_not_on_the_list_is_refused_and_a_listed_one_rejects(host: Host, waiting: dict[str, str]) -> None:
    run_id = waiting["gate-reject"]
    pending(host, run_id)
    refused = decide(host, run_id, "approve", "eve")
    assert refused.status_code == 403 and "eve is not an approver of this release" in refused.json()["error"]
    assert decide(host, run_id, "approve", "mlops-pipeline").status_code == 403
    assert decide(host, "release-gate-reject-999", "approve", "bob").status_code == 404
    no_body_shape = host.http.post(f"/api/runs/{run_id}/reject", content=b'{"why": 1}', headers={"X-Approver": "bob"})
    assert no_body_shape.status_code == 400 and "unknown field" in no_body_shape.json()["error"]
    assert (host.run(run_id) or {})["approval"]["state"] == "pending"  # none of those decided anything

    answer = decide(host, run_id, "reject", "bob", "accuracy is not enough for this cohort")
    assert answer.status_code == 202 and answer.json()["by"] == "bob"
    run = host.wait_finished(run_id, timeout=180)
    assert run["outcome"] == "rejected", run
    assert run["reason"] == "rejected by bob: accuracy is not enough for this cohort; production untouched"
    approval = next(s for s in run["stages"] if s["name"] == "approval")
    assert approval["status"] == "failed" and approval["detail"].startswith("rejected by bob")
    assert "gate-reject-production" not in json.loads((host.home / "endpoints.json").read_text())
    version = MlflowRegistry(host.home).get("gate-reject", run["model_version"])
    assert version.stage == "rejected"
    assert version.tags["approval_decision"] == "rejected" and version.tags["approval_by"] == "bob"
    assert version.tags["approval_comment"] == "accuracy is not enough for this cohort"
    again = decide(host, run_id, "approve", "alice")
    assert again.status_code == 409 and "is not waiting for approval" in again.json()["error"]


def test_nobody_deciding_in_time_ends_approval_timed_out(host: Host, waiting: dict[str, str]) -> None:
    run = host.wait_finished(waiting["gate-timeout"], timeout=240)
    assert run["outcome"] == "approval_timed_out", run
    assert run["reason"] == "nobody approved within 20s; production untouched"
    assert "gate-timeout-production" not in json.loads((host.home / "endpoints.json").read_text())
    tags = MlflowRegistry(host.home).get("gate-timeout", run["model_version"]).tags
    assert tags["approval_decision"] == "timed_out"


def test_pending_approvals_and_outcomes_are_notified_and_retried(
    host: Host, sink: Sink, waiting: dict[str, str]
) -> None:
    runs = {run_id: model for model, run_id in waiting.items()}
    for run_id in runs:
        host.wait_finished(run_id, timeout=240)

    def delivered() -> bool:
        ok = {(r.body["data"]["run_id"], r.body["data"]["kind"]) for r in sink.at("/ce") if r.answered == 200}
        return all((run_id, kind) in ok for run_id in runs for kind in ("approval_pending", "outcome"))

    wait_for("every notification delivered", delivered, 120, interval=0.2)
    events = sink.at("/ce")
    assert [r.answered for r in events[:2]] == [500, 500]  # the sink was down at first ...
    retried = {r.body["id"] for r in events[:2]}
    assert all(any(r.body["id"] == i and r.answered == 200 for r in events) for i in retried)  # ... and retried
    assert all(r.content_type.startswith("application/cloudevents+json") for r in events)
    outcomes = {
        r.body["data"]["run_id"]: r.body["data"]["outcome"] for r in events if r.body["data"]["kind"] == "outcome"
    }
    assert outcomes == {
        waiting["gate-approve"]: "deployed",
        waiting["gate-reject"]: "rejected",
        waiting["gate-timeout"]: "approval_timed_out",
    }
    pending = next(r.body["data"] for r in events if r.body["data"]["kind"] == "approval_pending")
    assert pending["approvers"] == ["alice", "bob"]
    assert pending["approve"] == f"{host.base_url}/api/runs/{pending['run_id']}/approve"
    slack = sink.at("/slack")
    assert len(slack) == 6 and all(r.answered == 200 and "text" in r.body for r in slack)
    for run_id in runs:  # delivered after retries: no notification failure in any timeline
        assert not [s for s in (host.run(run_id) or {})["stages"] if s["name"] == "notify"]
