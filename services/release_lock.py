"""One release at a time per model, and the newest registered version wins — kept in one blob.

``releases/<model>.json`` in the datasets container holds ``{"active": {"version", "owner"} | null,
"newest": "<highest version that asked to be released>"}``. Every change is an etag-conditional write, so
concurrent claims never both win. A waiting release whose version is older than ``newest`` is superseded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from backends.errors import BlobChangedError, BlobExistsError, NotFoundError
from backends.ports import Storage

_ATTEMPTS = 20


@dataclass(frozen=True)
class Claim:
    granted: bool
    superseded: bool
    active: str | None
    newest: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return float("-inf")


class ReleaseLock:
    def __init__(self, storage: Storage, container: str, model: str) -> None:
        self.storage, self.container, self.path = storage, container, f"releases/{model}.json"

    def claim(self, version: str, owner: str) -> Claim:
        """Take the model's release slot for ``version`` unless another release holds it or a newer one exists."""
        for _ in range(_ATTEMPTS):
            state, etag = self._read()
            active = state.get("active")
            newest = max([str(state.get("newest") or version), version], key=_number)
            mine = bool(active and active.get("owner") == owner)
            if _number(version) < _number(newest) and not mine:
                claim = Claim(False, True, active and active.get("version"), newest)
            elif active is None or mine:
                claim = Claim(True, False, version, newest)
                active = {"version": version, "owner": owner}
            else:
                claim = Claim(False, False, active.get("version"), newest)
            if self._write({"active": active, "newest": newest}, etag):
                return claim
        raise RuntimeError(f"could not update {self.container}/{self.path}: too many concurrent writers")

    def free(self, owner: str) -> bool:
        """Give the slot back if ``owner`` holds it (idempotent)."""
        for _ in range(_ATTEMPTS):
            state, etag = self._read()
            active = state.get("active")
            if not active or active.get("owner") != owner:
                return False
            if self._write({**state, "active": None}, etag):
                return True
        raise RuntimeError(f"could not update {self.container}/{self.path}: too many concurrent writers")

    def _read(self) -> tuple[dict[str, Any], str | None]:
        try:
            data, info = self.storage.read(self.container, self.path)
        except NotFoundError:
            return {}, None
        return json.loads(data), info.etag

    def _write(self, state: dict[str, Any], etag: str | None) -> bool:
        body = json.dumps(state).encode()
        try:
            if etag is None:
                self.storage.write(self.container, self.path, body, overwrite=False)
            else:
                self.storage.write(self.container, self.path, body, if_match=etag)
        except (BlobExistsError, BlobChangedError):
            return False
        return True
