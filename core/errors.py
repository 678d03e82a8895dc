"""The two kinds of failure every step and adapter raises."""
from __future__ import annotations


class Rejected(Exception):
    """Bad input: permanent. Quarantined with a reason a person can act on, never retried.

    `where` names the field, record or line; `reason` says what is wrong with it.
    """

    def __init__(self, reason: str, *, where: str | None = None) -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)


class Transient(Exception):
    """A failure that may pass (network, partner down): retried with backoff, then dead-lettered."""


class NotAllowed(Rejected):
    """Input a partner may not send at all (another kind's or the hub's own document type): refused
    like any Rejected, and answered 403 rather than 422 over HTTP."""
