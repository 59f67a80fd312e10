"""The layers import downward only (ARCHITECTURE.md): checked on the source, not by convention."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_PACKAGES = {"triggers", "orchestrators", "activities", "backends", "ml", "scoring", "cli", "function_app"}

#: package -> top-level packages of this project it must never import
FORBIDDEN: dict[str, set[str]] = {
    "ml": {"triggers", "orchestrators", "activities", "backends", "scoring", "devhost", "cli", "function_app"},
    "backends": {"triggers", "orchestrators", "activities", "devhost", "cli", "function_app"},
    "activities": {"triggers", "orchestrators", "devhost", "cli", "function_app"},
    "orchestrators": {"triggers", "backends", "ml", "scoring", "devhost", "cli", "function_app"},
    "triggers": {"devhost", "cli", "function_app", "activities"},
    "scoring": {"triggers", "orchestrators", "activities", "backends", "devhost", "cli", "function_app"},
    "devhost": APP_PACKAGES,
}
#: third-party roots that a package must not import
FORBIDDEN_THIRD_PARTY: dict[str, set[str]] = {
    "ml": {"azure"},
    "orchestrators": {
        "azure.storage", "azure.ai", "azure.identity", "requests", "httpx", "aiohttp", "mlflow", "sklearn",
        "pandas", "numpy", "random", "time", "os", "socket", "subprocess",
    },
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_downward_only(package: str) -> None:
    bad = []
    for source in _sources(package):
        for name in _imports(source):
            root = name.split(".")[0]
            if root in FORBIDDEN[package]:
                bad.append(f"{source.relative_to(ROOT)} imports {name}")
            for prefix in FORBIDDEN_THIRD_PARTY.get(package, set()):
                if name == prefix or name.startswith(prefix + "."):
                    bad.append(f"{source.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_azure_sdks_only_under_backends() -> None:
    allowed = ("backends/azure/", "backends/storage.py", "backends/storage_connection.py", "backends/telemetry.py",
               "scoring/")
    bad = []
    for package in ("triggers", "orchestrators", "activities", "backends", "ml"):
        for source in _sources(package):
            rel = source.relative_to(ROOT).as_posix()
            if rel.startswith(allowed):
                continue
            for name in _imports(source):
                if name.startswith(("azure.ai", "azure.storage", "azure.identity", "azure.eventgrid", "azure.monitor")):
                    bad.append(f"{rel} imports {name}")
    assert not bad, "\n".join(bad)
