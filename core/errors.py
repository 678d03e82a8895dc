"""The three kinds of failure every step and adapter raises: the input's, the moment's, the hub's own."""

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


class Misconfigured(Exception):
    """The hub's own fault: a secret not set, a key the partner refuses, a host key other than the
    pinned one. Never reported to a partner as its rejection; kept as a dead letter for IT
    operations and run again (`dead-letters replay`) once the configuration is fixed.

    `where` names the setting; `reason` says what is wrong with it.
    """

    def __init__(self, reason: str, *, where: str | None = None) -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)
