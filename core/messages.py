"""The message store's envelopes: accepting inbound ones (store first) and keeping outbound ones."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from sqlalchemy import Connection, delete, insert, select

from core import audit
from core.errors import Rejected
from core.paging import Page, page
from core.steps import subscribers
from core.store import among, insert_ignore, insert_many, utcnow
from core.store.tables import ledger, messages, outbox, processed
from schemas.envelope import Envelope


@dataclass
class Accepted:
    """What `accept` did: ids stored now, ids already stored with the same document (and so not
    dispatched again), and the positions in its items of those whose id is stored with another
    document (refused as conflicts: the caller tells the sender, or keeps them as dead letters)."""

    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)


OUT = "out"
"""The direction of a message the hub produced (`send_many`): the only ones sent to an exchange,
and so the only ones with entries in the feed."""


CONFLICT = "already received with another document; a changed message needs a new id"


def accept(conn: Connection, items: Sequence[tuple[Envelope, bytes | None]]) -> Accepted:
    """Store inbound envelopes with their original bytes and dispatch each new one to its steps.

    Runs in the caller's transaction: once it commits, the envelopes are durable and their
    dispatch is in the outbox, so the sender may be told they were received. An id already
    in the ledger (stored, or purged since) is a duplicate when its tenant, type and payload are
    the same (`document_digest`), else a conflict: a sender that changed a message must give it
    a new id.
    """
    if not items:
        return Accepted()
    now = utcnow()
    digests = [document_digest(envelope) for envelope, _ in items]
    first: dict[str, int] = {}  # each id's first place in the items
    for position, (envelope, _raw) in enumerate(items):
        first.setdefault(envelope.id, position)
    rows = {key: _row(*items[position], "in", now) for key, position in sorted(first.items())}  # in one order
    entries = [dict(zip(LEDGER_COLUMNS, _entry(row, digests[first[key]]), strict=True)) for key, row in rows.items()]
    new = {entry.id for entry in insert_ignore(conn, ledger, entries, returning=[ledger.c.id])}
    insert_many(conn, messages, MESSAGE_COLUMNS, [_values(row) for key, row in rows.items() if key in new])
    earlier = _digests(conn, [key for key in rows if key not in new]) | {key: digests[first[key]] for key in new}
    result = Accepted()
    dispatch: list[_OutboxRow] = []
    for position, (envelope, _raw) in enumerate(items):
        if envelope.id in new and first[envelope.id] == position:
            result.stored.append(envelope.id)
            dispatch.extend(_outbox_row(envelope, f"step:{name}", now) for name in subscribers(envelope.type))
        elif earlier.get(envelope.id) == digests[position]:
            result.duplicates.append(envelope.id)
        else:
            result.conflicts.append(position)
    if dispatch:
        conn.execute(insert(outbox), dispatch)
    return result


def document_digest(envelope: Envelope) -> bytes:
    """SHA-256 of what makes two envelopes of one id the same document (tenant, type, payload):
    kept in the ledger as long as the message's tombstone, so that a duplicate, however late, is
    known as one by it."""
    canonical = json.dumps(
        [envelope.tenant, envelope.type, envelope.payload], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).digest()


def _digests(conn: Connection, envelope_ids: Sequence[str]) -> dict[str, bytes | None]:
    """The document digest the ledger keeps of each of `envelope_ids` (None for one the hub made)."""
    if not envelope_ids:
        return {}
    query = select(ledger.c.id, ledger.c.document_sha256).where(among(conn, ledger.c.id, envelope_ids))
    return {row.id: row.document_sha256 for row in conn.execute(query)}


def send_many(conn: Connection, outgoing: Sequence[tuple[Envelope, str]]) -> None:
    """Keep envelopes the hub produced and put each one's delivery to its destination in the outbox."""
    if not outgoing:
        return
    now = utcnow()
    rows = [_row(envelope, None, OUT, now) for envelope, _ in outgoing]
    insert_many(conn, ledger, LEDGER_COLUMNS, [_entry(row, None) for row in rows])
    insert_many(conn, messages, MESSAGE_COLUMNS, [_values(row) for row in rows])
    insert_many(
        conn,
        outbox,
        ("tenant", "destination", "message_id", "stored_at", "created_at"),
        [(envelope.tenant, destination, envelope.id, now, now) for envelope, destination in outgoing],
    )


def rerun(conn: Connection, envelope_id: str, step: str, tenant: str) -> None:
    """Run `step` on a stored envelope again, though it ran on it before: its idempotency key is
    forgotten and the envelope goes back to the step through the outbox (a dead letter's replay,
    an order's resend or reminder). The new delivery replaces the earlier ones, so that each
    processed key has one delivery, which the retention purge takes with it. Rejected for a message
    the retention purge has taken: its step would find nothing to run on."""
    # the delivery carries its message's time of storing (outbox.stored_at)
    stored_at = conn.scalar(select(messages.c.stored_at).where(messages.c.id == envelope_id))
    if stored_at is None:
        raise Rejected("its bytes are gone: purged under the retention policy", where=f"message {envelope_id}")
    now = utcnow()
    new = conn.execute(
        insert(outbox)
        .values(tenant=tenant, destination=f"step:{step}", message_id=envelope_id, stored_at=stored_at, created_at=now)
        .returning(outbox.c.id)
    ).scalar_one()
    # inserted before the old are deleted, so its id is higher even where SQLite reuses ids; and the
    # old before the key: a step settling a partner call holds its delivery until the key it claims
    # is committed, for the delete below to see (`core.consumer`); a call still under way runs again
    conn.execute(
        delete(outbox).where(
            outbox.c.destination == f"step:{step}", outbox.c.message_id == envelope_id, outbox.c.id != new
        )
    )
    conn.execute(delete(processed).where(processed.c.step == step, processed.c.key == envelope_id))


