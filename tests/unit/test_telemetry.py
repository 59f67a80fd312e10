"""Telemetry stays silent without a connection string, and never configures twice."""

from __future__ import annotations

import pytest

from backends import telemetry


def test_nothing_is_configured_without_a_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_configured", False)
    assert telemetry.configure_telemetry("mlops-functions", {}) is False
    assert telemetry.configure_telemetry("mlops-functions", {"APPLICATIONINSIGHTS_CONNECTION_STRING": " "}) is False
    with telemetry.span("activity", instance_id="x"):
        pass


def test_the_functions_worker_owns_it_when_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_configured", False)
    env = {"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
           "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true"}
    assert telemetry.configure_telemetry("mlops-functions", env) is False


def test_configured_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_configured", True)
    env = {"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000"}
    assert telemetry.configure_telemetry("mlops-functions", env) is False
