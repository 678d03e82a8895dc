"""orders: the latest version that carries the order's services (a cancellation may carry none)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("state_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("state_message_id", sa.String(64), nullable=True))
    op.execute("UPDATE orders SET state_version = version, state_message_id = message_id WHERE kind <> 'cancel'")


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("state_message_id")
        batch.drop_column("state_version")
