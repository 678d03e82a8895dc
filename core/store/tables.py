"""The tables of the message store. Alembic migrations in `core/store/migrations` create them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    literal_column,
    text,
)
from sqlalchemy.engine import Dialect

metadata = MetaData()


class UtcDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime stored in UTC; read back aware on SQLite too (which keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: times are stored in UTC and must say so")
        return value.astimezone(dt.timezone.utc) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value


class Ore(TypeDecorator[Decimal]):
    """Money in SEK, kept as a whole number of öre: exact in the store itself on every database,
    and so in every sum done in SQL (SQLite keeps NUMERIC as a binary float). Python sees a Decimal
    with two decimals; a value with a fraction of an öre is refused, never rounded."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | str | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        ore = Decimal(value) * 100
        if ore != ore.to_integral_value():
            raise ValueError(f"{value} SEK is not a whole number of öre")
        return int(ore)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value).scaleb(-2)


# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
Serial = BigInteger().with_variant(Integer(), "sqlite")

messages = Table(
    "messages",
    metadata,
    Column("id", String(64), primary_key=True, doc="the envelope id"),
    Column("tenant", String(4), nullable=False),
    Column("type", String(100), nullable=False),
    Column("source", String(100), nullable=False),
    Column("direction", String(3), nullable=False, doc="in: received; out: produced by the hub"),
    Column("stored_at", UtcDateTime(), nullable=False),
    Column("raw", LargeBinary, nullable=True, doc="the bytes as received"),
    Column("envelope", Text, nullable=False, doc="the canonical envelope as JSON"),
    Index("messages_tenant_type", "tenant", "type", "stored_at"),
    Index("messages_stored_at", "stored_at"),
    Index("messages_tenant_stored", "tenant", "stored_at", "id"),
)

ledger = Table(
    "message_ledger",
    metadata,
    Column("id", String(64), primary_key=True, doc="the envelope id: unique among every message the hub has kept"),
    Column("tenant", String(4), nullable=False),
    Column("type", String(100), nullable=False),
    Column("stored_at", UtcDateTime(), nullable=False),
    Column("raw_sha256", LargeBinary, nullable=False, doc="SHA-256 of the bytes as received (32 bytes)"),
    Column("document_sha256", LargeBinary, nullable=True, doc="core.messages.document_digest, of an inbound one"),
    Column(
        "purged_at",
        UtcDateTime(),
        nullable=True,
        doc="written only for a message purged late (core.retention.LATE): the others were purged by "
        "then, and writing it for each was the purge's largest cost",
    ),
    Index("message_ledger_stored", "tenant", "stored_at"),
)
"""A narrow row for every message the hub has stored, written with it (core.messages), which makes
an envelope id unique and tells a duplicate from a conflict by its digest. Once its message is
purged (core.retention) it is the message's tombstone, kept as long as the audit log that may name
it, so that a late duplicate is still recognised as one and audits still resolve."""

SENT_TO_STEP = text("sent_at IS NOT NULL AND destination LIKE 'step:%'")
outbox = Table(
    "outbox",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("tenant", String(4), nullable=False),
    Column("destination", String(200), nullable=False, doc="step:NAME or exchange:NAME"),
    Column("message_id", String(64), nullable=False),
    Column(
        "stored_at",
        UtcDateTime(),
        nullable=False,
        doc="when its message was stored (the message's own stored_at): the retention purge finds "
        "the deliveries of a batch of messages by it, a range of the index, not a probe per message",
    ),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("position", BigInteger, nullable=True, doc="feed position, set when sent to an exchange"),
    Index("outbox_unsent", "id", postgresql_where=text("sent_at IS NULL"), sqlite_where=text("sent_at IS NULL")),
    Index("outbox_feed", "tenant", "position"),
    Index("outbox_message", "message_id"),
    Index("outbox_stored", "tenant", "stored_at"),
    Index("outbox_sent", "tenant", "sent_at", "id", postgresql_where=SENT_TO_STEP, sqlite_where=SENT_TO_STEP),
)
STEP_DELIVERY = outbox.c.destination.like(literal_column("'step:%'"))
"""A delivery to a step, with its pattern in the statement's text: that is how the planners of both
stores see that a query's rows are in the partial index `outbox_sent`."""

