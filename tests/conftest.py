from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.azurite import Azurite, start_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A real Azurite blob service, started for the session and stopped after it."""
    instance = start_azurite()
    try:
        yield instance
    finally:
        instance.stop()
