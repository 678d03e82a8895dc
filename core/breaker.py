"""A circuit breaker and a bulkhead per partner, so that a partner that is down holds up only its
own deliveries.

A partner may have at most `max_in_flight` calls under way in a process (the bulkhead: a partner
that hangs holds that many worker threads, never all of them); a call beyond it waits up to
SLOT_WAIT seconds for one of them to end, then fails as `Transient`. After a call to a partner
fails for a reason a retry may mend, the partner's breaker opens: calls in the next pause fail at
once as `Transient` (the bus retries them later) instead of holding a worker thread through the
channel's own retries, which the other partners' deliveries need. When
the pause is over, one call tries the partner again (the others still fail fast until it answers);
each failure doubles the pause, up to MAX_PAUSE seconds. An answer, even Rejected or Misconfigured,
shows that the partner is up and closes the breaker. The state is per process.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from core import metrics
from core.errors import Misconfigured, Rejected, Transient
from core.redaction import redact

log = logging.getLogger(__name__)

FIRST_PAUSE = 1.0
MAX_PAUSE = 15.0
SLOT_WAIT = 2.0

T = TypeVar("T")


@dataclass
class _Down:  # an open breaker
    since: float
    failures: int
    retry_at: float


class Breakers:
    """The breakers of one process, by partner (a name such as `0114/omsorg-ab`)."""

    def __init__(
        self, *, max_in_flight: int, slot_wait: float = SLOT_WAIT, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_in_flight = max_in_flight
        self.slot_wait = slot_wait
        self.clock = clock
        self._down: dict[str, _Down] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def call(self, partner: str, send: Callable[[], T]) -> T:
        """`send()`, unless the partner's breaker is open, or its calls in flight stay at the limit
        for `slot_wait` seconds: then Transient."""
        self._check(partner)
        slots = self._slots_of(partner)
        if not slots.acquire(timeout=self.slot_wait):
            raise Transient(
                f"partner {partner} has had {self.max_in_flight} calls under way for "
                f"{self.slot_wait:.0f} s; this one waits its turn"
            )
        try:
            result = send()
        except (Rejected, Misconfigured):
            self._up(partner)
            raise
        except Exception as error:
            self._failed(partner, error)
            raise
        finally:
            slots.release()
        self._up(partner)
        return result

    def _check(self, partner: str) -> None:
        """Transient while the breaker is open; once the pause is over, this call tries the partner
        and the others wait for its answer."""
        with self._lock:
            down = self._down.get(partner)
            if down is None:
                return
            now = self.clock()
            if now < down.retry_at:
                raise Transient(
                    f"partner {partner} is down ({down.failures} failed calls in "
                    f"{now - down.since:.0f} s); the next try is in {down.retry_at - now:.1f} s"
                )
            down.retry_at = now + _pause(down.failures)

    def _slots_of(self, partner: str) -> threading.BoundedSemaphore:
        with self._lock:
            if partner not in self._slots:
                self._slots[partner] = threading.BoundedSemaphore(self.max_in_flight)
            return self._slots[partner]

    def is_open(self, partner: str) -> bool:
        with self._lock:
            return partner in self._down

    def _failed(self, partner: str, error: Exception) -> None:
        with self._lock:
            now = self.clock()
            down = self._down.setdefault(partner, _Down(since=now, failures=0, retry_at=now))
            down.failures += 1
            down.retry_at = now + _pause(down.failures)
        if down.failures == 1:
            metrics.partner_up.labels(partner).set(0)
            log.warning(
                "partner %s is down (%s: %s); its calls fail fast and are retried",
                partner,
                type(error).__name__,
                redact(str(error))[:300],
            )

    def _up(self, partner: str) -> None:
        with self._lock:
            down = self._down.pop(partner, None)
        metrics.partner_up.labels(partner).set(1)
        if down is not None:
            log.warning(
                "partner %s answers again after %.0f s and %d failed calls",
                partner,
                self.clock() - down.since,
                down.failures,
            )


def _pause(failures: int) -> float:
    factor: int = 2 ** min(failures - 1, 30)  # capped: 2 ** 1024 times a float overflows
    return min(MAX_PAUSE, FIRST_PAUSE * factor)
