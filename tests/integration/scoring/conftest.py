"""Storage for the scoring tests: Azurite as an identity-only account (HTTPS with OAuth, requests in a debug log)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.azurite import Azurite, start_azurite
from tests.support.tls import make_tls


@pytest.fixture(scope="session")
def azurite_identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    folder = tmp_path_factory.mktemp("azurite-identity")
    instance = start_azurite(oauth=True, tls=make_tls(folder / "tls"), debug_log=folder / "debug.log")
    try:
        yield instance
    finally:
        instance.stop()
