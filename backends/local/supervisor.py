"""A local endpoint's server process, run as Azure runs the image: from the staged build context and nothing else.

``stage(builds)`` copies the scoring image's build context (``scoring.build``) to ``<builds>/<content hash>/``, once
per content. ``python -m backends.local.supervisor --context DIR -- SERVER_ARGS`` then runs
``python -P -m scoring.server SERVER_ARGS`` with ``DIR`` as its working directory and its only ``PYTHONPATH``
entry (``-P``: the working directory is not prepended either), so the server imports the staged files, and nothing
of the repository is importable: what serves locally is what the image holds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from scoring.build import PACKAGE_NAME, content_hash, stage_build_context

#: stagings kept besides the current one (older ones are removed unless a process still runs from them)
KEEP_STAGINGS = 3


def stage(builds: Path) -> Path:
    """``<builds>/<hash>``, holding the staged build context (staged atomically, once per content hash)."""
    version = content_hash()
    final = builds / version
    if not (final / PACKAGE_NAME).is_dir():
        builds.mkdir(parents=True, exist_ok=True)
        scratch = builds / f".{version}.{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        stage_build_context(scratch)
        try:
            scratch.rename(final)
        except OSError:  # another process staged the same content first
            shutil.rmtree(scratch, ignore_errors=True)
    _prune(builds, final)
    return final


def _prune(builds: Path, current: Path) -> None:
    others = sorted(
        (p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".") and p != current),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    in_use = _working_directories()
    for old in others[KEEP_STAGINGS:]:
        if not any(cwd == old or old in cwd.parents for cwd in in_use):
            shutil.rmtree(old, ignore_errors=True)


def _working_directories() -> set[Path]:
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            found.add(Path(os.readlink(proc / "cwd")))
        except OSError:
            continue
    return found


def server_command(python: str, server_args: list[str]) -> list[str]:
    return [python, "-P", "-m", "scoring.server", *server_args]


def server_env(context: Path, base: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: ``base`` with the staged context as the only import path."""
    env = {k: v for k, v in base.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = str(context)
    env["PYTHONSAFEPATH"] = "1"
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backends.local.supervisor", description=__doc__.split("\n")[0])
    parser.add_argument("--context", required=True, type=Path, help="the staged build context (from stage())")
    parser.add_argument("server_args", nargs=argparse.REMAINDER, help="-- then the scoring server's arguments")
    args = parser.parse_args(argv)
    server_args = args.server_args[1:] if args.server_args[:1] == ["--"] else args.server_args
    context = args.context.resolve()
    if not (context / PACKAGE_NAME / "server.py").is_file():
        print(f"{context} holds no staged scoring package", file=sys.stderr)
        return 2
    os.chdir(context)
    command = server_command(sys.executable, server_args)
    os.execve(command[0], command, server_env(context, os.environ))
    return 0  # not reached: execve replaces this process


if __name__ == "__main__":
    sys.exit(main())
