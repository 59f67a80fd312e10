"""The accumulated dataset: accepted drops, versioned by manifests with their lineage, in blob storage.

Layout in the datasets container:
- ``drops/<sha256>.csv``: an accepted drop, normalised to the schema's columns (content-addressed);
- ``manifests/<version:08d>.json``: ``{"version", "parent", "drops": [{"blob", "etag", "rows", "sha256", "path"}],
  "rows", "created"}`` — each version is its parent plus one drop;
- ``reports/<sha1 of blob@etag>.json``: the validation report of a drop;
- ``snapshots/<version:08d>.parquet``: the whole dataset of a version in one file, what a training job reads.
Versions are created with create-only writes, so concurrent accepts never collide (the loser re-reads and retries),
and accepting the same blob version twice returns the version that already holds it.

Why snapshots: a model with a thousand accepted drops would otherwise train from a thousand job inputs (Azure ML
bounds a job's inputs, and each is a mount). A version's snapshot is built once, incrementally, from its parent's
snapshot plus the drops the parent lacks (from the drops alone when there is no parent snapshot), and written
create-only; an accept that stopped between its manifest and its snapshot is completed by the next look at that
version (``snapshot``), so a version's snapshot always exists before a job reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from backends.errors import BlobExistsError, NotFoundError
from backends.ports import Storage

MANIFESTS = "manifests/"
SNAPSHOTS = "snapshots/"
_ATTEMPTS = 20


@dataclass(frozen=True)
class DatasetVersion:
    version: str
    drops: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    parent: str | None = None
    created: str = ""
    container: str = ""
    #: set when the accepted drop added nothing: the ``blob@etag`` already holding the very same rows
    duplicate_of: str | None = None
    #: the version's compacted table (``<prefix>snapshots/<version>.parquet``) once it is built
    snapshot: str = ""

    @property
    def paths(self) -> list[str]:
        """What a training job reads, as ``container/blob`` references: the snapshot, else the drops."""
        if self.snapshot:
            return [f"{self.container}/{self.snapshot}"]
        return [f"{self.container}/{d['path']}" for d in self.drops]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "paths": self.paths}


class Datasets:
    """One model's dataset in ``container``: under ``prefix`` (``models/<name>/``; empty for the default model)."""

    def __init__(self, storage: Storage, container: str, prefix: str = "") -> None:
        if prefix and not prefix.endswith("/"):
            raise ValueError(f"a dataset prefix ends with '/', got {prefix!r}")
        self.storage = storage
        self.container = container
        self.prefix = prefix

    def latest(self) -> DatasetVersion | None:
        manifests = self.prefix + MANIFESTS
        names = sorted(b.name for b in self.storage.list(self.container, manifests) if b.name.endswith(".json"))
        return self._load(names[-1]) if names else None

    def get(self, version: str) -> DatasetVersion:
        return self._load(f"{self.prefix}{MANIFESTS}{int(version):08d}.json")

    def accept(self, source: str, etag: str, frame: pd.DataFrame) -> DatasetVersion:
        """Add a validated drop (``container/blob`` at ``etag``) as a new version; idempotent per blob version, and
        content already in the dataset (a re-upload of the same rows) adds no new version: the version returned then
        names the drop that holds those rows in ``duplicate_of``."""
        data = frame.to_csv(index=False).encode()
        digest = hashlib.sha256(data).hexdigest()
        path = f"{self.prefix}drops/{digest}.csv"
        with contextlib.suppress(BlobExistsError):
            self.storage.write(self.container, path, data, overwrite=False)
        drop = {"blob": source, "etag": etag, "rows": len(frame), "sha256": digest, "path": path}
        for _ in range(_ATTEMPTS):
            current = self.latest()
            if current is not None and any(d["blob"] == source and d["etag"] == etag for d in current.drops):
                return self.snapshot(current)  # this blob version is in the dataset already (a re-run of this accept)
            same = next((d for d in current.drops if d["sha256"] == digest), None) if current else None
            if current is not None and same is not None:
                return replace(current, duplicate_of=f"{same['blob']}@{same['etag']}")
            number = int(current.version) + 1 if current else 1
            drops = [*(current.drops if current else []), drop]
            created = DatasetVersion(
                str(number),
                drops,
                sum(int(d["rows"]) for d in drops),
                current.version if current else None,
                datetime.now(UTC).isoformat(timespec="seconds"),
                self.container,
            )
            try:
                self.storage.write(
                    self.container,
                    f"{self.prefix}{MANIFESTS}{number:08d}.json",
                    json.dumps(_manifest(created), indent=1).encode(),
                    overwrite=False,
                )
            except BlobExistsError:
                continue
            return self.snapshot(created)
        raise RuntimeError(f"could not add {source} to the dataset: {_ATTEMPTS} concurrent writers won the race")

    def frame(self, version: str) -> pd.DataFrame:
        """The whole table of a dataset version (e.g. the champion's training data as a drift reference)."""
        return self._read_snapshot(self.snapshot(self.get(version)).snapshot)

    def snapshot_path(self, version: str) -> str:
        return f"{self.prefix}{SNAPSHOTS}{int(version):08d}.parquet"

    def snapshot(self, version: DatasetVersion) -> DatasetVersion:
        """``version`` with its snapshot, built now if it does not exist yet (from the parent's snapshot when there
        is one: a version is its parent plus one drop, so only that drop is read)."""
        path = self.snapshot_path(version.version)
        if self._exists(path):
            return replace(version, snapshot=path)
        base, known = None, 0
        if version.parent is not None:
            parent_path = self.snapshot_path(version.parent)
            if self._exists(parent_path):
                base, known = self._read_snapshot(parent_path), len(version.drops) - 1
        added = [self._read_drop(d["path"]) for d in version.drops[known:]]
        table = pd.concat([f for f in (base, *added) if f is not None], ignore_index=True)
        with contextlib.suppress(BlobExistsError):  # another accept built it meanwhile: the same rows
            self.storage.write(self.container, path, _parquet(table), overwrite=False)
        return replace(version, snapshot=path)

    def _exists(self, path: str) -> bool:
        try:
            self.storage.info(self.container, path)
        except NotFoundError:
            return False
        return True

    def _read_drop(self, path: str) -> pd.DataFrame:
        return pd.read_csv(io.BytesIO(self.storage.read(self.container, path)[0]))

    def _read_snapshot(self, path: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.storage.read(self.container, path)[0]))

    def save_report(self, source: str, etag: str, report: dict[str, Any]) -> str:
        """Keep a drop's full validation report; returns its ``container/blob`` reference."""
        key = hashlib.sha1(f"{source}@{etag}".encode()).hexdigest()
        path = f"{self.prefix}reports/{key}.json"
        self.storage.write(self.container, path, json.dumps(report, indent=1).encode())
        return f"{self.container}/{path}"

    def _load(self, name: str) -> DatasetVersion:
        try:
            raw = json.loads(self.storage.read(self.container, name)[0])
        except NotFoundError:
            raise NotFoundError(f"dataset manifest {self.container}/{name} does not exist") from None
        return DatasetVersion(
            str(raw["version"]),
            list(raw["drops"]),
            int(raw["rows"]),
            raw.get("parent"),
            raw.get("created", ""),
            self.container,
        )


def _parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


def _manifest(version: DatasetVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "parent": version.parent,
        "drops": version.drops,
        "rows": version.rows,
        "created": version.created,
    }


def split_ref(ref: str) -> tuple[str, str]:
    """``"container/blob/with/slashes"`` → (container, blob); a clear error for anything else."""
    container, _, name = ref.partition("/")
    if not container or not name:
        raise ValueError(f"expected a blob reference 'container/blob', got {ref!r}")
    return container, name
