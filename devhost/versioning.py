"""Orchestration versioning as the Durable extension applies it (host.json ``extensions.durableTask``).

New instances get ``defaultVersion`` unless the client names one (``start_new(version=...)``); sub-orchestrations
get theirs or the default; continue-as-new and restarts keep the instance's. Before an episode runs, the
instance's version is matched against the host's ``defaultVersion`` by ``versionMatchStrategy``: ``None`` runs
everything; ``Strict`` only the same version; ``CurrentOrOlder`` (the default) the same or an older one (numeric
parts compared as numbers, as ``System.Version``; an instance without a version counts as older). A mismatch under
``versionFailureStrategy: Reject`` (the default) leaves the instance's messages for a host of a matching version
(here: until devhost restarts with another ``defaultVersion``); under ``Fail`` the orchestration fails with the
reason.
"""

from __future__ import annotations

from devhost.loader import HostConfig


def _key(version: str) -> tuple[int, tuple[int, ...] | str]:
    parts = version.split(".")
    if version and all(p.isdigit() for p in parts):
        return (0, tuple(int(p) for p in parts))
    return (1, version)


def older_or_equal(instance: str, current: str) -> bool:
    if not instance:
        return True
    a, b = _key(instance), _key(current)
    if a[0] != b[0]:
        return instance <= current
    return a <= b


def mismatch(instance_version: str, config: HostConfig) -> str | None:
    """Why an instance of ``instance_version`` may not run on this host, or None."""
    current = config.default_version
    if not current or config.version_match == "None":
        return None
    if config.version_match == "Strict" and instance_version != current:
        return (
            f"The orchestration version '{instance_version}' does not match the worker version '{current}' "
            "(versionMatchStrategy Strict)"
        )
    if config.version_match == "CurrentOrOlder" and not older_or_equal(instance_version, current):
        return (
            f"The orchestration version '{instance_version}' is newer than the worker version '{current}' "
            "(versionMatchStrategy CurrentOrOlder)"
        )
    return None
