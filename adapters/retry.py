"""The retry policy inside adapters: a few quick tries of a Transient failure, then the Transient goes
to the caller (the step's broker retries come after, with their longer backoff)."""

from __future__ import annotations

import logging

from tenacity import Retrying, before_sleep_log, retry_if_exception_type, stop_after_attempt, wait_exponential

from core.errors import Transient

log = logging.getLogger(__name__)


def transient_retrying(*, attempts: int, backoff: float, max_backoff: float) -> Retrying:
    """Retry on Transient only, `attempts` tries in all, waiting `backoff` s doubling up to `max_backoff`."""
    return Retrying(
        retry=retry_if_exception_type(Transient),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=backoff, max=max_backoff),
        before_sleep=before_sleep_log(log, logging.INFO),  # the breaker says when a partner is down
        reraise=True,
    )
