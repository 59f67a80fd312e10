"""The scoring image's build context: exactly what the Dockerfile needs, versioned by its content."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from scoring import build
from scoring.build import content_hash, context_files, stage_build_context

PACKAGE = build.PACKAGE
DOCKERFILE = (PACKAGE / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.split(None, 1)[:1] == [name]]


def test_the_staged_context_is_the_dockerfile_requirements_and_the_modules(tmp_path: Path) -> None:
    context = stage_build_context(tmp_path / "ctx")
    staged = sorted(p.relative_to(context) for p in context.rglob("*") if p.is_file())
    assert staged == context_files()
    assert {p.name for p in staged} == {"Dockerfile", "requirements.txt", *(p.name for p in PACKAGE.glob("*.py"))}
    assert [p.name for p in (tmp_path / "ctx").iterdir()] == ["scoring"]
    assert content_hash(context) == content_hash()
    with pytest.raises(FileExistsError):
        stage_build_context(tmp_path / "ctx")


def test_the_hash_follows_the_content(tmp_path: Path) -> None:
    context = stage_build_context(tmp_path / "ctx")
    before = content_hash(context)
    (context / "metrics.py").write_text((context / "metrics.py").read_text() + "\n# changed\n")
    assert content_hash(context) != before
    (context / "notes.txt").write_text("not in the context")  # a file the Dockerfile does not copy changes nothing
    (context / "metrics.py").write_text((PACKAGE / "metrics.py").read_text())
    assert content_hash(context) == before


def test_the_dockerfile_copies_exactly_the_context_and_runs_the_server_as_azure_ml_needs() -> None:
    sources = {shlex.split(copy)[0] for copy in _instructions("COPY")}
    assert sources == {"requirements.txt", "*.py"}
    ignored = [line for line in (PACKAGE / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert ignored == ["*", *(f"!{name}" for name in build.EXTRA_FILES), "!*.py"]
    user = _instructions("USER")
    assert user and user[-1].strip() not in ("0", "root")
    command = " ".join(ast.literal_eval(_instructions("CMD")[-1]))
    for part in (
        "python -m scoring.server",
        "--host 0.0.0.0",
        "--port 5001",
        '--model-dir "$AZUREML_MODEL_DIR"',
        "--auth platform",
        "--logs-connection SCORING_LOGS",
    ):
        assert part in command
    assert re.search(r"^FROM python:3\.11", DOCKERFILE, re.MULTILINE)


def test_the_staged_package_starts_with_nothing_of_the_repository(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    stage_build_context(root)
    probe = (
        "import importlib.util as u; import scoring.server; "
        "print([n for n in ('ml', 'backends', 'cli', 'devhost') if u.find_spec(n)])"
    )
    done = subprocess.run(
        [sys.executable, "-P", "-c", probe],
        cwd=root,
        env={"PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_python_m_scoring_build_prints_the_context_and_its_hash(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scoring.build", str(tmp_path / "out")],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    context, digest = done.stdout.split()
    assert Path(context) == tmp_path / "out" / "scoring" and digest == content_hash()
