"""reimbursement_ordered: the minutes ordered in each run's period per provider and service
category, beside the minutes performed in its lines (the console's statistics)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: Union[str, Sequence[str], None] = "0016"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "reimbursement_ordered",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("provider_org", sa.String(10), primary_key=True),
        sa.Column("category", sa.String(10), primary_key=True),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["reimbursement_runs.id"]),
    )


def downgrade() -> None:
    op.drop_table("reimbursement_ordered")
