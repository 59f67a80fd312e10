"""The Bicep templates as data: parsed by pycep-parser (the parser checkov uses), with small helpers over its tree."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[3]
INFRA = ROOT / "infra"


@functools.cache
def template(name: str) -> dict[str, Any]:
    """``infra/<name>`` parsed; a file pycep cannot parse fails here (checkov would skip it silently)."""
    parsed: Any = BicepParser().parse(text=(INFRA / name).read_text())
    assert isinstance(parsed, dict), f"pycep could not parse infra/{name}"
    return parsed


def text(expr: Any) -> str:
    """An expression as Bicep-like text: ``a.b.c``, ``f(x, y)``, literals as they are; enough to compare."""
    if isinstance(expr, str | int | float | bool) or expr is None:
        return str(expr)
    if isinstance(expr, list):
        return "[" + ", ".join(text(e) for e in expr) + "]"
    if "operator" in expr:
        op = expr["operator"]
        if op["type"] == "property_accessor":
            return f"{text(op['operands']['operand_1'])}.{text(op['operands']['operand_2'])}"
        if op["type"] == "index_accessor":
            return f"{text(op['operands']['operand_1'])}[{text(op['operands']['operand_2'])}]"
        return f"{op['type']}({', '.join(text(v) for v in op['operands'].values())})"
    if "function" in expr:
        fn = expr["function"]
        args = [text(v) for v in (fn.get("parameters") or {}).values() if v is not None]
        accessed = f".{fn['property_name']}" if fn.get("property_name") else ""
        return f"{fn['type']}({', '.join(args)}){accessed}"
    return "{" + ", ".join(f"{k}: {text(v)}" for k, v in expr.items()) + "}"


def config(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource's body (a conditional or looped resource nests it one level deeper)."""
    body = resource["config"]
    return dict(body["config"]) if "condition" in body and "config" in body else dict(body)


def resources(name: str, type_: str | None = None) -> dict[str, dict[str, Any]]:
    found = template(name)["resources"]
    return {k: v for k, v in found.items() if type_ is None or v["type"] == type_}


def variable(name: str, var: str) -> Any:
    return template(name)["variables"][var]["value"]


def interpolate(value: str, variables: dict[str, Any]) -> str:
    """Replace ``${var}`` by the template variable's literal value (what the queries use)."""
    return re.sub(r"\$\{(\w+)\}", lambda m: str(variables[m.group(1)]["value"]), value)


@dataclass(frozen=True)
class Assignment:
    symbol: str
    identity: str
    role: str
    scope: str
    principal_type: str
    name: str
    conditional: bool


#: Bicep expression of a principal id → the identity's symbolic name
def _identity(principal: str) -> str:
    for suffix in (".properties.principalId", ".identity.principalId"):
        if principal.endswith(suffix):
            return principal[: -len(suffix)]
    return principal  # a parameter, e.g. deployerObjectId


def role_assignments() -> list[Assignment]:
    out = []
    for symbol, resource in resources("main.bicep", "Microsoft.Authorization/roleAssignments").items():
        body = config(resource)
        props = body["properties"]
        role = text(props["roleDefinitionId"])
        match = re.fullmatch(
            r"subscription_resource_id\(Microsoft\.Authorization/roleDefinitions, roles\.(\w+)\)", role
        )
        assert match, f"{symbol}: roleDefinitionId must be a built-in role of the roles variable, got {role}"
        out.append(
            Assignment(
                symbol,
                _identity(text(props["principalId"])),
                match.group(1),
                text(body["scope"]),
                text(props.get("principalType")),
                text(body["name"]),
                "condition" in resource["config"],
            )
        )
    return out


def app_settings() -> dict[str, str]:
    app = config(resources("main.bicep")["app"])
    return {entry["name"]: text(entry["value"]) for entry in app["properties"]["siteConfig"]["appSettings"]}