processed = Table(
    "processed",
    metadata,
    Column("step", String(100), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("outcome", String(10), nullable=False, doc="done, or dead when dead-lettered"),
    Column("processed_at", UtcDateTime(), nullable=False),
    Index("processed_key", "key"),
    Index("processed_by_time", "processed_at"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("tenant", String(4), nullable=True),
    Column("step", String(100), nullable=False),
    Column("message_id", String(64), nullable=True),
    Column(
        "kind",
        String(20),
        nullable=False,
        doc="rejected (bad input), exhausted (retries used up) or misconfigured (the hub's own fault)",
    ),
    Column("reason", Text, nullable=False),
    Column("raw", LargeBinary, nullable=True, doc="the input, when it never became a stored message"),
    Column("failed_at", UtcDateTime(), nullable=False),
    Column("status", String(10), nullable=False, doc="open, replayed"),
    Column("replayed_at", UtcDateTime(), nullable=True),
    Column("replayed_by", String(100), nullable=True),
    Column("purged_at", UtcDateTime(), nullable=True, doc="when core.retention took its bytes (once resolved)"),
    Index("dead_letters_open", "status", "id"),
    Index("dead_letters_message", "message_id"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("tenant", String(4), nullable=True),
    Column("actor", String(100), nullable=False, doc="who: a user, partner or step"),
    Column("action", String(100), nullable=False, doc="what: read, transfer, replay, ..."),
    Column("subject", String(200), nullable=True, doc="whose data, by reference, never a personnummer"),
    Column("detail", Text, nullable=True),
)

audit_persons = Table(
    "audit_persons",
    metadata,
    Column("audit_id", Serial, ForeignKey("audit.id", ondelete="CASCADE"), primary_key=True, autoincrement=False),
    Column("person", String(64), primary_key=True, doc="core.audit.person_key of a personnummer, never the number"),
    Index("audit_persons_person", "person", "audit_id"),
)

holds = Table(
    "legal_holds",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("tenant", String(4), nullable=False),
    Column("kind", String(10), nullable=False, doc="person or case"),
    Column("subject", String(64), nullable=False, doc="a person's core.audit.person_key, or a case reference"),
    Column("reason", Text, nullable=False),
    Column("held_at", UtcDateTime(), nullable=False),
    Column("held_by", String(100), nullable=False),
    Column("released_at", UtcDateTime(), nullable=True),
    Column("released_by", String(100), nullable=True),
)

purges = Table(
    "retention_purges",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("tenant", String(4), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True, doc="None while running, or if its process died"),
    Column("by", String(100), nullable=False),
    Column("counts", Text, nullable=True, doc="JSON: records purged per kind, and those held"),
    Column("message_days", Integer, nullable=True, doc="the policy's messages' time it purged by"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(20), nullable=False, doc="operations, review, economy or read"),
    Column("password_hash", Text, nullable=False, doc="argon2id"),
    Column("failed_logins", Integer, nullable=False, doc="in a row, since the last login"),
    Column("locked_until", UtcDateTime(), nullable=True),
    Column("disabled_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
)

schedules = Table(
    "schedules",
    metadata,
    Column("job", String(100), primary_key=True),
    Column("tenant", String(4), primary_key=True),
    Column("last_slot", UtcDateTime(), nullable=True, doc="the latest slot taken: fired, or passed while paused"),
    Column("paused_at", UtcDateTime(), nullable=True, doc="None: running on its schedule"),
    Column("paused_by", String(100), nullable=True),
)

firings = Table(
    "schedule_firings",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("job", String(100), nullable=False),
    Column("tenant", String(4), nullable=False),
    Column("slot", UtcDateTime(), nullable=True, doc="the slot fired; None when run by hand"),
    Column("fired_by", String(100), nullable=False, doc="scheduler, or the user who ran it now"),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True, doc="None while running, or if its process died"),
    Column("outcome", String(10), nullable=True, doc="ok or failed"),
    Column("count", Integer, nullable=True, doc="what the job reported doing (files taken, orders flagged)"),
    Column("error", Text, nullable=True),
    Index("schedule_firings_job", "job", "tenant", "id"),
)
