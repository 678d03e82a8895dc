"""reimbursement: runs, lines, findings, adjustments and lock dates

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reimbursement_runs",
        sa.Column("id", Serial, autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(4), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("lock_at", Time, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("approved_at", Time, nullable=True),
        sa.Column("approved_by", sa.String(100), nullable=True),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("paid", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("reimbursement_runs_period", "reimbursement_runs", ["tenant", "period", "kind", "status"])
    op.create_table(
        "reimbursement_lines",
        sa.Column("run_id", Serial, sa.ForeignKey("reimbursement_runs.id"), nullable=False),
        sa.Column("provider_org", sa.String(10), nullable=False),
        sa.Column("customer", sa.String(12), nullable=False),
        sa.Column("category", sa.String(10), nullable=False),
        sa.Column("band", sa.String(10), nullable=False),
        sa.Column("rate", sa.Numeric(10, 2), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("adjusted_minutes", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "provider_org", "customer", "category", "band", "rate"),
    )
    op.create_table(
        "reimbursement_findings",
        sa.Column("id", Serial, autoincrement=True, nullable=False),
        sa.Column("run_id", Serial, sa.ForeignKey("reimbursement_runs.id"), nullable=False),
        sa.Column("provider_org", sa.String(10), nullable=False),
        sa.Column("customer", sa.String(12), nullable=False),
        sa.Column("visit_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("paid", sa.Integer(), nullable=False),
        sa.Column("paid_minutes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("reimbursement_findings_run", "reimbursement_findings", ["run_id", "provider_org", "code"])
    op.create_table(
        "reimbursement_adjustments",
        sa.Column("id", Serial, autoincrement=True, nullable=False),
        sa.Column("run_id", Serial, sa.ForeignKey("reimbursement_runs.id"), nullable=False),
        sa.Column("provider_org", sa.String(10), nullable=False),
        sa.Column("customer", sa.String(12), nullable=False),
        sa.Column("category", sa.String(10), nullable=False),
        sa.Column("band", sa.String(10), nullable=False),
        sa.Column("rate", sa.Numeric(10, 2), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("by", sa.String(100), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "reimbursement_locks",
        sa.Column("tenant", sa.String(4), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("lock_at", Time, nullable=False),
        sa.Column("set_by", sa.String(100), nullable=False),
        sa.Column("set_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "period"),
    )


def downgrade() -> None:
    for table in (
        "reimbursement_locks",
        "reimbursement_adjustments",
        "reimbursement_findings",
        "reimbursement_lines",
        "reimbursement_runs",
    ):
        op.drop_table(table)
