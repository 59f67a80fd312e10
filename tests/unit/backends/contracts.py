"""Contract suites for the ports: plain functions taking an implementation, run against every implementation.

The local backends run them in tests/unit/backends and tests/integration/backends; the Azure backends can run the
same functions at the transport boundary. Each function asserts only what the port promises (ports.py), never how an
implementation keeps its state.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.errors import (
    BlobChangedError,
    BlobExistsError,
    NotFoundError,
    OperationRefused,
    StageTransitionError,
    TrainingJobFailed,
)
from backends.ports import (
    MODEL_STAGES,
    STAGE_TRANSITIONS,
    DeploymentRequest,
    Endpoints,
    JobStatus,
    ModelRegistry,
    ModelVersion,
    Operation,
    OperationState,
    OperationStatus,
    Storage,
    TrainingJobs,
    TrainingRequest,
)

# --- Storage -------------------------------------------------------------------------------------


def storage_round_trip(storage: Storage, container: str) -> None:
    """Write, read, info and list agree on name, size, etag and metadata (non-ASCII metadata survives)."""
    assert isinstance(storage, Storage)
    storage.ensure_containers((container,))
    storage.ensure_containers((container,))  # idempotent
    written = storage.write(
        container, "drops/a.csv", b"x,y\n1,2\n", metadata={"source": "tést ☃", "rows": "1", "reason": "line 1\nline 2"}
    )
    assert (written.container, written.name, written.size) == (container, "drops/a.csv", 8)
    assert written.etag and not written.etag.startswith('"')
    data, info = storage.read(container, "drops/a.csv")
    assert data == b"x,y\n1,2\n"
    assert info.etag == written.etag == storage.info(container, "drops/a.csv").etag
    assert info.metadata == {"source": "tést ☃", "rows": "1", "reason": "line 1\nline 2"}
    assert info.last_modified
    rewritten = storage.write(container, "drops/a.csv", b"changed")
    assert rewritten.etag != written.etag
    assert rewritten.metadata == {}


def storage_create_only(storage: Storage, container: str) -> None:
    """``overwrite=False`` writes a new blob once; the second write raises and leaves the first content."""
    storage.ensure_containers((container,))
    storage.write(container, "once.json", b"{}", overwrite=False)
    with pytest.raises(BlobExistsError, match=r"once\.json"):
        storage.write(container, "once.json", b"[]", overwrite=False)
    assert storage.read(container, "once.json")[0] == b"{}"


def storage_conditional_write(storage: Storage, container: str) -> None:
    """``if_match`` writes only over the etag given (quoted or not); a stale etag raises and changes nothing."""
    storage.ensure_containers((container,))
    first = storage.write(container, "lock.json", b"1")
    second = storage.write(container, "lock.json", b"2", if_match=first.etag)
    assert second.etag != first.etag
    with pytest.raises(BlobChangedError, match=r"lock\.json"):
        storage.write(container, "lock.json", b"3", if_match=first.etag)
    storage.write(container, "lock.json", b"4", if_match=f'"{second.etag}"')
    assert storage.read(container, "lock.json")[0] == b"4"


def storage_list_and_delete(storage: Storage, container: str) -> None:
    storage.ensure_containers((container,))
    for name in ("p/1.csv", "p/2.csv", "q/3.csv"):
        storage.write(container, name, name.encode(), metadata={"k": name})
    listed = storage.list(container, prefix="p/")
    assert sorted(b.name for b in listed) == ["p/1.csv", "p/2.csv"]
    assert {b.name: b.metadata["k"] for b in listed} == {"p/1.csv": "p/1.csv", "p/2.csv": "p/2.csv"}
    assert {b.name for b in storage.list(container)} >= {"p/1.csv", "p/2.csv", "q/3.csv"}
    storage.delete(container, "p/1.csv")
    storage.delete(container, "p/1.csv")  # idempotent
    assert [b.name for b in storage.list(container, prefix="p/")] == ["p/2.csv"]
    with pytest.raises(NotFoundError):
        storage.read(container, "p/1.csv")
    with pytest.raises(NotFoundError):
        storage.info(container, "nothing-here.csv")
    assert storage.url(container, "q/3.csv").endswith(f"/{container}/q/3.csv")


# --- TrainingJobs --------------------------------------------------------------------------------


def wait_finished(jobs: TrainingJobs, job_id: str, timeout: float = 60.0, poll: float = 0.1) -> JobStatus:
    """Poll ``status`` until the job finishes (or fail after ``timeout``)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        status = jobs.status(job_id)
        assert status.job_id == job_id
        if status.finished or time.monotonic() > deadline:
            break
        time.sleep(poll)
    assert status.finished, f"job {job_id} still {status.state} after {timeout}s"
    return status


