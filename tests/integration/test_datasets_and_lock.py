"""The accumulated dataset and the release lock on real Azurite: versions, idempotency, concurrency."""

from __future__ import annotations

import threading
import uuid

import pytest

from backends.storage import BlobStorage
from ml.sample import diabetes_frame
from services.datasets import Datasets
from services.release_lock import ReleaseLock
from tests.support.azurite import Azurite


def storage(azurite: Azurite) -> tuple[BlobStorage, str]:
    container = "ds-" + uuid.uuid4().hex[:12]
    store = BlobStorage(azurite.connection_string)
    store.ensure_containers((container,))
    return store, container


def test_versions_grow_with_lineage_and_accepting_twice_is_a_no_op(azurite: Azurite) -> None:
    store, container = storage(azurite)
    datasets = Datasets(store, container)
    frame = diabetes_frame()
    first = datasets.accept("incoming/a.csv", "e1", frame.head(100))
    again = datasets.accept("incoming/a.csv", "e1", frame.head(100))
    second = datasets.accept("incoming/b.csv", "e2", frame.iloc[100:250])
    same_rows = datasets.accept("incoming/c.csv", "e3", frame.iloc[100:250])
    assert (first.version, again.version, second.version, same_rows.version) == ("1", "1", "2", "2")
    assert (first.duplicate_of, again.duplicate_of, second.duplicate_of) == (None, None, None)
    assert same_rows.duplicate_of == "incoming/b.csv@e2"
    assert second.parent == "1" and second.rows == 250
    assert [d["blob"] for d in second.drops] == ["incoming/a.csv", "incoming/b.csv"]
    assert all(d["path"].startswith("drops/") for d in second.drops)
    assert second.paths == [f"{container}/snapshots/00000002.parquet"]  # one input for the job, whatever the drops
    assert len(datasets.frame("2")) == 250
    assert datasets.snapshot(datasets.latest() or first) == second


def test_each_models_dataset_is_its_own_under_its_prefix(azurite: Azurite) -> None:
    store, container = storage(azurite)
    default, other = Datasets(store, container), Datasets(store, container, "models/breast-cancer/")
    frame = diabetes_frame()
    mine = other.accept("incoming/breast-cancer/a.csv", "e1", frame.head(50))
    theirs = default.accept("incoming/a.csv", "e1", frame.head(50))  # the same rows: no duplicate across models
    assert (mine.version, theirs.version, theirs.duplicate_of) == ("1", "1", None)
    assert mine.paths == [f"{container}/models/breast-cancer/snapshots/00000001.parquet"]
    assert mine.drops[0]["path"].startswith("models/breast-cancer/drops/")
    assert theirs.paths == [f"{container}/snapshots/00000001.parquet"]
    assert other.snapshot(other.latest() or mine) == mine and default.snapshot(default.latest() or theirs) == theirs
    report = other.save_report("incoming/breast-cancer/a.csv", "e1", {"ok": True})
    assert report.startswith(f"{container}/models/breast-cancer/reports/")
    with pytest.raises(ValueError, match="ends with '/'"):
        Datasets(store, container, "models/x")


def test_a_snapshot_is_its_parents_plus_the_new_drop_and_is_completed_when_missing(azurite: Azurite) -> None:
    store, container = storage(azurite)
    datasets = Datasets(store, container)
    frame = diabetes_frame()
    first = datasets.accept("incoming/a.csv", "e1", frame.head(100))
    store.delete(container, first.drops[0]["path"])  # the next snapshot must come from this one's, not the drops
    second = datasets.accept("incoming/b.csv", "e2", frame.iloc[100:250])
    table = datasets.frame("2")
    assert len(table) == 250 and list(table.columns) == list(frame.columns)
    assert table.round(6).equals(frame.head(250).astype(float).round(6).reset_index(drop=True))
    # an accept that stopped after its manifest: the snapshot is built by the next look at the version
    store.delete(container, datasets.snapshot_path("2"))
    assert [b.name for b in store.list(container, "snapshots/")] == ["snapshots/00000001.parquet"]
    again = datasets.snapshot(datasets.get("2"))
    assert again == second and len(datasets.frame("2")) == 250


def test_concurrent_accepts_never_collide(azurite: Azurite) -> None:
    store, container = storage(azurite)
    frame = diabetes_frame()
    results: list[str] = []

    def accept(i: int) -> None:
        version = Datasets(store, container).accept(f"incoming/{i}.csv", f"e{i}", frame.iloc[i * 40 : (i + 1) * 40])
        results.append(version.version)

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latest = Datasets(store, container).latest()
    assert latest is not None and latest.version == "6"
    assert sorted(results) == ["1", "2", "3", "4", "5", "6"]
    assert sorted(d["blob"] for d in latest.drops) == sorted(f"incoming/{i}.csv" for i in range(6))


def test_release_lock_serialises_and_supersedes(azurite: Azurite) -> None:
    store, container = storage(azurite)
    lock = ReleaseLock(store, container, "diabetes-ridge")
    first = lock.claim("2", "release-2")
    assert first.granted and not first.superseded
    assert lock.claim("2", "release-2").granted, "claiming again is idempotent for the holder"
    waiting = lock.claim("3", "release-3")
    assert not waiting.granted and not waiting.superseded and waiting.active == "2"
    newer = lock.claim("4", "release-4")
    assert not newer.granted and newer.newest == "4"
    assert lock.claim("3", "release-3").superseded
    assert not lock.free("release-3")
    assert lock.free("release-2")
    assert lock.claim("4", "release-4").granted


def test_concurrent_claims_grant_one(azurite: Azurite) -> None:
    store, container = storage(azurite)
    granted: list[str] = []

    def claim(owner: str) -> None:
        if ReleaseLock(store, container, "m").claim("5", owner).granted:
            granted.append(owner)

    threads = [threading.Thread(target=claim, args=(f"o{i}",)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 1
