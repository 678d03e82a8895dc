"""Visits as received: every version of every visit, with the time the hub stored it."""

from pathlib import Path

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, func

from core.store import migrations_in
from core.store.tables import UtcDateTime, metadata

migrations_in(Path(__file__).parent / "migrations")

visits = Table(
    "visits",
    metadata,
    Column("tenant", String(4), primary_key=True),
    Column("vendor", String(63), primary_key=True),
    Column("visit_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("received_at", UtcDateTime(), nullable=False, doc="when the hub stored this version"),
    Column("message_id", String(64), nullable=False, doc="the stored message it came in"),
    Column("provider_org", String(10), nullable=False),
    Column("customer", String(12), nullable=False, doc="personnummer, 12 digits"),
    Column("employee_id", String(40), nullable=False),
    Column("planned_start", UtcDateTime(), nullable=True),
    Column("planned_end", UtcDateTime(), nullable=True),
    Column("actual_start", UtcDateTime(), nullable=True),
    Column("actual_end", UtcDateTime(), nullable=True),
    Column("confirmation", String(6), nullable=False),
    Column("tag_id", String(64), nullable=True),
    Column("manual_reason", Text, nullable=True),
    Column("services", Text, nullable=False, doc="service codes, comma-separated (up to 20 of 40 characters)"),
    Column("double_staffing", Boolean, nullable=False),
    Column("declined", Boolean, nullable=False),
    Column("approved", Boolean, nullable=False),
    Column("edit_reason", Text, nullable=True),
    Index("visits_run_order", "tenant", "provider_org", "customer", "actual_start"),
)

VISIT_START = func.coalesce(visits.c.actual_start, visits.c.planned_start)
"""When a visit version starts: actually, else as planned."""

Index("visits_start", visits.c.tenant, VISIT_START)
"""The versions of a tenant by when they start: the oldest first, for the purge of what no
correction can reach (flows.reimbursement.retention)."""
