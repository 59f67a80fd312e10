"""Replay of recorded histories: an instance in flight when the app is updated must carry on under the new code.

``tests/data/histories/`` holds histories of ``retrain`` and ``release`` as the host stores them, recorded by
``tests.support.histories`` from the app as it was before its orchestration messages became typed. Each is
replayed with the real Durable SDK and today's orchestrators at every episode boundary, as a host does after each
completed task: the replay must schedule exactly what the history recorded (a renamed, reordered, added or removed
activity or timer is a non-deterministic replay, which fails the instance), and the last episode must end as
the recorded run ended. New keys in the output are allowed; changed or missing ones are not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from activities import names as act
from tests.support.histories import replay_episodes

HISTORIES = Path(__file__).resolve().parents[2] / "data" / "histories"
RECORDED = sorted(HISTORIES.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    recorded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return recorded


def _kept(new: Any, old: Any) -> Any:
    """``new`` restricted to the keys ``old`` has (recursively), for comparing an output that gained fields."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: _kept(new.get(k), v) for k, v in old.items()}
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [_kept(n, o) for n, o in zip(new, old, strict=True)]
    return new


def test_both_recipes_have_recorded_histories() -> None:
    recipes = {_load(p)["orchestrator"] for p in RECORDED}
    assert recipes == {"retrain", "release"}
    outcomes = {_load(p)["output"]["outcome"] for p in RECORDED}
    assert outcomes == {"registered", "invalid_data", "deployed", "rolled_back"}


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_a_recorded_history_replays_at_every_episode(path: Path) -> None:
    recorded = _load(path)
    episodes = list(replay_episodes(recorded))
    assert len(episodes) >= 3
    for episode in episodes:
        assert episode.error is None, f"episode {episode.index}: {episode.error}"
        assert episode.produced == episode.expected, f"episode {episode.index} schedules differently"
    last = episodes[-1]
    assert last.done and all(not e.done for e in episodes[:-1])
    assert _kept(last.output, recorded["output"]) == recorded["output"]
    assert _kept(last.custom_status, recorded["custom_status"]) == recorded["custom_status"]


def test_a_release_waiting_for_approval_was_recorded_with_its_decision() -> None:
    """``release-approved``: a policy's approval step (a 10-day wait, looped timers) decided by an external event,
    with notifications: an instance of it in flight must keep replaying too."""
    from devhost import history as h

    recorded = _load(HISTORIES / "release-approved.json")
    raised = [e for e in recorded["history"] if e["EventType"] == h.EVENT_RAISED]
    assert [e["Name"] for e in raised] == ["approval_decision"]
    assert recorded["output"]["approval"]["by"] == "alice"
    assert "approval" in [s["name"] for s in recorded["output"]["stages"]]


def test_a_renamed_activity_breaks_the_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test can fail: the recipe calling its evaluation by another name no longer replays the history."""
    monkeypatch.setattr(act, "EVALUATE_CHALLENGER", "evaluate_model")
    recorded = _load(HISTORIES / "retrain-registered.json")
    broken = [e.index for e in replay_episodes(recorded) if e.produced != e.expected]
    assert broken, "a renamed activity went unnoticed"


def test_an_added_step_breaks_the_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recipe that waits once more before its first look at the release slot no longer replays the history."""
    from orchestrators import release

    original = release._wait_turn

    def wait_longer(context: Any, *args: Any) -> Any:
        yield context.create_timer(context.current_utc_datetime)
        return (yield from original(context, *args))

    monkeypatch.setattr(release, "_wait_turn", wait_longer)
    recorded = _load(HISTORIES / "release-deployed.json")
    assert any(e.produced != e.expected for e in replay_episodes(recorded))
