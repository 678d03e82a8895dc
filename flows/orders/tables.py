"""The order flow's state: one row per order, its latest version and where it stands."""

from pathlib import Path

from sqlalchemy import Column, Index, Integer, String, Table, Text

from core.store import migrations_in
from core.store.tables import UtcDateTime, metadata

migrations_in(Path(__file__).parent / "migrations")

orders = Table(
    "orders",
    metadata,
    Column("tenant", String(4), primary_key=True),
    Column("order_id", String(40), primary_key=True),
    Column("provider", String(63), nullable=False, doc="the partner id"),
    Column("case_ref", String(40), nullable=False),
    Column("kind", String(10), nullable=False, doc="kind of the latest version: new, amend, cancel"),
    Column("version", Integer, nullable=False, doc="the latest version issued"),
    Column("message_id", String(64), nullable=False, doc="the envelope of the latest version"),
    Column("state_version", Integer, nullable=True, doc="the latest version that carries services"),
    Column(
        "state_message_id",
        String(64),
        nullable=True,
        doc="its envelope: what was granted up to a cancellation that carries no services",
    ),
    Column("delivered_version", Integer, nullable=False, default=0),
    Column(
        "sending_version",
        Integer,
        nullable=True,
        doc="the version being sent now: other versions wait, so that an old one never overtakes a newer one",
    ),
    Column("sending_since", UtcDateTime(), nullable=True),
    Column(
        "state",
        String(20),
        nullable=False,
        doc="pending, delivered, accepted, rejected (by the provider), refused (the channel said the order "
        "is wrong), overdue, withdrawn (cancelled before the provider ever received it)",
    ),
    Column("reason", Text, nullable=True),
    Column("contact_person", String(120), nullable=True),
    Column("delivered_at", UtcDateTime(), nullable=True),
    Column("ack_due_at", UtcDateTime(), nullable=True),
    Column("acknowledged_at", UtcDateTime(), nullable=True),
    Column("reminded_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("orders_due", "state", "ack_due_at"),
)
