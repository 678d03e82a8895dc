"""outbox_sent: the deliveries to steps by tenant and the time they were sent, so that a purge of the
dispatches finds those sent before its cutoff by the index (by id, it read every delivery after
the last due one: about 8 s a purge at a large city's month)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: Union[str, Sequence[str], None] = "0021"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    sent = sa.text("sent_at IS NOT NULL")
    op.create_index("outbox_sent", "outbox", ["tenant", "sent_at", "id"], postgresql_where=sent, sqlite_where=sent)


def downgrade() -> None:
    op.drop_index("outbox_sent", table_name="outbox")
