"""How a background loop (the outbox relay, the scheduler, the AMQP intake) lives through an outage
of what it needs: it never ends, it says once that it stopped and once that it works again (not a
traceback per attempt), and it tries again soon (backoff doubling up to MAX_BACKOFF seconds)."""

from __future__ import annotations

import logging
import traceback

from core import metrics
from core.redaction import redact

MAX_BACKOFF = 5.0
FIRST_BACKOFF = 0.25


class Outage:
    """One loop's outage state; `failed` after an attempt that raised, `ok` after one that worked."""

    def __init__(self, loop: str, log: logging.Logger) -> None:
        self.loop = loop
        self.log = log
        self.failures = 0

    def failed(self, error: BaseException) -> float:
        """Count the failure (logging the first of an outage, redacted); the seconds to wait."""
        self.failures += 1
        if self.failures == 1:
            metrics.outages.labels(self.loop).inc()
            metrics.loop_up.labels(self.loop).set(0)
            self.log.error(
                "%s stopped: %s: %s; trying again until it works\n%s",
                self.loop,
                type(error).__name__,
                redact(str(error))[:500],
                redact(traceback.format_exc()),
            )
        # capped: 2 ** 1024 times a float overflows, after about 85 minutes of outage
        factor: int = 2 ** min(self.failures - 1, 30)
        return min(MAX_BACKOFF, FIRST_BACKOFF * factor)

    def ok(self) -> None:
        if self.failures:
            self.log.warning("%s works again after %d failed attempts", self.loop, self.failures)
            self.failures = 0
        metrics.loop_up.labels(self.loop).set(1)
