"""``scoring/`` is the image's whole build context: it imports nothing of the repository, and its own modules only
relatively (so ``score.py`` can load them from its folder under any name, as Azure ML's standard path needs)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
REPOSITORY = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()} | {"function_app"}


def test_scoring_imports_nothing_of_the_repository_and_itself_relatively() -> None:
    assert "scoring" in REPOSITORY and "ml" in REPOSITORY
    bad = []
    for source in sorted((ROOT / "scoring").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            bad += [f"{source.name}: import {n}" for n in names if n.split(".")[0] in REPOSITORY]
    assert not bad, "\n".join(bad)
