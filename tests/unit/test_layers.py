"""The layers import downward only (docs/architecture.md), and no module imports itself back through others: checked
on the source, not by convention."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_PACKAGES = {
    "triggers",
    "orchestrators",
    "activities",
    "services",
    "backends",
    "ml",
    "scoring",
    "cli",
    "messages",
    "function_app",
}

#: package -> top-level packages of this project it must never import
FORBIDDEN: dict[str, set[str]] = {
    "messages": APP_PACKAGES - {"messages"} | {"devhost"},
    "ml": {
        "triggers",
        "orchestrators",
        "activities",
        "services",
        "backends",
        "scoring",
        "devhost",
        "cli",
        "function_app",
    },
    "backends": {"triggers", "orchestrators", "activities", "services", "devhost", "cli", "function_app"},
    "services": {"triggers", "orchestrators", "activities", "devhost", "cli", "function_app"},
    "activities": {"triggers", "orchestrators", "devhost", "cli", "function_app"},
    "orchestrators": {"triggers", "services", "backends", "ml", "scoring", "devhost", "cli", "function_app"},
    "triggers": {"devhost", "cli", "function_app", "activities"},
    "scoring": {"triggers", "orchestrators", "activities", "services", "backends", "devhost", "cli", "function_app"},
    # the terminal's commands talk to the app over HTTP and storage: never through its functions or devhost's code
    "cli": {"triggers", "activities", "devhost", "function_app"},
    "devhost": APP_PACKAGES,
}
#: third-party roots that a package must not import
FORBIDDEN_THIRD_PARTY: dict[str, set[str]] = {
    "ml": {"azure"},
    "orchestrators": {
        "azure.storage",
        "azure.ai",
        "azure.identity",
        "requests",
        "httpx",
        "aiohttp",
        "mlflow",
        "sklearn",
        "pandas",
        "numpy",
        "random",
        "time",
        "os",
        "socket",
        "subprocess",
    },
}


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (lazy and ``TYPE_CHECKING`` imports too)."""
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
    allowed = (
        "backends/azure/",
        "backends/storage.py",
        "backends/storage_connection.py",
        "backends/telemetry.py",
        "scoring/",
    )
    bad = []
    for package in ("triggers", "orchestrators", "activities", "services", "backends", "ml", "messages"):
        for source in _sources(package):
            rel = source.relative_to(ROOT).as_posix()
            if rel.startswith(allowed):
                continue
            for name in _imports(source):
                if name.startswith(("azure.ai", "azure.storage", "azure.identity", "azure.eventgrid", "azure.monitor")):
                    bad.append(f"{rel} imports {name}")
    assert not bad, "\n".join(bad)


def _module_name(source: Path) -> str:
    parts = list(source.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Module → the modules of this project it imports (``from a.b import c`` counts ``a.b.c`` when it is a module,
    else ``a.b``); relative imports (``scoring/`` uses them) resolved against the importing module."""
    sources = {_module_name(p): p for package in sorted(APP_PACKAGES - {"function_app"}) for p in _sources(package)}
    graph: dict[str, set[str]] = {}
    for name, source in sources.items():
        package = name if source.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in sources else base for alias in node.names
                ]
            found.update(t for t in targets if t in sources and t != name)
        graph[name] = found
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, if there is any (depth-first search with colours)."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if colour.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in colour and (found := visit(nxt)):
                return found
        colour[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in colour and (found := visit(node)):
            return found
    return None


def test_no_module_imports_itself_back() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_search_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
