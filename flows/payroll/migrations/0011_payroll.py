"""payroll: assignment and stay versions, runs and their pay lines

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: Union[str, Sequence[str], None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "payroll_assignments",
        sa.Column("tenant", sa.String(4), primary_key=True),
        sa.Column("assignment_id", sa.String(40), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("employee_id", sa.String(20), nullable=False),
        sa.Column("recipient", sa.String(12), nullable=False),
        sa.Column("recipient_name", sa.String(120), nullable=False),
        sa.Column("cost_centre", sa.String(20), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("arvode", sa.BigInteger(), nullable=True),
        sa.Column("arvode_per", sa.String(5), nullable=True),
        sa.Column("omkostnad", sa.BigInteger(), nullable=True),
        sa.Column("omkostnad_per", sa.String(5), nullable=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("payroll_assignments_stored", "payroll_assignments", ["tenant", "stored_at"])
    op.create_table(
        "payroll_stays",
        sa.Column("tenant", sa.String(4), primary_key=True),
        sa.Column("assignment_id", sa.String(40), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("days", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("payroll_stays_stored", "payroll_stays", ["tenant", "period", "stored_at"])
    op.create_table(
        "payroll_runs",
        sa.Column("id", Serial, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(4), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.String(100), nullable=True),
        sa.Column("file_date", sa.Date(), nullable=True),
        sa.Column("approval", sa.String(64), nullable=True),
    )
    op.create_index("payroll_runs_period", "payroll_runs", ["tenant", "period", "status"])
    op.create_index(
        "payroll_runs_paid_once",
        "payroll_runs",
        ["tenant", "period"],
        unique=True,
        sqlite_where=sa.text("status = 'approved'"),
        postgresql_where=sa.text("status = 'approved'"),
    )
    op.create_table(
        "payroll_lines",
        sa.Column("id", Serial, primary_key=True, autoincrement=True),
        sa.Column("run_id", Serial, sa.ForeignKey("payroll_runs.id"), nullable=False),
        sa.Column("tenant", sa.String(4), nullable=False),
        sa.Column("for_period", sa.String(7), nullable=False),
        sa.Column("assignment_id", sa.String(40), nullable=False),
        sa.Column("component", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("employee_id", sa.String(20), nullable=False),
        sa.Column("recipient", sa.String(12), nullable=False),
        sa.Column("cost_centre", sa.String(20), nullable=False),
        sa.Column("pay_code", sa.String(6), nullable=False),
        sa.Column("text", sa.String(100), nullable=False),
        sa.Column("date_from", sa.Date(), nullable=False),
        sa.Column("date_to", sa.Date(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
    )
    op.create_index("payroll_lines_run", "payroll_lines", ["run_id", "recipient"])
    op.create_index("payroll_lines_paid", "payroll_lines", ["tenant", "for_period", "assignment_id"])


def downgrade() -> None:
    op.drop_table("payroll_lines")
    op.drop_table("payroll_runs")
    op.drop_table("payroll_stays")
    op.drop_table("payroll_assignments")
