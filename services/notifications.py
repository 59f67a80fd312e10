"""Release notifications: a pending approval and every release outcome, as each webhook of the settings takes it.

Three bodies: ``json`` a CloudEvents 1.0 event in structured mode (``application/cloudevents+json``; the ``id`` is
the same on every attempt of one notification, so a receiver can drop a repeat), ``teams`` an Office 365 connector
MessageCard (what Teams incoming webhooks and workflows take), ``slack`` an incoming-webhook message (``text`` and
``blocks``). The notice itself carries no URL of a webhook: a target is its position in ``NOTIFY_WEBHOOKS``.
"""

from __future__ import annotations

from typing import Any

from backends.settings import Settings, Webhook
from backends.webhooks import post
from messages.enums import NoticeKind, Outcome, WebhookFormat
from messages.steps import Notice

#: the CloudEvents ``type`` of each notice (reverse-DNS, as the spec recommends)
EVENT_TYPES = {
    NoticeKind.APPROVAL_PENDING: "io.github.mlops-functions.release.approval_pending",
    NoticeKind.OUTCOME: "io.github.mlops-functions.release.finished",
}
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
_GOOD = {Outcome.DEPLOYED.value}
_COLOURS = {"good": "2EB886", "bad": "D64541", "waiting": "E8A317"}


class UnknownTarget(ValueError):
    """A notice for a webhook the settings no longer hold (a permanent error: no retry helps)."""

    retryable = False


def headline(notice: Notice) -> str:
    """One line saying what happened, for every format."""
    subject = f"{notice.model_name} version {notice.version}"
    if notice.kind is NoticeKind.APPROVAL_PENDING:
        who = ", ".join(notice.approvers)
        return f"Release of {subject} waits for approval by {who} until {notice.until}"
    return f"Release of {subject}: {notice.outcome}" + (f" ({notice.reason})" if notice.reason else "")


def data(notice: Notice) -> dict[str, Any]:
    """The facts of a notice (the CloudEvent's ``data``)."""
    body: dict[str, Any] = {
        "kind": notice.kind.value,
        "run_id": notice.run_id,
        "model": notice.model_name,
        "version": notice.version,
        "link": notice.link,
    }
    if notice.kind is NoticeKind.APPROVAL_PENDING:
        body.update(
            approvers=list(notice.approvers),
            since=notice.since,
            until=notice.until,
            approve=notice.approve_link,
            reject=notice.reject_link,
        )
    else:
        body.update(outcome=notice.outcome, reason=notice.reason)
    return body


def cloudevent(notice: Notice) -> dict[str, Any]:
    subject = f"{notice.model_name}/{notice.version}"
    return {
        "specversion": "1.0",
        "type": EVENT_TYPES[notice.kind],
        "source": f"/runs/{notice.run_id}",
        "id": f"{notice.run_id}:{notice.kind.value}:{notice.outcome or notice.since}",
        "time": notice.time,
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data(notice),
    }


def _tone(notice: Notice) -> str:
    if notice.kind is NoticeKind.APPROVAL_PENDING:
        return "waiting"
    return "good" if notice.outcome in _GOOD else "bad"


def _facts(notice: Notice) -> list[tuple[str, str]]:
    facts = [("Model", notice.model_name), ("Version", notice.version), ("Run", notice.run_id)]
    if notice.kind is NoticeKind.APPROVAL_PENDING:
        facts += [("Approvers", ", ".join(notice.approvers)), ("Since", notice.since), ("Until", notice.until)]
    else:
        facts += [("Outcome", notice.outcome)] + ([("Reason", notice.reason)] if notice.reason else [])
    return facts


def teams_card(notice: Notice) -> dict[str, Any]:
    """An Office 365 connector MessageCard."""
    card: dict[str, Any] = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": headline(notice)[:200],
        "themeColor": _COLOURS[_tone(notice)],
        "title": headline(notice),
        "sections": [{"facts": [{"name": name, "value": value} for name, value in _facts(notice)]}],
    }
    if notice.link:
        card["potentialAction"] = [
            {"@type": "OpenUri", "name": "Open the run", "targets": [{"os": "default", "uri": notice.link}]}
        ]
    return card


def slack_message(notice: Notice) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (the notification's fallback) and ``blocks``."""
    facts = "\n".join(f"*{name}:* {value}" for name, value in _facts(notice))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline(notice)}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": facts}},
    ]
    if notice.link:
        how = " (POST approve or reject with the key)" if notice.kind is NoticeKind.APPROVAL_PENDING else ""
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{notice.link}|Open the run>{how}"}]}
        )
    return {"text": headline(notice), "blocks": blocks}


def body_of(notice: Notice) -> tuple[dict[str, Any], str]:
    """(the body, its content type) for the notice's webhook format."""
    if notice.format is WebhookFormat.TEAMS:
        return teams_card(notice), "application/json"
    if notice.format is WebhookFormat.SLACK:
        return slack_message(notice), "application/json"
    return cloudevent(notice), CLOUDEVENTS_CONTENT_TYPE


def target_of(settings: Settings, notice: Notice) -> Webhook:
    webhooks = settings.notify_webhooks
    if not 0 <= notice.target < len(webhooks) or webhooks[notice.target].format is not notice.format:
        raise UnknownTarget(
            f"notification target {notice.target} ({notice.format.value}) is not in NOTIFY_WEBHOOKS "
            f"({len(webhooks)} target(s)): the settings changed since the release started"
        )
    return webhooks[notice.target]


def send(settings: Settings, notice: Notice) -> dict[str, Any]:
    """Post the notice to its webhook; ``WebhookFailed`` (retryable or not) when the target does not take it."""
    webhook = target_of(settings, notice)
    body, content_type = body_of(notice)
    what = f"notification {notice.kind.value} to target {notice.target} ({notice.format.value})"
    status = post(webhook, body, content_type, what)
    return {"target": notice.target, "format": notice.format.value, "status": status}
