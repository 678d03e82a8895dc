"""schedules: each job's latest slot and pause per tenant, and a record of every firing

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: Union[str, Sequence[str], None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("job", sa.String(100), primary_key=True),
        sa.Column("tenant", sa.String(4), primary_key=True),
        sa.Column("last_slot", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_by", sa.String(100), nullable=True),
    )
    op.create_table(
        "schedule_firings",
        sa.Column("id", Serial, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(100), nullable=False),
        sa.Column("tenant", sa.String(4), nullable=False),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fired_by", sa.String(100), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(10), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("schedule_firings_job", "schedule_firings", ["job", "tenant", "id"])
    op.execute("DELETE FROM checkpoints WHERE name LIKE 'job:%'")  # the slots of the fixed intervals before


def downgrade() -> None:
    op.drop_index("schedule_firings_job", table_name="schedule_firings")
    op.drop_table("schedule_firings")
    op.drop_table("schedules")
