"""Release notifications: the three bodies (CloudEvents 1.0 structured JSON, a Teams MessageCard, a Slack message),
posted for real to a sink on 127.0.0.1; which failures a retry can help; and a webhook's URL never shown."""

from __future__ import annotations

import json

import pytest

from backends.errors import SettingsError
from backends.settings import Settings
from backends.webhooks import WebhookFailed
from messages.enums import NoticeKind, WebhookFormat
from messages.steps import Notice
from services.notifications import UnknownTarget, body_of, send
from tests.support.azurite import free_port
from tests.support.webhook_sink import webhook_sink

PENDING = Notice(
    NoticeKind.APPROVAL_PENDING,
    0,
    WebhookFormat.JSON,
    "release-iris-3",
    "iris",
    "3",
    approvers=["alice", "bob"],
    since="2026-11-24T12:00:00.000000Z",
    until="2026-11-27T12:00:00.000000Z",
    link="https://app.example/api/runs/release-iris-3",
    approve_link="https://app.example/api/runs/release-iris-3/approve",
    reject_link="https://app.example/api/runs/release-iris-3/reject",
    time="2026-11-24T12:00:00.000000Z",
)
DEPLOYED = Notice(
    NoticeKind.OUTCOME,
    0,
    WebhookFormat.JSON,
    "release-iris-3",
    "iris",
    "3",
    outcome="deployed",
    reason="version 3 serves production",
    link="https://app.example/api/runs/release-iris-3",
    time="2026-11-24T12:05:00.000000Z",
)


def settings_for(*targets: tuple[str, str]) -> Settings:
    return Settings.from_env({"NOTIFY_WEBHOOKS": json.dumps([{"url": u, "format": f} for u, f in targets])})


def test_json_is_a_cloudevents_1_0_structured_event() -> None:
    event, content_type = body_of(PENDING)
    assert content_type.startswith("application/cloudevents+json")
    assert {"specversion", "type", "source", "id", "time", "subject", "datacontenttype", "data"} <= set(event)
    assert event["specversion"] == "1.0" and event["type"].endswith(".release.approval_pending")
    assert event["source"] == "/runs/release-iris-3" and event["subject"] == "iris/3"
    assert event["data"]["approvers"] == ["alice", "bob"] and event["data"]["approve"].endswith("/approve")
    again, _ = body_of(PENDING)
    assert again["id"] == event["id"] != body_of(DEPLOYED)[0]["id"]  # one id per notification, on every attempt
    finished, _ = body_of(DEPLOYED)
    assert finished["data"]["outcome"] == "deployed" and finished["type"].endswith(".release.finished")


def test_teams_gets_a_message_card_with_a_link_to_the_run() -> None:
    card, content_type = body_of(Notice.from_dict({**DEPLOYED.to_dict(), "format": "teams"}))
    assert content_type == "application/json"
    assert card["@type"] == "MessageCard" and card["@context"] == "https://schema.org/extensions"
    assert card["title"] == "Release of iris version 3: deployed (version 3 serves production)"
    facts = {f["name"]: f["value"] for f in card["sections"][0]["facts"]}
    assert facts["Outcome"] == "deployed" and facts["Run"] == "release-iris-3"
    assert card["potentialAction"][0]["targets"][0]["uri"] == DEPLOYED.link


def test_slack_gets_text_and_blocks() -> None:
    message, _ = body_of(Notice.from_dict({**PENDING.to_dict(), "format": "slack"}))
    assert message["text"].startswith("Release of iris version 3 waits for approval by alice, bob until 2026-11-27")
    assert message["blocks"][0]["type"] == "section" and "<https://app.example" in json.dumps(message["blocks"])


def test_each_format_is_posted_to_its_target() -> None:
    with webhook_sink() as sink:
        settings = settings_for((sink.url("/ce"), "json"), (sink.url("/teams"), "teams"), (sink.url("/slack"), "slack"))
        for target, fmt in enumerate(WebhookFormat):
            notice = Notice.from_dict({**DEPLOYED.to_dict(), "target": target, "format": fmt.value})
            assert send(settings, notice) == {"target": target, "format": fmt.value, "status": 200}
        ce, teams, slack = sink.at("/ce")[0], sink.at("/teams")[0], sink.at("/slack")[0]
    assert ce.content_type.startswith("application/cloudevents+json") and ce.body["specversion"] == "1.0"
    assert teams.body["@type"] == "MessageCard" and "text" in slack.body


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True), (404, False), (400, False)])
def test_a_refusal_says_whether_a_retry_helps_and_never_shows_the_url(status: int, retryable: bool) -> None:
    with webhook_sink({"/secret-token-abc": [status]}) as sink:
        settings = settings_for((sink.url("/secret-token-abc"), "json"))
        with pytest.raises(WebhookFailed) as caught:
            send(settings, DEPLOYED)
    assert caught.value.retryable is retryable
    assert str(caught.value) == f"notification outcome to target 0 (json): HTTP {status}"


def test_an_unreachable_target_is_retryable_and_its_url_is_not_in_the_error() -> None:
    settings = settings_for((f"http://127.0.0.1:{free_port()}/secret-token-abc", "json"))
    with pytest.raises(WebhookFailed) as caught:
        send(settings, DEPLOYED)
    assert (
        caught.value.retryable and "secret-token-abc" not in str(caught.value) and "127.0.0.1" not in str(caught.value)
    )


def test_a_notice_for_a_target_the_settings_no_longer_hold_is_permanent() -> None:
    with pytest.raises(UnknownTarget, match="target 0 \\(json\\) is not in NOTIFY_WEBHOOKS \\(0 target"):
        send(Settings.from_env({}), DEPLOYED)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("not json", "not JSON"),
        ('{"url": "https://x"}', "a JSON list"),
        ('[{"url": "ftp://hooks.example/secret-token-abc"}]', "target 0: url: expected an http:// or https:// URL"),
        ('[{"url": "https://hooks.example/secret-token-abc", "format": "xml"}]', "format: expected one of json"),
        ('[{"url": "https://hooks.example/secret-token-abc", "secret": 1}]', "unknown key"),
    ],
)
def test_bad_webhook_settings_are_named_and_never_echoed(raw: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says) as caught:
        Settings.from_env({"NOTIFY_WEBHOOKS": raw})
    assert "secret-token-abc" not in str(caught.value)


def test_the_webhooks_are_masked_when_the_settings_are_shown() -> None:
    settings = settings_for(("https://hooks.example/secret-token-abc", "teams"))
    assert settings.notify_webhooks[0].format is WebhookFormat.TEAMS
    assert settings.masked()["NOTIFY_WEBHOOKS"] == "***"
    assert "secret-token-abc" not in repr(settings.notify_webhooks) and "secret-token-abc" not in repr(settings)
