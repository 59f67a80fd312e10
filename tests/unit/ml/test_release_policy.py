"""Release policies in a model's spec: the approval step between qa and full, its approvers and timeout, and every
problem named with file, key, expected and found; a spec that declares no policy keeps today's path."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.settings import Settings
from ml.spec import SpecError, duration_s, load_spec
from services.catalog import defaults
from triggers.inputs import release_input

SETTINGS = Settings.from_env({})
HEAD = (
    "task: regression\nschema:\n  features: [{name: x}]\n  label: {name: y}\n"
    "estimator: {factory: 'ml.estimators:ridge'}\n"
)


def _spec_folder(root: Path, release: str) -> Path:
    folder = root / "gated-model"
    folder.mkdir()
    (folder / "model.yaml").write_text(HEAD + release)
    return folder


def _problems(root: Path, release: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(_spec_folder(root, release), defaults(SETTINGS))
    return caught.value.problems


def test_an_approval_step_between_qa_and_full_is_read(tmp_path: Path) -> None:
    spec = load_spec(
        _spec_folder(
            tmp_path,
            "release:\n  steps:\n    - {step: qa}\n"
            "    - {step: approval, approvers: [alice, ' bob@example.com '], timeout: 10d}\n    - {step: full}\n",
        ),
        defaults(SETTINGS),
    )
    assert [s.step for s in spec.release] == ["qa", "approval", "full"]
    gate = spec.release[1].approval
    assert gate is not None and gate.approvers == ("alice", "bob@example.com")
    assert gate.timeout_s == 10 * 86_400  # longer than one Azure Storage timer: the recipe loops shorter ones
    assert spec.release[0].api_test is not None and spec.release[1].api_test is None
    config = release_input(SETTINGS, "3", "event-1", spec)["config"]
    assert config["approval"] == {"approvers": ["alice", "bob@example.com"], "timeout_s": 864000.0}


def test_a_spec_without_a_policy_runs_todays_path_with_no_approval(tmp_path: Path) -> None:
    spec = load_spec(_spec_folder(tmp_path, ""), defaults(SETTINGS))
    assert [s.step for s in spec.release] == ["qa", "full"]
    assert release_input(SETTINGS, "3", "event-1", spec)["config"]["approval"] is None
    assert release_input(SETTINGS, "3", "event-1")["config"]["approval"] is None  # the default model


@pytest.mark.parametrize(
    ("release", "key", "expected", "found"),
    [
        (
            "    - {step: qa}\n    - {step: approval, timeout: 1h}\n    - {step: full}\n",
            "release.steps[1].approvers",
            "a list of 1 to 100 names",
            "None",
        ),
        (
            "    - {step: qa}\n    - {step: approval, approvers: [alice]}\n    - {step: full}\n",
            "release.steps[1].timeout",
            "how long to wait for a decision",
            "nothing",
        ),
        (
            "    - {step: qa}\n    - {step: approval, approvers: [alice], timeout: 3 weeks}\n    - {step: full}\n",
            "release.steps[1].timeout",
            "a duration from 1s to 365d",
            "'3 weeks'",
        ),
        (
            "    - {step: qa}\n    - {step: approval, approvers: [mlops-pipeline], timeout: 1h}\n    - {step: full}\n",
            "release.steps[1].approvers[0]",
            "a person (the pipeline, 'mlops-pipeline', never approves)",
            "'mlops-pipeline'",
        ),
        (
            "    - {step: qa}\n    - {step: approval, approvers: [ann, ANN], timeout: 1h}\n    - {step: full}\n",
            "release.steps[1].approvers[1]",
            "each approver once",
            "'ANN'",
        ),
        (
            "    - {step: approval, approvers: [ann], timeout: 1h}\n    - {step: qa}\n    - {step: full}\n",
            "release.steps",
            "at most one approval step, between qa and full",
            "['approval', 'qa', 'full']",
        ),
        (
            "    - {step: qa}\n    - {step: approval, approvers: [ann], timeout: 1h, api_test: {}}\n"
            "    - {step: full}\n",
            "release.steps[1].api_test",
            "one of the keys approvers, step, timeout",
            "'api_test'",
        ),
        (
            "    - {step: qa}\n    - {step: canary}\n    - {step: full}\n",
            "release.steps[1].step",
            "one of qa, full, approval",
            "'canary'",
        ),
    ],
)
def test_a_bad_approval_step_is_named_with_file_key_expected_and_found(
    tmp_path: Path, release: str, key: str, expected: str, found: str
) -> None:
    problems = _problems(tmp_path, "release:\n  steps:\n" + release)
    path = str(tmp_path / "gated-model" / "model.yaml")
    matching = [p for p in problems if p.startswith(f"{path}: {key} (line ")]
    assert matching, problems
    assert (f": expected {expected}" in matching[0] and matching[0].endswith(f"found {found}")) or (
        f"found {found}" in matching[0]
    ), matching


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90.0), ("30m", 1800.0), ("72h", 259200.0), ("10d", 864000.0), ("1.5h", 5400.0)]
)
def test_durations_read_as_seconds(text: str, seconds: float) -> None:
    assert duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "10w", "h", "-1h", 10])
def test_what_is_not_a_duration(text: object) -> None:
    assert duration_s(text) is None
