"""Capped exponential backoff for listeners whose storage can go away, with one log line per outage.

A listener calls ``failed(exc)`` after any error reaching storage (``ServiceRequestError``, ``HttpResponseError``,
``OSError`` … anything but cancellation) and sleeps the delay it returns; ``recovered()`` after the next success.
The first failure of an outage logs a warning, the recovery logs once how long it lasted: a storage outage of an
hour is two log lines, not one per poll.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from devhost.limits import clip


@dataclass
class Outage:
    what: str
    log: logging.Logger
    first_delay: float = 0.25
    max_delay: float = 5.0
    failures: int = 0
    since: float = field(default=0.0)

    def failed(self, exc: BaseException) -> float:
        """Record a failure; the seconds to wait before the next attempt (doubling up to ``max_delay``)."""
        if self.failures == 0:
            self.since = time.monotonic()
            self.log.warning(
                "%s: storage unreachable (%s: %s); retrying with backoff up to %.0f s",
                self.what,
                type(exc).__name__,
                clip(exc),
                self.max_delay,
            )
        self.failures += 1
        return float(min(self.max_delay, self.first_delay * 2 ** min(self.failures - 1, 30)))

    def recovered(self) -> None:
        if self.failures:
            self.log.warning(
                "%s: storage reachable again after %.1f s (%d failed attempts)",
                self.what,
                time.monotonic() - self.since,
                self.failures,
            )
            self.failures = 0

    @property
    def down(self) -> bool:
        return self.failures > 0
