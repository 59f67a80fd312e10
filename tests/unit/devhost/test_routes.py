from __future__ import annotations

import pytest

from devhost.routes import compile_route


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("items/{id}", "items/7", {"id": "7"}),
        ("items/{id}", "ITEMS/7", {"id": "7"}),
        ("items/{id:int}", "items/abc", None),
        ("items/{id:int}", "items/-3", {"id": "-3"}),
        ("items/{id?}", "items", {}),
        ("items/{id?}", "items/9", {"id": "9"}),
        ("files/{*rest}", "files/a/b/c", {"rest": "a/b/c"}),
        ("files/{*rest}", "files", {}),
        ("a/{x}/b/{y}", "a/1/b/2", {"x": "1", "y": "2"}),
        ("a/{x}/b/{y}", "a/1/b", None),
        ("v/{kind=all}", "v", {"kind": "all"}),
        ("pipeline/start", "pipeline/start/", {}),
        ("pipeline/start", "pipeline/stop", None),
        (
            "orders/{id:guid}",
            "orders/0f8fad5b-d9cb-469f-a165-70867728950e",
            {"id": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        ),
    ],
)
def test_route_templates(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert compile_route(template).match(path) == expected
