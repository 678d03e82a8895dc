"""outbox.stored_at: each delivery carries its message's time of storing, indexed with the tenant,
so that the retention purge finds the deliveries of a batch of messages (a range of their storing)
in one range of an index, where it probed the deliveries' index by id once for each message (two
fifths of the messages' purge)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: Union[str, Sequence[str], None] = "0025"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as outbox:
        outbox.add_column(sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True))
    # the ledger keeps every message's time of storing, purged or not; a delivery it does not know
    # (none should be left) takes its own creation's
    op.execute(
        "UPDATE outbox SET stored_at = COALESCE("
        "(SELECT l.stored_at FROM message_ledger l WHERE l.id = outbox.message_id), created_at)"
    )
    with op.batch_alter_table("outbox") as outbox:
        outbox.alter_column("stored_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index("outbox_stored", "outbox", ["tenant", "stored_at"])


def downgrade() -> None:
    op.drop_index("outbox_stored", table_name="outbox")
    with op.batch_alter_table("outbox") as outbox:
        outbox.drop_column("stored_at")
