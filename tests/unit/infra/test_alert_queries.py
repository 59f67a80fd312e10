"""The alert queries read only what the code emits: event, metric and dimension names, and the values they compare."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from backends import telemetry as app_telemetry
from messages.enums import Outcome
from orchestrators import blueprint
from scoring import telemetry as scoring_telemetry
from tests.unit.infra.bicep import ROOT, config, interpolate, resources, template

#: the outcomes the recipes record (their finish(...) calls) and the one of a failed orchestration
_RECIPES = " ".join(p.read_text() for p in (ROOT / "orchestrators").glob("*.py"))
OUTCOMES = {Outcome[name].value for name in re.findall(r"finish\(\s*Outcome\.([A-Z_]+)", _RECIPES)}
EMITTED_VALUES = {
    "kind": set(app_telemetry.RUN_KINDS),
    "outcome": OUTCOMES | {app_telemetry.FAILED_OUTCOME},
    "status_class": set(scoring_telemetry.STATUS_CLASSES),
}


@dataclass(frozen=True)
class Rule:
    name: str
    query: str
    measure: str | None
    dimensions: tuple[str, ...]


def rules() -> list[Rule]:
    variables = template("alerts.bicep")["variables"]
    out = []
    for symbol, resource in resources("alerts.bicep", "Microsoft.Insights/scheduledQueryRules").items():
        for criterion in config(resource)["properties"]["criteria"]["allOf"]:
            out.append(
                Rule(
                    symbol,
                    interpolate(criterion["query"], variables),
                    criterion.get("metricMeasureColumn"),
                    tuple(d["name"] for d in criterion.get("dimensions", [])),
                )
            )
    return out


def _names(query: str) -> set[str]:
    found = set(re.findall(r'\bname\s*==\s*"([^"]+)"', query))
    for group in re.findall(r"\bname\s+in\s*\(([^)]*)\)", query):
        found |= set(re.findall(r'"([^"]+)"', group))
    return found


def _aliases(query: str) -> dict[str, str]:
    """Column alias → the custom dimension it reads (``extend kind = tostring(customDimensions.kind)``)."""
    return dict(re.findall(r"(\w+)\s*=\s*tostring\(customDimensions\.(\w+)\)", query))


def _columns(query: str) -> set[str]:
    return set(re.findall(r"(?:summarize|extend|,)\s*(\w+)\s*=", query))


def test_every_alert_reads_an_emitted_event_or_metric() -> None:
    assert {r.name for r in rules()} == {"failedRelease", "failedRetrain", "scoringP99", "scoringErrors"}
    metrics = set(scoring_telemetry.METRIC_DIMENSIONS)
    for rule in rules():
        table = rule.query.split("|", 1)[0].strip()
        names = _names(rule.query)
        assert names, f"{rule.name} filters no event or metric by name"
        if table == "customEvents":
            assert names == {app_telemetry.RUN_FINISHED_EVENT}, rule.name
        else:
            assert table == "customMetrics" and names <= metrics, f"{rule.name}: {names - metrics} not emitted"


def test_every_dimension_an_alert_reads_is_one_the_event_or_metric_carries() -> None:
    for rule in rules():
        dims = set(re.findall(r"customDimensions\.(\w+)", rule.query))
        assert dims, rule.name
        carried: set[str] = set()
        for name in _names(rule.query):
            carried |= set(
                app_telemetry.RUN_FINISHED_DIMENSIONS
                if name == app_telemetry.RUN_FINISHED_EVENT
                else scoring_telemetry.METRIC_DIMENSIONS[name]
            )
        assert dims <= carried, f"{rule.name} reads {sorted(dims - carried)}, which nothing emits"


def test_every_compared_value_is_one_the_code_emits() -> None:
    compared = 0
    for rule in rules():
        aliases = _aliases(rule.query)
        for column, value in re.findall(r'(\w+)\s*==\s*"([^"]+)"', rule.query):
            if column == "name":
                continue
            assert value in EMITTED_VALUES[aliases.get(column, column)], f"{rule.name}: {column} == {value!r}"
            compared += 1
        for column, group in re.findall(r"(\w+)\s+in\s*\(([^)]*)\)", rule.query):
            if column == "name":
                continue
            for value in re.findall(r'"([^"]+)"', group):
                assert value in EMITTED_VALUES[aliases[column]], f"{rule.name}: {column} in {value!r}"
                compared += 1
        for column, value in re.findall(r'sumif\(\w+,\s*(\w+)\s*==\s*"([^"]+)"\)', rule.query):
            assert value in EMITTED_VALUES[aliases[column]]
    assert compared >= 7


def test_measures_and_split_dimensions_are_columns_of_the_query() -> None:
    for rule in rules():
        columns = _columns(rule.query) | set(_aliases(rule.query))
        if rule.measure:
            assert rule.measure in columns, f"{rule.name}: no column {rule.measure}"
        for dim in rule.dimensions:
            assert dim in columns, f"{rule.name}: splits by {dim}, not a column"


@pytest.mark.parametrize("outcome", ["qa_failed", "rolled_back", "training_failed"])
def test_the_failure_outcomes_alerted_on_exist(outcome: str) -> None:
    assert outcome in OUTCOMES
    assert blueprint.FAILED == app_telemetry.FAILED_OUTCOME
