"""Posting a notification to a webhook (the same adapter on Azure and offline: an HTTPS POST of JSON).

A webhook's URL is a secret (a Teams or Slack incoming-webhook URL is its own key): no message, log line or error
raised here carries it; a target is named by its position in ``NOTIFY_WEBHOOKS`` and its format.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import requests

from backends.settings import Webhook

log = logging.getLogger(__name__)

#: seconds one attempt may take (the orchestration retries a failed one with its own back-off)
POST_TIMEOUT_S = 10.0
#: answers a later attempt can get past (the target busy, throttling, or down for a while)
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class WebhookFailed(RuntimeError):
    """A notification the target did not take; ``retryable`` when a later attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def post(webhook: Webhook, body: dict[str, Any], content_type: str, what: str) -> int:
    """POST ``body`` as JSON; the status code of a 2xx answer, else ``WebhookFailed`` naming ``what`` only."""
    try:
        response = requests.post(
            webhook.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": content_type},
            timeout=POST_TIMEOUT_S,
            allow_redirects=False,
        )
    except requests.RequestException as exc:  # the exception's text may hold the URL: only its type is kept
        raise WebhookFailed(f"{what}: {type(exc).__name__} (no answer)", retryable=True) from None
    if 200 <= response.status_code < 300:
        return int(response.status_code)
    retry = response.status_code in RETRYABLE_STATUSES
    raise WebhookFailed(f"{what}: HTTP {response.status_code}", retryable=retry)
