"""Request values: bounded numbers, times, strict JSON in, standard JSON out, clipping, the backoff."""

from __future__ import annotations

import json
import logging

import pytest

from devhost import jsonio
from devhost.backoff import Outage
from devhost.limits import clip, custom_status_problem, payload_problem
from devhost.params import RequestError, query_float, query_int, query_time


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "1e309", "-1", "601", "x", "0x10"])
def test_query_float_rejects_non_finite_and_out_of_range(raw: str) -> None:
    with pytest.raises(RequestError, match="timeout"):
        query_float({"timeout": raw}, "timeout", None, 0, 600)


def test_query_float_accepts_bounds_and_default() -> None:
    assert query_float({"t": "0"}, "t", None, 0, 600) == 0
    assert query_float({"t": "600"}, "t", None, 0, 600) == 600
    assert query_float({}, "t", 1.5, 0, 600) == 1.5


@pytest.mark.parametrize("raw", ["-2", "0", "1e3", "1.5", "99999999999999999999999", " ", "+", "nan"])
def test_query_int_rejects(raw: str) -> None:
    with pytest.raises(RequestError, match="top"):
        query_int({"top": raw}, "top", 100, 1, 10_000)


def test_query_time() -> None:
    assert query_time({"c": "2024-01-31T12:00:00Z"}, "c") is not None
    for bad in ("yesterday", "99999-01-01T00:00:00Z", "2024-13-01T00:00:00Z"):
        with pytest.raises(RequestError, match="c must be"):
            query_time({"c": bad}, "c")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested deeper"),
        (b"[" * 65 + b"]" * 65, "nested deeper"),
        (b'"\xff"', "not UTF-8"),
        (b"NaN", "NaN is not a JSON value"),
        (b"[Infinity]", "Infinity"),
        (b"{", "not valid JSON"),
    ],
)
def test_parse_rejects(raw: bytes, message: str) -> None:
    with pytest.raises(jsonio.BadJson, match=message):
        jsonio.parse(raw)


def test_parse_accepts_64_levels_and_dumps_is_standard() -> None:
    assert jsonio.parse(b"[" * 64 + b"]" * 64) is not None
    text = jsonio.dumps({"a": [float("nan"), float("inf"), -float("inf"), 1.0]})
    assert json.loads(text, parse_constant=pytest.fail) == {"a": ["NaN", "Infinity", "-Infinity", 1.0]}


def test_limits_and_clip() -> None:
    assert payload_problem("x", "a" * 10, limit=10) is None
    assert "11 bytes" in (payload_problem("x", "a" * 11, limit=10) or "")
    assert custom_status_problem(json.dumps("s" * 8000)) is None
    assert "16,384" in (custom_status_problem(json.dumps("s" * 8200)) or "")
    assert clip("abc") == "abc" and len(clip("z" * 10_000)) < 250


def test_outage_backs_off_capped_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage("listener", logging.getLogger("t"), first_delay=0.5, max_delay=4)
    with caplog.at_level(logging.WARNING):
        delays = [outage.failed(OSError("down")) for _ in range(6)]
        outage.recovered()
        outage.recovered()
    assert delays == [0.5, 1, 2, 4, 4, 4]
    assert [r.getMessage().split(":")[1].strip()[:7] for r in caplog.records] == ["storage", "storage"]
    assert "unreachable" in caplog.records[0].getMessage() and "again" in caplog.records[1].getMessage()