def read(conn: Connection, envelope_id: str, *, by: str) -> Envelope | None:
    """A stored envelope, for a person to see: personal data, so the read is audited, as `by`."""
    text = conn.scalar(select(messages.c.envelope).where(messages.c.id == envelope_id))
    if text is None:
        return None
    envelope = Envelope.model_validate_json(text)
    audit.record(
        conn,
        actor=by,
        action="message.read",
        tenant=envelope.tenant,
        subject=f"message:{envelope_id}",
        persons=audit.persons_in(text),
    )
    return envelope


def load(conn: Connection, envelope_id: str) -> Envelope | None:
    text = conn.scalar(select(messages.c.envelope).where(messages.c.id == envelope_id))
    return Envelope.model_validate_json(text) if text is not None else None


def as_received(conn: Connection, envelope_id: str) -> bytes | None:
    """A stored message's bytes as they came in, or the envelope's JSON for one the hub made; None
    for no such message. Personal data: the caller audits a person's reading of it."""
    row = conn.execute(select(messages.c.raw, messages.c.envelope).where(messages.c.id == envelope_id)).first()
    if row is None:  # none, or purged
        return None
    kept: bytes = row.raw or row.envelope.encode()
    return kept


def load_many_envelopes(conn: Connection, envelope_ids: Sequence[str]) -> dict[str, Envelope]:
    return {key: Envelope.model_validate_json(text) for key, text in load_many(conn, envelope_ids).items()}


def load_many(conn: Connection, envelope_ids: Sequence[str]) -> dict[str, str]:
    """Envelope JSON by id (none for a purged message)."""
    query = select(messages.c.id, messages.c.envelope).where(among(conn, messages.c.id, envelope_ids))
    return {row.id: row.envelope for row in conn.execute(query)}


def load_typed(conn: Connection, envelope_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(type, envelope JSON) by id, for relaying without parsing."""
    query = select(messages.c.id, messages.c.type, messages.c.envelope).where(among(conn, messages.c.id, envelope_ids))
    return {row.id: (row.type, row.envelope) for row in conn.execute(query)}


def search(
    conn: Connection, *, tenant: str | None = None, type: str | None = None, limit: int = 50, offset: int = 0
) -> Page:
    """Stored envelopes, newest first, without their payloads."""
    query = select(
        messages.c.id, messages.c.tenant, messages.c.type, messages.c.source, messages.c.direction, messages.c.stored_at
    ).order_by(messages.c.stored_at.desc(), messages.c.id)
    if tenant:
        query = query.where(messages.c.tenant == tenant)
    if type:
        query = query.where(messages.c.type == type)
    return page(conn, query, limit=limit, offset=offset)


class _MessageRow(TypedDict):
    id: str
    tenant: str
    type: str
    source: str
    direction: str
    stored_at: dt.datetime
    raw: bytes | None
    envelope: str


MESSAGE_COLUMNS = tuple(_MessageRow.__annotations__)
LEDGER_COLUMNS = ("id", "tenant", "type", "stored_at", "raw_sha256", "document_sha256")


class _OutboxRow(TypedDict):
    tenant: str
    destination: str
    message_id: str
    stored_at: dt.datetime
    created_at: dt.datetime
    sent_at: dt.datetime | None
    position: int | None


def _row(envelope: Envelope, raw: bytes | None, direction: str, now: dt.datetime) -> _MessageRow:
    return {
        "id": envelope.id,
        "tenant": envelope.tenant,
        "type": envelope.type,
        "source": envelope.source,
        "direction": direction,
        "stored_at": now,
        "raw": raw,
        "envelope": envelope.model_dump_json(),
    }


def _values(row: _MessageRow) -> tuple[object, ...]:
    return tuple(row[name] for name in MESSAGE_COLUMNS)  # type: ignore[literal-required]


def _entry(row: _MessageRow, document_sha256: bytes | None) -> tuple[object, ...]:
    """A message's row in the ledger (`LEDGER_COLUMNS`): the SHA-256 of its bytes as received, or
    of its envelope's JSON for one the hub made, and of its document for an inbound one."""
    raw_sha256 = hashlib.sha256(row["raw"] or row["envelope"].encode()).digest()
    return (row["id"], row["tenant"], row["type"], row["stored_at"], raw_sha256, document_sha256)


def _outbox_row(envelope: Envelope, destination: str, now: dt.datetime) -> _OutboxRow:
    return {
        "tenant": envelope.tenant,
        "destination": destination,
        "message_id": envelope.id,
        "stored_at": now,
        "created_at": now,
        "sent_at": None,
        "position": None,
    }
