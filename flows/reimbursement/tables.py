"""The reimbursement runs: each run's lines, its findings for review, adjustments, and the time
ordered in its period (for the statistics)."""

from pathlib import Path

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

from core.store import migrations_in
from core.store.tables import Ore, Serial, UtcDateTime, metadata

migrations_in(Path(__file__).parent / "migrations")

runs = Table(
    "reimbursement_runs",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("tenant", String(4), nullable=False),
    Column("period", String(7), nullable=False),
    Column("kind", String(10), nullable=False, doc="regular, or correction of an approved run"),
    Column("status", String(10), nullable=False, doc="draft, approved"),
    Column("lock_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("approved_at", UtcDateTime(), nullable=True),
    Column("approved_by", String(100), nullable=True),
    Column("visits", Integer, nullable=False),
    Column("paid", Integer, nullable=False),
    Index("reimbursement_runs_period", "tenant", "period", "kind", "status"),
)

lines = Table(
    "reimbursement_lines",
    metadata,
    Column("run_id", ForeignKey("reimbursement_runs.id"), primary_key=True),
    Column("provider_org", String(10), primary_key=True),
    Column("customer", String(12), primary_key=True),
    Column("category", String(10), primary_key=True),
    Column("band", String(10), primary_key=True),
    Column("rate", Ore(), primary_key=True, doc="SEK per hour"),
    Column("minutes", Integer, nullable=False, doc="computed, before adjustments"),
    Column("adjusted_minutes", Integer, nullable=False, doc="the sum of the line's adjustments"),
    Column("amount", Ore(), nullable=False, doc="(minutes + adjusted_minutes) x rate / 60, to öre"),
)

findings = Table(
    "reimbursement_findings",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("run_id", ForeignKey("reimbursement_runs.id"), nullable=False),
    Column("provider_org", String(10), nullable=False),
    Column("customer", String(12), nullable=False),
    Column("visit_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("code", String(40), nullable=False, doc="a reason the visit is not paid, or a warning"),
    Column("paid", Integer, nullable=False, doc="1 for a warning on a paid visit, 0 for an unpaid visit"),
    Column("paid_minutes", Integer, nullable=False),
    Index("reimbursement_findings_run", "run_id", "provider_org", "code"),
)

ordered = Table(
    "reimbursement_ordered",
    metadata,
    Column("run_id", ForeignKey("reimbursement_runs.id"), primary_key=True),
    Column("provider_org", String(10), primary_key=True),
    Column("category", String(10), primary_key=True),
    Column("minutes", Integer, nullable=False, doc="ordered in the period (rules.ordered_minutes)"),
)

adjustments = Table(
    "reimbursement_adjustments",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("run_id", ForeignKey("reimbursement_runs.id"), nullable=False),
    Column("provider_org", String(10), nullable=False),
    Column("customer", String(12), nullable=False),
    Column("category", String(10), nullable=False),
    Column("band", String(10), nullable=False),
    Column("rate", Ore(), nullable=False, doc="SEK per hour"),
    Column("minutes", Integer, nullable=False, doc="added (or, negative, removed)"),
    Column("by", String(100), nullable=False),
    Column("why", Text, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
)

locks = Table(
    "reimbursement_locks",
    metadata,
    Column("tenant", String(4), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("lock_at", UtcDateTime(), nullable=False, doc="set by the review group; overrides the default"),
    Column("set_by", String(100), nullable=False),
    Column("set_at", UtcDateTime(), nullable=False),
)
