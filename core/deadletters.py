"""Dead letters: what failed for good, with its reason, kept until a person replays it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, insert, select, update

from core import audit, messages
from core.errors import Rejected
from core.paging import Page, page
from core.redaction import redact
from core.steps import steps
from core.store import utcnow
from core.store.tables import dead_letters
from schemas.bounded import UNPRINTABLE

MAX_REASON = 200_000
"""Characters of a reason: enough for a rejected batch of 1 000 visits, each with its reasons."""

INBOUND = "inbound"
"""The step name of input that never became a stored message (it is kept as raw bytes)."""


def record(
    conn: Connection,
    *,
    step: str,
    kind: str,
    reason: str,
    tenant: str | None = None,
    message_id: str | None = None,
    raw: bytes | None = None,
) -> int:
    """Keep a failure. `kind` is `rejected` (bad input), `exhausted` (retries used up) or `misconfigured`."""
    letter_id: int = conn.execute(
        insert(dead_letters)
        .values(
            tenant=tenant,
            step=step,
            message_id=message_id,
            kind=kind,
            reason=_storable(redact(reason)),
            raw=raw,
            failed_at=utcnow(),
            status="open",
        )
        .returning(dead_letters.c.id)
    ).scalar_one()
    return letter_id


def _storable(reason: str) -> str:
    """The reason as every store can keep it: control characters and lone surrogates (which a
    reason may quote from bad input) replaced, and at most `MAX_REASON` characters."""
    return UNPRINTABLE.sub("?", reason[:MAX_REASON])


def listing(conn: Connection, *, status: str | None = "open", limit: int = 100, offset: int = 0) -> Page:
    """Dead letters without their input, newest first."""
    columns = [c for c in dead_letters.c if c.name != "raw"]
    query = select(*columns).order_by(dead_letters.c.id.desc())
    if status:
        query = query.where(dead_letters.c.status == status)
    return page(conn, query, limit=limit, offset=offset)


def read(conn: Connection, letter_id: int, *, by: str) -> dict[str, Any] | None:
    """A dead letter whole, with the input it kept, for a person to see: the read is audited, as `by`."""
    letter = show(conn, letter_id)
    if letter is not None:
        subject = f"message:{letter['message_id']}" if letter["message_id"] else f"dead_letter:{letter_id}"
        kept = f"{letter['reason']}\n{input_of(conn, letter).decode('utf-8', errors='replace')}"
        audit.record(
            conn,
            actor=by,
            action="dead_letter.show",
            tenant=letter["tenant"],
            subject=subject,
            persons=audit.persons_in(kept),
        )
    return letter


def input_of(conn: Connection, letter: dict[str, Any]) -> bytes:
    """What the failed step or intake was given: the bytes kept with the dead letter, or else the
    stored message's. Personal data: the caller audits a person's reading of it."""
    raw = letter["raw"]
    if raw is None and letter["message_id"]:
        raw = messages.as_received(conn, letter["message_id"])
    return raw or b""


def show(conn: Connection, letter_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(dead_letters).where(dead_letters.c.id == letter_id)).first()
    return dict(row._mapping) if row else None


def replay(
    conn: Connection, letter_id: int, *, by: str, accept_raw: Callable[[Connection, bytes, str | None], str]
) -> str:
    """Send a dead letter through its step again; returns the envelope id that goes again.

    A stored message goes back to its step through the outbox; raw input is decoded again by
    `accept_raw(conn, raw, tenant)`, which raises Rejected when it is still bad.
    """
    letter = show(conn, letter_id)
    if letter is None:
        raise LookupError(f"dead letter {letter_id} does not exist")
    if letter["purged_at"] is not None:
        raise Rejected(
            f"its bytes are gone: purged on {letter['purged_at']:%Y-%m-%d} under the retention policy, "
            f"{letter['status']} before that; the partner must send it again",
            where=f"dead letter {letter_id}",
        )
    if letter["status"] != "open":
        raise Rejected(f"already {letter['status']}", where=f"dead letter {letter_id}")
    if letter["step"] != INBOUND and letter["step"] not in steps():
        raise Rejected(
            f"{letter['step']} is not a step that can run it again; the partner must send it again",
            where=f"dead letter {letter_id}",
        )
    if letter["message_id"] and letter["step"] != INBOUND:
        messages.rerun(conn, letter["message_id"], letter["step"], letter["tenant"])
        envelope_id: str = letter["message_id"]
    else:
        envelope_id = accept_raw(conn, letter["raw"], letter["tenant"])
    conn.execute(
        update(dead_letters)
        .where(dead_letters.c.id == letter_id)
        .values(status="replayed", replayed_at=utcnow(), replayed_by=by)
    )
    audit.record(
        conn,
        actor=by,
        action="dead_letter.replay",
        subject=f"message:{envelope_id}",
        tenant=letter["tenant"],
        detail=f"dead letter {letter_id}",
    )
    return envelope_id
