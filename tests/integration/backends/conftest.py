from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.backends.support import save_ridge


@pytest.fixture(scope="session")
def ridge_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MLflow model folder, saved once per session."""
    return save_ridge(tmp_path_factory.mktemp("ridge") / "model")
