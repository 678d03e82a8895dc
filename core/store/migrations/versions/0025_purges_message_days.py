"""retention_purges.message_days: the messages' time each purge used, so that the tombstones of
messages purged under a longer policy are kept as long as that policy's purge says, after the
policy is shortened

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: Union[str, Sequence[str], None] = "0024"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("retention_purges") as batch:
        batch.add_column(sa.Column("message_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("retention_purges") as batch:
        batch.drop_column("message_days")