def jobs_submit_idempotent(jobs: TrainingJobs, request: TrainingRequest) -> JobStatus:
    """A resubmit of the same job name returns the same job, whatever its state."""
    assert isinstance(jobs, TrainingJobs)
    first = jobs.submit(request)
    again = jobs.submit(request)
    assert first.job_id == again.job_id
    assert first.state in ("queued", "running", "completed", "failed")
    return first


def jobs_completed_outputs(jobs: TrainingJobs, job_id: str, dest: Path, timeout: float = 120.0) -> None:
    """A completed job's outputs: an MLflow model folder, numeric metrics, the holdout rows; a model source."""
    status = wait_finished(jobs, job_id, timeout)
    assert status.state == "completed", status
    outputs = jobs.fetch_outputs(job_id, dest)
    assert outputs.job_id == job_id
    assert (outputs.model_dir / "MLmodel").exists()
    assert outputs.metrics and all(isinstance(v, float) for v in outputs.metrics.values())
    assert outputs.holdout_path.exists()
    assert jobs.model_source(job_id)


def jobs_failed_reports_log(
    jobs: TrainingJobs, job_id: str, expected_in_log: str, dest: Path, timeout: float = 120.0
) -> None:
    """A failed job says so, with its log tail, and its outputs cannot be fetched."""
    status = wait_finished(jobs, job_id, timeout)
    assert status.state == "failed", status
    assert expected_in_log in status.log_tail
    with pytest.raises(TrainingJobFailed) as caught:
        jobs.fetch_outputs(job_id, dest)
    assert caught.value.job_id == job_id


def jobs_unknown(jobs: TrainingJobs) -> None:
    with pytest.raises(NotFoundError):
        jobs.status("no-such-job-0000")


# --- ModelRegistry -------------------------------------------------------------------------------


def registry_register_idempotent(registry: ModelRegistry, name: str, source: str) -> ModelVersion:
    """Registering one job's model twice yields one version, in stage qa, with the tags."""
    assert isinstance(registry, ModelRegistry)
    tags = {"job_id": f"job-{name}-1", "rmse": "52.5", "data": '["incoming/a.csv"]'}
    first = registry.register(name, source, tags)
    again = registry.register(name, source, tags)
    assert again.version == first.version
    assert first.stage == "qa"
    assert {k: first.tags[k] for k in tags} == tags
    assert [v.version for v in registry.list(name)] == [first.version]
    assert registry.get(name, first.version) == first
    return first


def registry_list_newest_first(registry: ModelRegistry, name: str, source: str) -> list[ModelVersion]:
    made = [registry.register(name, source, {"job_id": f"job-{name}-{i}"}) for i in range(3)]
    listed = registry.list(name)
    assert [v.version for v in listed] == [v.version for v in reversed(made)]
    assert len({v.version for v in made}) == 3
    assert registry.list(f"{name}-unknown") == []
    with pytest.raises(NotFoundError):
        registry.get(name, "999")
    return made


def registry_stage_transitions(registry: ModelRegistry, name: str, source: str) -> None:
    """Every move the table allows works; every other move raises naming from and to."""
    version = registry.register(name, source, {"job_id": f"job-{name}-t"}).version
    illegal = [s for s in MODEL_STAGES if s not in STAGE_TRANSITIONS["qa"] and s != "qa"]
    for stage in illegal:
        with pytest.raises(StageTransitionError, match=rf"'qa'.*'{stage}'"):
            registry.set_stage(name, version, stage)
    assert registry.get(name, version).stage == "qa"
    for stage in ("production", "rejected", "qa", "archived", "qa"):
        assert registry.set_stage(name, version, stage).stage == stage
    assert registry.set_stage(name, version, "qa").stage == "qa"  # no move: unchanged
    with pytest.raises(ValueError, match="unknown stage"):
        registry.set_stage(name, version, "staging")


