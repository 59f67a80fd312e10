from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.devhost_proc import DevhostProcess, make_devhost, serving


@pytest.fixture(scope="module")
def durable_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    """One devhost serving the durable sample app for the whole module (tests use distinct instance ids)."""
    with serving("durable_app", tmp_path_factory.mktemp("durable")) as host:
        yield host


@pytest.fixture
def fresh_durable_host(tmp_path: Path) -> Iterator[DevhostProcess]:
    host = make_devhost("durable_app", tmp_path)
    try:
        yield host
    finally:
        host.stop()
