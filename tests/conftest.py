from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.support.azurite import Azurite, start_azurite
from tests.support.processes import processes_mentioning
from tests.support.tls import make_tls


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A real Azurite blob service, started for the session and stopped after it."""
    instance = start_azurite()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def azurite_identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite as an identity-only account: blob, queue and table over HTTPS with OAuth, its requests in a debug log."""
    folder = tmp_path_factory.mktemp("azurite-identity")
    instance = start_azurite(oauth=True, tls=make_tls(folder / "tls"), debug_log=folder / "debug.log")
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session", autouse=True)
def nothing_left_running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every server, host and job a test starts under its temporary folders is stopped by the end of the session."""
    base = str(tmp_path_factory.getbasetemp())
    yield
    deadline = time.monotonic() + 15
    while processes_mentioning(base) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = processes_mentioning(base)
    for line in left:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
    assert not left, "processes left running by the tests:\n" + "\n".join(left)
