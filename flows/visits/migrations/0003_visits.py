"""visits: every version of every reported visit

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "visits",
        sa.Column("tenant", sa.String(length=4), nullable=False),
        sa.Column("vendor", sa.String(length=63), nullable=False),
        sa.Column("visit_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("provider_org", sa.String(length=10), nullable=False),
        sa.Column("customer", sa.String(length=12), nullable=False),
        sa.Column("employee_id", sa.String(length=40), nullable=False),
        sa.Column("planned_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("planned_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actual_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actual_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmation", sa.String(length=6), nullable=False),
        sa.Column("tag_id", sa.String(length=64), nullable=True),
        sa.Column("manual_reason", sa.Text(), nullable=True),
        sa.Column("services", sa.String(length=400), nullable=False),
        sa.Column("double_staffing", sa.Boolean(), nullable=False),
        sa.Column("declined", sa.Boolean(), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("edit_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "vendor", "visit_id", "version"),
    )
    op.create_index("visits_run_order", "visits", ["tenant", "provider_org", "customer", "actual_start"])


def downgrade() -> None:
    op.drop_index("visits_run_order", table_name="visits")
    op.drop_table("visits")
