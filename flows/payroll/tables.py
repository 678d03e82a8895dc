"""The payroll flow's tables: the versions of assignments and stay reports as they arrived, and
the runs with their pay lines."""

from pathlib import Path

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, String, Table, Text, text

from core.store import migrations_in
from core.store.tables import Ore, Serial, UtcDateTime, metadata

migrations_in(Path(__file__).parent / "migrations")

assignments = Table(
    "payroll_assignments",
    metadata,
    Column("tenant", String(4), primary_key=True),
    Column("assignment_id", String(40), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("employee_id", String(20), nullable=False, doc="the recipient's anstid in payroll"),
    Column("recipient", String(12), nullable=False, doc="the recipient's personnummer (never the child's)"),
    Column("recipient_name", String(120), nullable=False),
    Column("cost_centre", String(20), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=True),
    Column("arvode", Ore(), nullable=True),
    Column("arvode_per", String(5), nullable=True),
    Column("omkostnad", Ore(), nullable=True),
    Column("omkostnad_per", String(5), nullable=True),
    Column("message_id", String(64), nullable=False),
    Column("stored_at", UtcDateTime(), nullable=False),
    Index("payroll_assignments_stored", "tenant", "stored_at"),
)

stays = Table(
    "payroll_stays",
    metadata,
    Column("tenant", String(4), primary_key=True),
    Column("assignment_id", String(40), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("days", Text, nullable=False, doc="the days of the month with a stay, comma-separated"),
    Column("message_id", String(64), nullable=False),
    Column("stored_at", UtcDateTime(), nullable=False),
    Index("payroll_stays_stored", "tenant", "period", "stored_at"),
)

runs = Table(
    "payroll_runs",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("tenant", String(4), nullable=False),
    Column("period", String(7), nullable=False),
    Column("status", String(10), nullable=False, doc="draft, discarded (a newer draft replaced it), approved"),
    Column("created_at", UtcDateTime(), nullable=False, doc="the inputs stored before it are in the run"),
    Column("created_by", String(100), nullable=False),
    Column("approved_at", UtcDateTime(), nullable=True),
    Column("approved_by", String(100), nullable=True),
    Column("file_date", Date, nullable=True, doc="the date in the file's header: the day of approval"),
    Column(
        "approval",
        String(64),
        nullable=True,
        doc="the envelope that had the file delivered at approval (a resend sends one of its own)",
    ),
    Index("payroll_runs_period", "tenant", "period", "status"),
    Index(
        "payroll_runs_paid_once",
        "tenant",
        "period",
        unique=True,
        sqlite_where=text("status = 'approved'"),
        postgresql_where=text("status = 'approved'"),
    ),
)

lines = Table(
    "payroll_lines",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("run_id", ForeignKey("payroll_runs.id"), nullable=False),
    Column("tenant", String(4), nullable=False),
    Column("for_period", String(7), nullable=False, doc="the period paid: the run's, or an earlier one's (a delta)"),
    Column("assignment_id", String(40), nullable=False),
    Column("component", String(10), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("employee_id", String(20), nullable=False),
    Column("recipient", String(12), nullable=False),
    Column("cost_centre", String(20), nullable=False),
    Column("pay_code", String(6), nullable=False),
    Column("text", String(100), nullable=False),
    Column("date_from", Date, nullable=False),
    Column("date_to", Date, nullable=False),
    Column("days", Integer, nullable=False, doc="antal"),
    Column("unit_price", Ore(), nullable=False, doc="apris"),
    Column("amount", Ore(), nullable=False, doc="belopp"),
    Index("payroll_lines_run", "run_id", "recipient"),
    Index("payroll_lines_paid", "tenant", "for_period", "assignment_id"),
)