def registry_tags_merge(registry: ModelRegistry, name: str, source: str) -> None:
    """``set_tags`` adds to a version's tags and keeps the others (its stage and lineage); a stage is refused."""
    version = registry.register(name, source, {"job_id": f"job-{name}-g", "rmse": "50"}).version
    tagged = registry.set_tags(name, version, {"approval_decision": "approve", "approval_by": "alice"})
    assert tagged.tags["approval_decision"] == "approve" and tagged.tags["approval_by"] == "alice"
    assert tagged.tags["rmse"] == "50" and tagged.stage == "qa"
    assert registry.get(name, version).tags["approval_by"] == "alice"
    with pytest.raises(ValueError, match="set_stage"):
        registry.set_tags(name, version, {"stage": "champion"})
    with pytest.raises(NotFoundError):
        registry.set_tags(name, "999", {"a": "b"})


def registry_champion_moves(registry: ModelRegistry, name: str, source: str) -> None:
    """The champion is the one version in stage champion; a new champion archives the old one."""
    assert registry.champion(name) is None
    one = registry.register(name, source, {"job_id": f"job-{name}-c1"}).version
    two = registry.register(name, source, {"job_id": f"job-{name}-c2"}).version
    registry.set_stage(name, one, "production")
    registry.set_stage(name, one, "champion")
    champion = registry.champion(name)
    assert champion is not None and champion.version == one and champion.stage == "champion"
    registry.set_stage(name, two, "production")
    registry.set_stage(name, two, "champion")
    champion = registry.champion(name)
    assert champion is not None and champion.version == two
    assert registry.get(name, one).stage == "archived"
    assert [v.version for v in registry.list(name) if v.stage == "champion"] == [two]
    registry.set_stage(name, two, "archived")
    assert registry.champion(name) is None


def registry_download(registry: ModelRegistry, name: str, source: str, dest: Path) -> None:
    version = registry.register(name, source, {"job_id": f"job-{name}-d"}).version
    folder = registry.download(name, version, dest)
    assert (folder / "MLmodel").read_bytes() == (Path(source) / "MLmodel").read_bytes()
    with pytest.raises(NotFoundError):
        registry.download(name, "999", dest / "missing")


# --- Endpoints -----------------------------------------------------------------------------------


def settle(endpoints: Endpoints, status: OperationStatus, timeout: float = 60.0, poll: float = 0.0) -> OperationStatus:
    """Poll an operation until it ends, as the release orchestration does (here without durable timers)."""
    import time

    deadline = time.monotonic() + timeout
    while not status.finished:
        assert time.monotonic() < deadline, f"operation {status.operation} still running after {timeout}s"
        time.sleep(poll)
        status = endpoints.operation_status(Operation.from_dict(status.operation.to_dict()))
    return status


def _done(endpoints: Endpoints, status: OperationStatus) -> None:
    final = settle(endpoints, status)
    assert final.state is OperationState.SUCCEEDED, final


def endpoints_blue_green(endpoints: Endpoints, endpoint: str, one: ModelVersion, two: ModelVersion) -> None:
    """Deploy, shift traffic, remove: each a long operation that ends succeeded; beginning again what is done is a
    no-op; traffic goes only where a deployment succeeded; a slot taking traffic beside another is not removed."""
    assert isinstance(endpoints, Endpoints)
    _done(endpoints, endpoints.begin_deploy(DeploymentRequest(endpoint, "blue", one.name, one.version), one))
    _done(endpoints, endpoints.begin_traffic(endpoint, {"blue": 100}))
    state = endpoints.state(endpoint)
    assert state.deployments == {"blue": one.version} and state.serving_version == one.version
    _done(endpoints, endpoints.begin_deploy(DeploymentRequest(endpoint, "green", two.name, two.version), two))
    state = endpoints.state(endpoint)
    assert state.deployments == {"blue": one.version, "green": two.version}
    assert state.traffic.get("green", 0) == 0 and state.serving_version == one.version
    with pytest.raises(OperationRefused):
        endpoints.begin_traffic(endpoint, {"red": 100})
    _done(endpoints, endpoints.begin_traffic(endpoint, {"blue": 0, "green": 100}))
    state = endpoints.state(endpoint)
    assert state.serving_version == two.version
    with pytest.raises(OperationRefused, match="green"):
        endpoints.begin_remove(endpoint, "green")
    _done(endpoints, endpoints.begin_remove(endpoint, "blue"))
    state = endpoints.state(endpoint)
    assert state.deployments == {"green": two.version} and state.serving_version == two.version
    again = endpoints.begin_remove(endpoint, "blue")  # idempotent
    assert again.state is OperationState.SUCCEEDED
    redo = endpoints.begin_deploy(DeploymentRequest(endpoint, "green", two.name, two.version), two)
    assert settle(endpoints, redo).state is OperationState.SUCCEEDED
    assert endpoints.state(endpoint) == state
    assert "key" not in state.public()
