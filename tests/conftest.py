from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

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


def _processes_under(folder: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if folder in cmdline:
            found.append(f"{proc.name}: {cmdline[:300]}")
    return found


@pytest.fixture(scope="session", autouse=True)
def nothing_left_running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every server, host and job a test starts under its temporary folders is stopped by the end of the session."""
    base = str(tmp_path_factory.getbasetemp())
    yield
    deadline = time.monotonic() + 15
    while _processes_under(base) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _processes_under(base)
    for line in left:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
    assert not left, "processes left running by the tests:\n" + "\n".join(left)
