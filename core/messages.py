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
from core.paging import Page, page
from core.steps import subscribers
from core.store import among, insert_ignore, insert_many, utcnow
from core.store.tables import messages, outbox, processed, tombstones
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
    stored is a duplicate when its tenant, type and payload are the same, else a conflict:
    a sender that changed a message must give it a new id.
    """
    if not items:
        return Accepted()
    now = utcnow()
    rows = [_row(envelope, raw, "in", now) for envelope, raw in items]
    inserted = {row.id for row in insert_ignore(conn, messages, rows, returning=[messages.c.id])}
    # a purged message's id is known by its tombstone: looked up after the insert, so that one
    # purged while this transaction waited on its row is not stored again as new
    purged = _tombstones(conn, [envelope.id for envelope, _ in items])
    if inserted & purged.keys():
        conn.execute(delete(messages).where(among(conn, messages.c.id, sorted(inserted & purged.keys()))))
    repeated = [envelope.id for envelope, _ in items if envelope.id not in inserted and envelope.id not in purged]
    earlier = load_many_envelopes(conn, repeated) if repeated else {}
    result = Accepted()
    dispatch: list[_OutboxRow] = []
    for position, (envelope, _raw) in enumerate(items):
        first = earlier.get(envelope.id)
        if envelope.id in purged:  # its bytes are gone; its document's digest is kept for this
            if purged[envelope.id] == document_digest(envelope):
                result.duplicates.append(envelope.id)
            else:
                result.conflicts.append(position)
        elif first is None:
            earlier[envelope.id] = envelope
            result.stored.append(envelope.id)
            dispatch.extend(_outbox_row(envelope, f"step:{name}", now) for name in subscribers(envelope.type))
        elif _same_document(first, envelope):
            result.duplicates.append(envelope.id)
        else:
            result.conflicts.append(position)
    if dispatch:
        conn.execute(insert(outbox), dispatch)
    return result


def _same_document(a: Envelope, b: Envelope) -> bool:
    return (a.tenant, a.type, a.payload) == (b.tenant, b.type, b.payload)


def document_digest(envelope: Envelope) -> bytes:
    """SHA-256 of what makes two envelopes of one id the same document (`_same_document`): kept
    when the message is purged, so that a late duplicate is still known as one."""
    canonical = json.dumps(
        [envelope.tenant, envelope.type, envelope.payload], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).digest()


def _tombstones(conn: Connection, envelope_ids: Sequence[str]) -> dict[str, bytes | None]:
    """The document digest of each purged message among `envelope_ids`."""
    query = select(tombstones.c.id, tombstones.c.document_sha256).where(among(conn, tombstones.c.id, envelope_ids))
    return {row.id: row.document_sha256 for row in conn.execute(query)}


def send_many(conn: Connection, outgoing: Sequence[tuple[Envelope, str]]) -> None:
    """Keep envelopes the hub produced and put each one's delivery to its destination in the outbox."""
    if not outgoing:
        return
    now = utcnow()
    texts = [envelope.model_dump_json() for envelope, _ in outgoing]
    insert_many(
        conn,
        messages,
        ("id", "tenant", "type", "source", "direction", "stored_at", "envelope", "raw_sha256"),
        [
            (e.id, e.tenant, e.type, e.source, OUT, now, text, hashlib.sha256(text.encode()).digest())
            for (e, _), text in zip(outgoing, texts, strict=True)
        ],
    )
    insert_many(
        conn,
        outbox,
        ("tenant", "destination", "message_id", "created_at"),
        [(envelope.tenant, destination, envelope.id, now) for envelope, destination in outgoing],
    )


def rerun(conn: Connection, envelope_id: str, step: str, tenant: str) -> None:
    """Run `step` on a stored envelope again, though it ran on it before: its idempotency key is
    forgotten and the envelope goes back to the step through the outbox (a dead letter's replay,
    an order's resend or reminder). The new delivery replaces the earlier ones, so that each
    processed key has one delivery, which the retention purge takes with it."""
    conn.execute(delete(processed).where(processed.c.step == step, processed.c.key == envelope_id))
    conn.execute(delete(outbox).where(outbox.c.destination == f"step:{step}", outbox.c.message_id == envelope_id))
    conn.execute(
        insert(outbox).values(tenant=tenant, destination=f"step:{step}", message_id=envelope_id, created_at=utcnow())
    )


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
    raw_sha256: bytes
    document_sha256: bytes


class _OutboxRow(TypedDict):
    tenant: str
    destination: str
    message_id: str
    created_at: dt.datetime
    sent_at: dt.datetime | None
    position: int | None


def _row(envelope: Envelope, raw: bytes | None, direction: str, now: dt.datetime) -> _MessageRow:
    text = envelope.model_dump_json()
    return {
        "id": envelope.id,
        "tenant": envelope.tenant,
        "type": envelope.type,
        "source": envelope.source,
        "direction": direction,
        "stored_at": now,
        "raw": raw,
        "envelope": text,
        "raw_sha256": hashlib.sha256(raw or text.encode()).digest(),
        "document_sha256": document_digest(envelope),
    }


def _outbox_row(envelope: Envelope, destination: str, now: dt.datetime) -> _OutboxRow:
    return {
        "tenant": envelope.tenant,
        "destination": destination,
        "message_id": envelope.id,
        "created_at": now,
        "sent_at": None,
        "position": None,
    }
