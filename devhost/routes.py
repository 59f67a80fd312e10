"""ASP.NET-style route templates (``{id}``, ``{id?}``, ``{id:int}``, ``{*rest}``), matched case-insensitively."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+)(?:\([^)]*\))?)?(\?)?(?:=([^}]*))?\}")
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?:true|false)",
    "guid": r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
    "alpha": r"[A-Za-z]+",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "datetime": r"[^/]+",
}


@dataclass(frozen=True)
class RouteTemplate:
    """A compiled template; ``match`` returns the route parameters or None."""

    template: str
    pattern: re.Pattern[str]
    defaults: dict[str, str]

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path.strip("/"))
        if found is None:
            return None
        params = {k: v for k, v in found.groupdict().items() if v is not None}
        return {**self.defaults, **params}


def _segment_regex(segment: str, defaults: dict[str, Any]) -> tuple[str, bool]:
    """Regex for one path segment and whether the whole segment is optional."""
    parts: list[str] = []
    pos = 0
    optional = False
    for m in _PARAM.finditer(segment):
        parts.append(re.escape(segment[pos : m.start()]))
        star, name, constraint, question, default = m.groups()
        body = r".*" if star else _CONSTRAINTS.get((constraint or "").lower(), r"[^/]+")
        parts.append(f"(?P<{name}>{body})")
        if default is not None:
            defaults[name] = default
        optional = optional or bool(question) or default is not None or bool(star)
        pos = m.end()
    parts.append(re.escape(segment[pos:]))
    return "".join(parts), optional and pos > 0 and segment.startswith("{") and segment.endswith("}")


def compile_route(template: str) -> RouteTemplate:
    """Compile a Functions route template into a case-insensitive regex."""
    defaults: dict[str, str] = {}
    regex = ""
    for i, segment in enumerate(s for s in template.strip("/").split("/") if s):
        body, optional = _segment_regex(segment, defaults)
        sep = "/" if i else ""
        regex += f"(?:{sep}{body})?" if optional else f"{sep}{body}"
    return RouteTemplate(template, re.compile(regex, re.IGNORECASE), defaults)
