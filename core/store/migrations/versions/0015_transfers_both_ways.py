"""transfers both ways: the files the hub picked up beside the files it delivered, each with its
partner, direction and outcome

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: Union[str, Sequence[str], None] = "0014"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.drop_index("transfers_receiver")
        batch.alter_column("receiver", new_column_name="partner", existing_type=sa.String(63), existing_nullable=False)
        batch.alter_column(
            "delivered_at", new_column_name="at", existing_type=sa.DateTime(timezone=True), existing_nullable=False
        )
        batch.add_column(sa.Column("direction", sa.String(3), nullable=False, server_default="out"))
        batch.add_column(sa.Column("outcome", sa.String(10), nullable=False, server_default="delivered"))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
    op.create_index("transfers_partner", "transfers", ["tenant", "partner", "at"])


def downgrade() -> None:
    op.drop_index("transfers_partner", table_name="transfers")
    with op.batch_alter_table("transfers") as batch:
        batch.drop_column("reason")
        batch.drop_column("outcome")
        batch.drop_column("direction")
        batch.alter_column("at", new_column_name="delivered_at")
        batch.alter_column("partner", new_column_name="receiver")
    op.create_index("transfers_receiver", "transfers", ["tenant", "receiver", "delivered_at"])
