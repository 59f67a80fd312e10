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
    env = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
        "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true",
    }
    assert telemetry.configure_telemetry("mlops-functions", env) is False


def test_configured_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_configured", True)
    env = {"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000"}
    assert telemetry.configure_telemetry("mlops-functions", env) is False


def _finished(**overrides: object) -> dict[str, object]:
    return {
        "run_id": "retrain-abc",
        "kind": "retrain",
        "outcome": "registered",
        "model": "diabetes-ridge",
        "version": "3",
        "trigger": "blob",
        "duration_s": 95.25,
        "reason": "registered version 3",
        **overrides,
    }


def test_run_finished_parses_validates_and_bounds_its_reason() -> None:
    event = telemetry.RunFinished.from_dict(_finished(reason="x" * 5000, duration_s="12"))
    assert event.duration_s == 12.0 and len(event.reason) == 1000
    assert set(event.dimensions()) == set(telemetry.RUN_FINISHED_DIMENSIONS)
    assert event.dimensions()["duration_s"] == "12.000"
    assert telemetry.RunFinished.from_dict(_finished(version=None)).version == ""
    with pytest.raises(ValueError, match="missing trigger, duration_s"):
        telemetry.RunFinished.from_dict({k: v for k, v in _finished().items() if k not in ("trigger", "duration_s")})
    with pytest.raises(ValueError, match="kind must be one of retrain, release"):
        telemetry.RunFinished.from_dict(_finished(kind="deploy"))
    with pytest.raises(ValueError, match="outcome must not be empty"):
        telemetry.RunFinished.from_dict(_finished(outcome=""))
    for bad in ("soon", float("nan"), -1):
        with pytest.raises(ValueError, match="duration_s must be"):
            telemetry.RunFinished.from_dict(_finished(duration_s=bad))


def test_record_outcome_logs_one_event_record_with_the_exporters_attributes(caplog: pytest.LogCaptureFixture) -> None:
    from activities.outcomes import record_outcome

    with caplog.at_level("INFO", logger=telemetry.EVENTS_LOGGER):
        recorded = record_outcome(_finished(kind="release", outcome="failed", reason="boom"))
    assert recorded["outcome"] == "failed"
    [record] = [r for r in caplog.records if r.name == telemetry.EVENTS_LOGGER]
    attributes = vars(record)
    assert attributes[telemetry.CUSTOM_EVENT_NAME_ATTRIBUTE] == telemetry.RUN_FINISHED_EVENT
    assert {k: attributes[k] for k in ("run_id", "kind", "outcome", "reason")} == {
        "run_id": "retrain-abc",
        "kind": "release",
        "outcome": "failed",
        "reason": "boom",
    }
    assert attributes[telemetry.CUSTOM_MEASUREMENTS_ATTRIBUTE] == '{"duration_s": 95.25}'
    assert (
        record.getMessage() == "release run retrain-abc ended failed (model diabetes-ridge version 3, "
        "trigger blob, 95.2 s)"
    )


def test_the_event_logger_is_under_the_exported_logger() -> None:
    assert telemetry.EVENTS_LOGGER.startswith(telemetry.EXPORTED_LOGGER + ".")
