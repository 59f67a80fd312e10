"""The backends the activities use: built once per process from the settings (``MLOPS_BACKEND`` picks them)."""

from __future__ import annotations

from backends.factory import Backends, build_backends
from backends.settings import current


def backends() -> Backends:
    return build_backends(current())
